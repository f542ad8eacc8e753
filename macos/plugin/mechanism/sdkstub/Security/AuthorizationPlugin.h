/* Declarations transcribed from Apple's documentation; see ../README.md. */
#ifndef JK_STUB_AUTHORIZATIONPLUGIN_H
#define JK_STUB_AUTHORIZATIONPLUGIN_H
#include <stddef.h>
#include <stdint.h>
typedef int32_t OSStatus;
typedef uint32_t UInt32;
typedef const char *AuthorizationString;
enum { errAuthorizationSuccess = 0, errAuthorizationInternal = -60008 };
typedef struct AuthorizationValue {
	size_t length;
	void *data;
} AuthorizationValue;
typedef struct AuthorizationValueVector {
	UInt32 count;
	AuthorizationValue *values;
} AuthorizationValueVector;
typedef UInt32 AuthorizationContextFlags;
enum {
	kAuthorizationContextFlagExtractable = (1 << 0),
	kAuthorizationContextFlagVolatile = (1 << 1),
	kAuthorizationContextFlagSticky = (1 << 2),
};
typedef AuthorizationString AuthorizationMechanismId;
typedef AuthorizationString AuthorizationPluginId;
typedef void *AuthorizationPluginRef;
typedef void *AuthorizationMechanismRef;
typedef struct __OpaqueAuthorizationEngine *AuthorizationEngineRef;
typedef void *AuthorizationSessionId;
typedef UInt32 AuthorizationResult;
enum {
	kAuthorizationResultAllow,
	kAuthorizationResultDeny,
	kAuthorizationResultUndefined,
	kAuthorizationResultUserCanceled,
};
enum { kAuthorizationPluginInterfaceVersion = 0, kAuthorizationCallbacksVersion = 4 };
typedef struct AuthorizationCallbacks {
	UInt32 version;
	OSStatus (*SetResult)(AuthorizationEngineRef inEngine, AuthorizationResult inResult);
	OSStatus (*RequestInterrupt)(AuthorizationEngineRef inEngine);
	OSStatus (*DidDeactivate)(AuthorizationEngineRef inEngine);
	OSStatus (*GetContextValue)(AuthorizationEngineRef inEngine, AuthorizationString inKey,
				    AuthorizationContextFlags *outContextFlags, const AuthorizationValue **outValue);
	OSStatus (*SetContextValue)(AuthorizationEngineRef inEngine, AuthorizationString inKey,
				    AuthorizationContextFlags inContextFlags, const AuthorizationValue *inValue);
	OSStatus (*GetHintValue)(AuthorizationEngineRef inEngine, AuthorizationString inKey, const AuthorizationValue **outValue);
	OSStatus (*SetHintValue)(AuthorizationEngineRef inEngine, AuthorizationString inKey, const AuthorizationValue *inValue);
	OSStatus (*GetArguments)(AuthorizationEngineRef inEngine, const AuthorizationValueVector **outArguments);
	OSStatus (*GetSessionId)(AuthorizationEngineRef inEngine, AuthorizationSessionId *outSessionId);
	OSStatus (*GetImmutableHintValue)(AuthorizationEngineRef inEngine, AuthorizationString inKey, const AuthorizationValue **outValue);
} AuthorizationCallbacks;
typedef struct AuthorizationPluginInterface {
	UInt32 version;
	OSStatus (*PluginDestroy)(AuthorizationPluginRef inPlugin);
	OSStatus (*MechanismCreate)(AuthorizationPluginRef inPlugin, AuthorizationEngineRef inEngine,
				    AuthorizationMechanismId mechanismId, AuthorizationMechanismRef *outMechanism);
	OSStatus (*MechanismInvoke)(AuthorizationMechanismRef inMechanism);
	OSStatus (*MechanismDeactivate)(AuthorizationMechanismRef inMechanism);
	OSStatus (*MechanismDestroy)(AuthorizationMechanismRef inMechanism);
} AuthorizationPluginInterface;
OSStatus AuthorizationPluginCreate(const AuthorizationCallbacks *callbacks, AuthorizationPluginRef *outPlugin,
				   const AuthorizationPluginInterface **outPluginInterface);
#endif
