/*
 * jkmsg: the agent's local IPC messages (SPEC.md 5.6, 5.7; protocol/ipcmsg.go)
 * as the login surfaces written in C need them, in strictly bounded C. The
 * one copy for the PAM module (agent/pam/c), the macOS authorization plugin
 * (macos/plugin/core) and the Windows credential provider
 * (winhelper/credprov/core, compiled as C by mingw-w64 and linked into the
 * C++ DLL).
 *
 * A frame on the socket is
 *
 *	length u32 big-endian (1..JK_MAX_FRAME) || body
 *
 * and a body is "type u8 || canonical CBOR map with small integer keys".
 * The decoder accepts exactly the bytes the Go agent's encoder produces
 * (RFC 8949 core deterministic encoding, every field present, keys 1..n in
 * order, shortest heads, no tags, no indefinite lengths, valid UTF-8 text,
 * no trailing bytes) and nothing else; it never reads outside body[0..n)
 * and never allocates: decoded strings point into the body.
 */
#ifndef JKMSG_H
#define JKMSG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JK_MAX_FRAME 16384 /* protocol.MaxIPCFrame */
#define JK_SESSION_LEN 16  /* protocol.SessionID */

/* Message types (protocol.IPCMsgType). */
enum {
	JK_MSG_BEGIN = 1,      /* surface -> agent */
	JK_MSG_QR = 2,         /* agent -> surface */
	JK_MSG_CREDENTIAL = 3, /* agent -> surface, once */
	JK_MSG_DENIED = 4,     /* agent -> surface */
	JK_MSG_END = 5,        /* surface -> agent */
	JK_MSG_ENDED = 6,      /* agent -> surface */
	JK_MSG_STATUS = 7,     /* agent -> surface */
	JK_MSG_CODE = 8,       /* surface -> agent */
	JK_MSG_PUSH = 9,       /* surface -> agent: {1: Email text, 1..JK_MAX_EMAIL bytes} */
	JK_MSG_NUMBER = 10,    /* agent -> surface: {1: Number u8, 10..99} */
};

#define JK_MAX_EMAIL 254 /* protocol.MaxIPCEmail: Push.Email */
#define JK_MAX_TARGET 64 /* protocol.MaxIPCTarget: Begin.Target */

/* A byte or text string inside a decoded body (not NUL-terminated). */
struct jk_str {
	const uint8_t *p;
	size_t n;
};

/* One decoded agent message. Strings point into the decoded body. */
struct jk_msg {
	uint8_t type;
	union {
		struct {
			/* second_approval: Status field 3 (SPEC.md 5.7.7), present
			 * only as true; the agent waits for a second approver. */
			int online, otp, second_approval;
		} status;
		struct {
			struct jk_str text, png, terminal;
			int64_t expires;
		} qr;
		struct {
			struct jk_str username, password;
			uint8_t session[JK_SESSION_LEN];
			int64_t deadline;
		} cred;
		struct {
			uint8_t code;
			struct jk_str reason;
		} denied;
		struct {
			int ok;
		} ended;
		struct {
			uint8_t number;
		} number;
	} u;
};

/*
 * jk_decode decodes the body of one agent -> surface message (Status, QR,
 * Credential, Denied, Ended or Number; a Number outside 10..99 is
 * refused). It returns 0 and fills m, or -1 for anything else (m's
 * content is then unspecified).
 */
int jk_decode(const uint8_t *body, size_t n, struct jk_msg *m);

/*
 * Encoders of the surface -> agent messages. Each writes the body into
 * out (at most cap bytes) and returns its length, or 0 if it does not fit
 * or an argument is out of range (strings over JK_MAX_STRING bytes).
 */
#define JK_MAX_STRING 1024
/*
 * jk_encode_begin: target NULL or "" omits field 3 (a login on this
 * computer); otherwise it names the RDP target of a remote domain logon
 * (SPEC.md 5.7.1, 11.7), 1..JK_MAX_TARGET bytes.
 */
size_t jk_encode_begin(uint8_t *out, size_t cap, const char *surface, uint8_t action, const char *target);
size_t jk_encode_code(uint8_t *out, size_t cap, const char *username, const char *code);
size_t jk_encode_end(uint8_t *out, size_t cap, const uint8_t session[JK_SESSION_LEN]);
/* jk_encode_push: email of 1..JK_MAX_EMAIL bytes. */
size_t jk_encode_push(uint8_t *out, size_t cap, const char *email);

/* jk_utf8_valid reports whether p[0..n) is valid UTF-8 (as Go's utf8.Valid). */
int jk_utf8_valid(const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif
