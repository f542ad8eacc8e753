/*
 * jkcore: the platform-independent core of jitkey's macOS authorization
 * plugin (JitkeyLogin.bundle): the agent connection (Unix socket, peer
 * check, length-prefixed frames of SPEC.md 5.6), the messages of 5.7
 * (jkmsg.h) and the login's state machine. The mechanism
 * (../mechanism/JitkeyLogin.m) draws what the state says and feeds it the
 * user's choices; it holds no policy.
 *
 * States and what moves between them:
 *
 *	JKC_IDLE --begin--> JKC_WAITING --QR--> JKC_SHOWING_QR
 *	JKC_WAITING / JKC_SHOWING_QR --push--> JKC_PUSH_SENT --Number--> JKC_PUSH_NUMBER
 *	JKC_WAITING / JKC_SHOWING_QR (while Status.OTP) --code--> JKC_CODE_SENT
 *	any live state --Status.SecondApproval--> JKC_SECOND_APPROVAL
 *	                 (the QR code is dropped; no push, no code)
 *	any live state --Credential--> JKC_CREDENTIAL   (done: log in)
 *	any live state --Denied-->     JKC_DENIED       (done: show the reason)
 *	any live state --a message not expected there, a malformed one, or
 *	                 a lost connection--> JKC_FAILED  (done: the local
 *	                 password form stays usable)
 *
 * Status updates online/otp in every live state; a QR in JKC_PUSH_SENT,
 * JKC_PUSH_NUMBER or JKC_CODE_SENT replaces the stored code without
 * changing the state (the agent keeps rotating it). In
 * JKC_SECOND_APPROVAL (SPEC.md 5.7.7: the technician approved, the agent
 * asks a second approver) the window shows "Approved. Waiting for a
 * second approver…" and no QR code: a QR, or the Number of a push sent
 * just before, is ignored there, and only the Credential or Denied that
 * ends the login moves on.
 *
 * Nothing here allocates; the password of a Credential is kept in the
 * struct only until jkc_wipe.
 */
#ifndef JKCORE_H
#define JKCORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jkmsg.h"

enum jkc_state {
	JKC_IDLE = 0,
	JKC_WAITING,     /* Begin sent, no QR yet */
	JKC_SHOWING_QR,  /* a QR code is shown */
	JKC_PUSH_SENT,   /* Push sent, waiting for the number */
	JKC_PUSH_NUMBER, /* showing the number to pick on the phone */
	JKC_CODE_SENT,   /* offline code sent, waiting for the answer */
	JKC_SECOND_APPROVAL, /* approved; the agent waits for a second approver */
	JKC_CREDENTIAL,  /* approved: username and password ready */
	JKC_DENIED,      /* refused: denied_code and reason */
	JKC_FAILED,      /* protocol error or connection lost */
};

/* Events jkc_on_message returns. */
enum jkc_event {
	JKC_EV_ERROR = -1, /* the exchange is over: state is JKC_FAILED */
	JKC_EV_STATUS = 1,
	JKC_EV_QR,
	JKC_EV_NUMBER,
	JKC_EV_CREDENTIAL,
	JKC_EV_DENIED,
};

#define JKC_MAX_NAME 256   /* username bytes kept */
#define JKC_MAX_SECRET 256 /* password bytes kept */
#define JKC_MAX_REASON 512 /* Denied.Reason bytes kept */
#define JKC_MAX_QRTEXT 1024

struct jkc {
	enum jkc_state state;
	int online, otp;              /* last Status */
	char qr_text[JKC_MAX_QRTEXT + 1];
	uint8_t qr_png[JK_MAX_FRAME]; /* the newest QR's PNG */
	size_t qr_png_len;
	int64_t qr_expires;
	uint8_t number;                /* JKC_PUSH_NUMBER */
	char username[JKC_MAX_NAME + 1];      /* JKC_CREDENTIAL */
	char password[JKC_MAX_SECRET + 1];    /* JKC_CREDENTIAL; jkc_wipe clears */
	uint8_t session[JK_SESSION_LEN];
	int64_t deadline;
	uint8_t denied_code;                  /* JKC_DENIED */
	char reason[JKC_MAX_REASON + 1];
};

void jkc_init(struct jkc *c);
/* jkc_wipe clears the password and everything else; c is JKC_IDLE after. */
void jkc_wipe(struct jkc *c);

/*
 * Surface -> agent. Each writes one message body into out (cap bytes) and
 * returns its length, or 0 if the state does not allow it (begin only in
 * JKC_IDLE; push only in JKC_WAITING or JKC_SHOWING_QR; code only there
 * and while the last Status said OTP) or an argument is out of range.
 * surface is "logon", "unlock" or "elevate".
 */
size_t jkc_begin(struct jkc *c, uint8_t *out, size_t cap, const char *surface);
size_t jkc_push(struct jkc *c, uint8_t *out, size_t cap, const char *email);
size_t jkc_code(struct jkc *c, uint8_t *out, size_t cap, const char *username, const char *code);

/* jkc_on_message feeds one agent message body; see the state diagram. */
int jkc_on_message(struct jkc *c, const uint8_t *body, size_t n);
/* jkc_on_lost: the connection ended (EOF, error, timeout). */
void jkc_on_lost(struct jkc *c);
/* jkc_done reports whether the state is final. */
int jkc_done(const struct jkc *c);

/*
 * Transport (SPEC.md 5.6, 5.7). jkc_connect connects to the agent's Unix
 * socket at path and returns the descriptor, or -1 unless the peer's
 * effective uid (getpeereid on macOS, SO_PEERCRED on Linux) is want_uid
 * (0: root, in production). jkc_write_frame writes length u32 || body.
 * jkc_read_frame reads one frame into buf (cap >= JK_MAX_FRAME) within
 * timeout_ms and returns its length, or -1 (closed, error, timeout, a
 * length of 0 or above JK_MAX_FRAME).
 */
int jkc_connect(const char *path, uid_t want_uid);
int jkc_write_frame(int fd, const uint8_t *body, size_t n);
long jkc_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);

#endif
