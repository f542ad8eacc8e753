/* Declarations transcribed from Apple's documentation; see ../README.md. */
#ifndef JK_STUB_AUTHORIZATIONTAGS_H
#define JK_STUB_AUTHORIZATIONTAGS_H
#define kAuthorizationEnvironmentUsername "username"
#define kAuthorizationEnvironmentPassword "password"
#endif
