/*
 * pam_jitkey.so: the Linux login surface of jitkey.
 *
 * A small PAM module without threads and without policy: it asks the local
 * jitkey agent (a root process, over a Unix socket whose peer must be uid
 * 0) for a just-in-time login, shows the agent's QR code in the same
 * conversation turn as a prompt, and succeeds only when the agent hands
 * over the credential of the very account being logged in to. Every
 * decision (who may log in, which account, for how long) is the agent's.
 *
 * Users: the module manages only names that start with the account
 * prefix (prefix=, default "msp-") and are valid jitkey account names
 * ([a-z0-9_-], starting with a letter, at most 32 bytes). For any other
 * user every hook returns PAM_IGNORE without contacting the agent, so the
 * rest of the stack (pam_unix, SSH keys) decides as if jitkey were not
 * installed. The name typed at the login prompt is the account: the
 * technician logs in as msp-<tech>; an approval that yields another
 * account's credential fails the login (and ends that session at once).
 *
 * Arguments:
 *	socket=PATH       agent socket (default /run/jitkey/agent.sock)
 *	surface=NAME      logon, unlock, elevate or sudo (default: sudo for the
 *	                  "sudo" service, logon otherwise)
 *	failmode=closed   agent unreachable: PAM_AUTHINFO_UNAVAIL (default)
 *	failmode=open     agent unreachable: PAM_IGNORE (the stack decides)
 *	prefix=STR        managed account prefix (default msp-)
 *	timeout=SECONDS   how long a login may wait for the approval (300)
 *	end=yes|no        close_session ends the agent's session (default yes;
 *	                  no for surface=sudo, whose session belongs to the
 *	                  technician's login that sudo runs inside)
 *	authtok           set PAM_AUTHTOK to the account's password for later
 *	                  modules (default: the password is wiped unseen)
 *
 * The session id of a login is kept with pam_set_data and in the PAM
 * environment (JITKEY_SESSION, hex): sshd authenticates in a child process
 * and passes only the PAM environment back to the process that opens and
 * closes the session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_modules.h>

#include "jkmsg.h"
#include "portable.h"

/* Only the PAM entry points are exported (built with -fvisibility=hidden). */
#define JK_EXPORT __attribute__((visibility("default")))

#define DEFAULT_SOCKET "/run/jitkey/agent.sock"
#define DATA_SESSION "jitkey_session"
#define ENV_SESSION "JITKEY_SESSION"
#define MAX_NAME 32
#define MAX_TEXT 8192  /* the QR's payload and terminal picture as shown */
#define GRACE_MS 10000 /* after Enter: how long to wait for the credential */
#define END_MS 30000   /* how long close_session waits for the agent */

struct args {
	const char *socket;
	const char *surface;
	const char *prefix;
	int failopen;
	int timeout_s;
	int end;
	int authtok;
};

static void parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a)
{
	const char *service = NULL;
	int end = -1;
	a->socket = DEFAULT_SOCKET;
	a->surface = NULL;
	a->prefix = "msp-";
	a->failopen = 0;
	a->timeout_s = 300;
	a->authtok = 0;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (strncmp(s, "socket=", 7) == 0)
			a->socket = s + 7;
		else if (strncmp(s, "surface=", 8) == 0)
			a->surface = s + 8;
		else if (strncmp(s, "prefix=", 7) == 0)
			a->prefix = s + 7;
		else if (strcmp(s, "failmode=open") == 0)
			a->failopen = 1;
		else if (strcmp(s, "failmode=closed") == 0)
			a->failopen = 0;
		else if (strncmp(s, "timeout=", 8) == 0) {
			long t = strtol(s + 8, NULL, 10);
			a->timeout_s = (t >= 1 && t <= 3600) ? (int)t : 300;
		} else if (strcmp(s, "end=yes") == 0)
			end = 1;
		else if (strcmp(s, "end=no") == 0)
			end = 0;
		else if (strcmp(s, "authtok") == 0)
			a->authtok = 1;
		else
			pam_syslog(pamh, LOG_WARNING, "unknown argument ignored: %s", s);
	}
	if (a->surface == NULL) {
		a->surface = "logon";
		if (pam_get_item(pamh, PAM_SERVICE, (const void **)&service) == PAM_SUCCESS &&
		    service != NULL && strcmp(service, "sudo") == 0)
			a->surface = "sudo";
	}
	if (strcmp(a->surface, "logon") != 0 && strcmp(a->surface, "unlock") != 0 &&
	    strcmp(a->surface, "elevate") != 0 && strcmp(a->surface, "sudo") != 0) {
		pam_syslog(pamh, LOG_WARNING, "unknown surface %s; using logon", a->surface);
		a->surface = "logon";
	}
	a->end = end >= 0 ? end : strcmp(a->surface, "sudo") != 0;
}

/* valid_name: a name jitkey may create ([a-z][a-z0-9_-]*, 1..MAX_NAME). */
static int valid_name(const char *s, size_t n)
{
	if (n == 0 || n > MAX_NAME || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static int managed(const struct args *a, const char *user)
{
	size_t pl = strlen(a->prefix);
	size_t n = strnlen(user, MAX_NAME + 1);
	return valid_name(user, n) && n > pl && strncmp(user, a->prefix, pl) == 0;
}

/* ---- time ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- socket ---- */

/*
 * agent_dial connects to the agent and checks with SO_PEERCRED (getpeereid
 * on macOS) that root
 * listens: anything else on the path is not the agent.
 */
static int agent_dial(pam_handle_t *pamh, const char *path)
{
	struct sockaddr_un sa;
	uid_t uid;
	if (strlen(path) >= sizeof sa.sun_path) {
		pam_syslog(pamh, LOG_ERR, "socket path too long");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
	int fd = jk_socket();
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		pam_syslog(pamh, LOG_ERR, "agent unreachable at %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (jk_peer_uid(fd, &uid) < 0) {
		pam_syslog(pamh, LOG_ERR, "agent socket: no peer credentials");
		close(fd);
		return -1;
	}
	if (uid != 0) {
		pam_syslog(pamh, LOG_ERR, "agent socket %s served by uid %u, not root: refused", path, (unsigned)uid);
		close(fd);
		return -1;
	}
	return fd;
}

/* wait_fd waits until fd is readable (events POLLIN) or writable. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r > 0)
			return 0;
	}
}

static int read_full(int fd, uint8_t *b, size_t n, long long deadline)
{
	size_t got = 0;
	while (got < n) {
		if (wait_fd(fd, POLLIN, deadline) < 0)
			return -1;
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/*
 * read_frame reads one frame body into buf (JK_MAX_FRAME bytes) by
 * deadline; it returns the body's length, 0 on timeout before any byte of
 * the frame, or -1 on error (including a length outside 1..JK_MAX_FRAME).
 */
static ssize_t read_frame(int fd, uint8_t *buf, long long deadline)
{
	uint8_t hdr[4];
	if (wait_fd(fd, POLLIN, deadline) < 0)
		return 0;
	if (read_full(fd, hdr, 4, deadline) < 0)
		return -1;
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > JK_MAX_FRAME)
		return -1;
	/* A frame that started arrives whole soon, whatever the deadline. */
	long long d2 = now_ms() + 10000;
	if (read_full(fd, buf, n, deadline > d2 ? deadline : d2) < 0)
		return -1;
	return (ssize_t)n;
}

static int write_frame(int fd, const uint8_t *body, size_t n)
{
	uint8_t frame[4 + 2 * JK_MAX_STRING + 64];
	if (n == 0 || n > sizeof frame - 4)
		return -1;
	frame[0] = (uint8_t)(n >> 24);
	frame[1] = (uint8_t)(n >> 16);
	frame[2] = (uint8_t)(n >> 8);
	frame[3] = (uint8_t)n;
	memcpy(frame + 4, body, n);
	size_t off = 0, total = n + 4;
	long long deadline = now_ms() + 10000;
	int rc = 0;
	while (off < total) {
		if (wait_fd(fd, POLLOUT, deadline) < 0) {
			rc = -1;
			break;
		}
		ssize_t w = send(fd, frame + off, total - off, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			rc = -1;
			break;
		}
		off += (size_t)w;
	}
	explicit_bzero(frame, sizeof frame); /* a Code message holds a code */
	return rc;
}

/* ---- conversation ---- */

/*
 * clean copies s[0..n) into out (cap bytes, NUL-terminated), dropping
 * control characters other than newline: what the agent says reaches the
 * user's terminal.
 */
static void clean(char *out, size_t cap, const uint8_t *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		uint8_t c = s[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			continue;
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

/*
 * converse shows info (may be NULL) and asks one question in the same
 * conversation call: sshd shows PAM_TEXT_INFO only together with the next
 * prompt. It returns the answer (malloc'd; the caller wipes and frees it)
 * or NULL.
 */
static char *converse(pam_handle_t *pamh, const char *info, int style, const char *prompt)
{
	const struct pam_conv *conv = NULL;
	struct pam_message m[2];
	const struct pam_message *pm[2];
	struct pam_response *resp = NULL;
	int n = 0;
	if (pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || conv == NULL || conv->conv == NULL)
		return NULL;
	if (info != NULL) {
		m[n].msg_style = PAM_TEXT_INFO;
		m[n].msg = info;
		pm[n] = &m[n];
		n++;
	}
	m[n].msg_style = style;
	m[n].msg = prompt;
	pm[n] = &m[n];
	n++;
	if (conv->conv(n, pm, &resp, conv->appdata_ptr) != PAM_SUCCESS || resp == NULL)
		return NULL;
	char *answer = resp[n - 1].resp;
	for (int i = 0; i < n - 1; i++) {
		if (resp[i].resp != NULL) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
	return answer;
}

static void say(pam_handle_t *pamh, int style, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	const struct pam_conv *conv = NULL;
	if (pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || conv == NULL || conv->conv == NULL)
		return;
	struct pam_message m = {.msg_style = style, .msg = buf};
	const struct pam_message *pm = &m;
	struct pam_response *resp = NULL;
	if (conv->conv(1, &pm, &resp, conv->appdata_ptr) == PAM_SUCCESS && resp != NULL) {
		if (resp[0].resp != NULL)
			free(resp[0].resp);
		free(resp);
	}
}

static void free_answer(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* ---- session id ---- */

static void hex(char out[2 * JK_SESSION_LEN + 1], const uint8_t s[JK_SESSION_LEN])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < JK_SESSION_LEN; i++) {
		out[2 * i] = digits[s[i] >> 4];
		out[2 * i + 1] = digits[s[i] & 15];
	}
	out[2 * JK_SESSION_LEN] = '\0';
}

static int unhex(uint8_t out[JK_SESSION_LEN], const char *s)
{
	if (s == NULL || strlen(s) != 2 * JK_SESSION_LEN)
		return -1;
	for (int i = 0; i < 2 * JK_SESSION_LEN; i++) {
		char c = s[i];
		int v;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

static void cleanup_data(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	(void)status;
	free(data);
}

/* session_of finds the session id this handle's login got, if any. */
static int session_of(pam_handle_t *pamh, uint8_t out[JK_SESSION_LEN])
{
	const void *data = NULL;
	if (pam_get_data(pamh, DATA_SESSION, &data) == PAM_SUCCESS && data != NULL) {
		memcpy(out, data, JK_SESSION_LEN);
		return 0;
	}
	return unhex(out, pam_getenv(pamh, ENV_SESSION));
}

static int remember_session(pam_handle_t *pamh, const uint8_t s[JK_SESSION_LEN])
{
	char env[sizeof ENV_SESSION + 1 + 2 * JK_SESSION_LEN + 1];
	char h[2 * JK_SESSION_LEN + 1];
	uint8_t *data = malloc(JK_SESSION_LEN);
	if (data == NULL)
		return -1;
	memcpy(data, s, JK_SESSION_LEN);
	if (pam_set_data(pamh, DATA_SESSION, data, cleanup_data) != PAM_SUCCESS) {
		free(data);
		return -1;
	}
	hex(h, s);
	snprintf(env, sizeof env, "%s=%s", ENV_SESSION, h);
	if (pam_putenv(pamh, env) != PAM_SUCCESS) {
		pam_set_data(pamh, DATA_SESSION, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * end_session sends End{session} on fd (or a new connection if fd < 0)
 * and waits for Ended. 0: ended; -1: failed (the agent ends the session
 * at its deadline).
 */
static int end_session(pam_handle_t *pamh, const struct args *a, int fd, const uint8_t s[JK_SESSION_LEN])
{
	uint8_t body[64];
	uint8_t *buf = malloc(JK_MAX_FRAME);
	int own = fd < 0, rc = -1;
	if (buf == NULL)
		return -1;
	if (own && (fd = agent_dial(pamh, a->socket)) < 0) {
		free(buf);
		return -1;
	}
	size_t n = jk_encode_end(body, sizeof body, s);
	if (n > 0 && write_frame(fd, body, n) == 0) {
		long long deadline = now_ms() + END_MS;
		for (;;) {
			struct jk_msg m;
			ssize_t got = read_frame(fd, buf, deadline);
			if (got <= 0 || jk_decode(buf, (size_t)got, &m) < 0) {
				pam_syslog(pamh, LOG_ERR, "session end: no answer from the agent");
				break;
			}
			if (m.type == JK_MSG_ENDED) {
				rc = m.u.ended.ok ? 0 : -1;
				break;
			}
			if (m.type == JK_MSG_DENIED) {
				char reason[256];
				clean(reason, sizeof reason, m.u.denied.reason.p, m.u.denied.reason.n);
				pam_syslog(pamh, LOG_ERR, "session end refused by the agent: %s", reason);
				break;
			}
			/* A late QR or Status of the login: skip it. */
			explicit_bzero(buf, (size_t)got);
		}
	}
	explicit_bzero(buf, JK_MAX_FRAME);
	free(buf);
	if (own)
		close(fd);
	return rc;
}

/* ---- authentication ---- */

struct login {
	int online, otp, have_qr;
	int second; /* the agent waits for a second approver (Status field 3) */
	char qr[MAX_TEXT];
	int done; /* 1 credential, -1 denied or broken */
	int pam_rc;
	uint8_t session[JK_SESSION_LEN];
	char *password; /* only with authtok */
};

/* handle applies one agent message to the login. */
static void handle(pam_handle_t *pamh, const struct args *a, const char *user, int fd, struct login *l, const struct jk_msg *m)
{
	char text[512];
	switch (m->type) {
	case JK_MSG_STATUS:
		l->online = m->u.status.online;
		l->otp = m->u.status.otp;
		if (m->u.status.second_approval && !l->second) {
			/* SPEC.md 5.7.7: no QR code from now on, no names. */
			l->second = 1;
			l->have_qr = 0;
			say(pamh, PAM_TEXT_INFO, "jitkey: Approved. Waiting for a second approver...");
			pam_syslog(pamh, LOG_INFO, "login of %s waits for a second approver", user);
		}
		return;
	case JK_MSG_QR: {
		size_t o = 0;
		if (l->second)
			return; /* not offered while a second approver is asked */
		/* Terminal picture, then the payload line for a phone that
		 * reads text (and for tests). */
		clean(l->qr, sizeof l->qr - 1, m->u.qr.terminal.p, m->u.qr.terminal.n);
		o = strlen(l->qr);
		if (o > 0 && l->qr[o - 1] != '\n' && o + 1 < sizeof l->qr)
			l->qr[o++] = '\n';
		if (m->u.qr.text.n + 16 < sizeof l->qr - o) {
			memcpy(l->qr + o, "Code: ", 6);
			o += 6;
			clean(l->qr + o, sizeof l->qr - o, m->u.qr.text.p, m->u.qr.text.n);
		} else {
			l->qr[o] = '\0';
		}
		l->have_qr = 1;
		return;
	}
	case JK_MSG_DENIED:
		clean(text, sizeof text, m->u.denied.reason.p, m->u.denied.reason.n);
		say(pamh, PAM_ERROR_MSG, "jitkey: login refused: %s", text);
		pam_syslog(pamh, LOG_NOTICE, "login of %s refused by the agent (code %u): %s", user, m->u.denied.code, text);
		l->done = -1;
		l->pam_rc = m->u.denied.code == 3 /* CodeUnavailable */ ? PAM_AUTHINFO_UNAVAIL : PAM_AUTH_ERR;
		return;
	case JK_MSG_CREDENTIAL: {
		const struct jk_str *u = &m->u.cred.username;
		if (u->n != strlen(user) || memcmp(u->p, user, u->n) != 0) {
			clean(text, sizeof text, u->p, u->n);
			say(pamh, PAM_ERROR_MSG, "jitkey: the approval is for %s, not %s: log in as %s", text, user, text);
			pam_syslog(pamh, LOG_NOTICE, "approval for %s while logging in %s: session ended", text, user);
			if (end_session(pamh, a, fd, m->u.cred.session) < 0)
				pam_syslog(pamh, LOG_ERR, "ending the session of %s failed; the agent ends it at its deadline", text);
			l->done = -1;
			l->pam_rc = PAM_AUTH_ERR;
			return;
		}
		if (memchr(m->u.cred.password.p, 0, m->u.cred.password.n) != NULL) {
			/* Not a password the agent makes; a C string cannot carry it. */
			pam_syslog(pamh, LOG_ERR, "credential for %s holds a NUL byte; session ended", user);
			end_session(pamh, a, fd, m->u.cred.session);
			l->done = -1;
			l->pam_rc = PAM_AUTH_ERR;
			return;
		}
		memcpy(l->session, m->u.cred.session, JK_SESSION_LEN);
		if (a->authtok) {
			l->password = malloc(m->u.cred.password.n + 1);
			if (l->password != NULL) {
				memcpy(l->password, m->u.cred.password.p, m->u.cred.password.n);
				l->password[m->u.cred.password.n] = '\0';
			} else {
				pam_syslog(pamh, LOG_ERR, "out of memory: PAM_AUTHTOK not set for %s", user);
			}
		}
		l->done = 1;
		l->pam_rc = PAM_SUCCESS;
		return;
	}
	default:
		return; /* Ended: not during a login */
	}
}

/*
 * pump reads agent messages until deadline, or until the login is done,
 * or (stop_at_qr) until a QR code is known: the agent sends one after
 * Begin even while offline, so the prompt waits for it (an agent that
 * sends none but takes codes gets the code prompt at the deadline).
 * 0: ok; -1: the connection broke.
 */
static int pump(pam_handle_t *pamh, const struct args *a, const char *user, int fd, struct login *l, uint8_t *buf, long long deadline, int stop_at_qr)
{
	while (!l->done) {
		if (stop_at_qr && l->have_qr)
			return 0;
		ssize_t n = read_frame(fd, buf, deadline);
		if (n == 0)
			return 0;
		struct jk_msg m;
		if (n < 0 || jk_decode(buf, (size_t)n, &m) < 0) {
			explicit_bzero(buf, JK_MAX_FRAME);
			return -1;
		}
		handle(pamh, a, user, fd, l, &m);
		explicit_bzero(buf, (size_t)n); /* a Credential's password */
	}
	return 0;
}

static int unavailable(pam_handle_t *pamh, const struct args *a, const char *why)
{
	pam_syslog(pamh, LOG_ERR, "%s (failmode=%s)", why, a->failopen ? "open" : "closed");
	if (a->failopen)
		return PAM_IGNORE;
	say(pamh, PAM_ERROR_MSG, "jitkey: %s; jitkey logins are unavailable", why);
	return PAM_AUTHINFO_UNAVAIL;
}

/* what names the surface's action for the user. */
static const char *what(const char *surface)
{
	if (strcmp(surface, "sudo") == 0)
		return "sudo";
	if (strcmp(surface, "elevate") == 0)
		return "an elevation";
	if (strcmp(surface, "unlock") == 0)
		return "an unlock";
	return "a login";
}

static int authenticate(pam_handle_t *pamh, const struct args *a, const char *user)
{
	struct login *l = calloc(1, sizeof *l);
	uint8_t *buf = malloc(JK_MAX_FRAME);
	uint8_t body[2 * JK_MAX_STRING + 64];
	int fd = -1, rc;
	long long deadline = now_ms() + (long long)a->timeout_s * 1000;
	if (l == NULL || buf == NULL) {
		rc = PAM_BUF_ERR;
		goto out;
	}
	l->online = 1;
	l->pam_rc = PAM_AUTH_ERR;
	if ((fd = agent_dial(pamh, a->socket)) < 0) {
		rc = unavailable(pamh, a, "the jitkey agent is not running");
		goto out;
	}
	size_t n = jk_encode_begin(body, sizeof body, a->surface, 0, NULL); /* no Target: see agent/pam/doc.go */
	long long first = now_ms() + 15000; /* the first QR comes at once */
	if (n == 0 || write_frame(fd, body, n) < 0 ||
	    pump(pamh, a, user, fd, l, buf, first < deadline ? first : deadline, 1) < 0 ||
	    (!l->done && !l->have_qr && !l->otp && !l->second)) {
		rc = unavailable(pamh, a, "the jitkey agent does not answer");
		goto out;
	}
	while (!l->done) {
		char info[MAX_TEXT + 256];
		char *answer;
		if (now_ms() >= deadline) {
			say(pamh, PAM_ERROR_MSG, "jitkey: not approved in time");
			l->pam_rc = PAM_AUTH_ERR;
			break;
		}
		if (l->second) {
			/* Approved; the agent ends the login (Credential or
			 * Denied) when the second approver answers or its time
			 * is up: nothing to ask meanwhile. */
			if (pump(pamh, a, user, fd, l, buf, deadline, 0) < 0) {
				say(pamh, PAM_ERROR_MSG, "jitkey: the agent closed the login");
				l->pam_rc = PAM_AUTH_ERR;
				break;
			}
			continue;
		}
		snprintf(info, sizeof info, "jitkey: scan this code with the jitkey app to approve %s as %s%s\n%s",
			 what(a->surface), user, l->online ? "" : " (this computer is offline)", l->have_qr ? l->qr : "");
		if (l->otp)
			answer = converse(pamh, info, PAM_PROMPT_ECHO_ON,
					  "Press Enter after approving on your phone, or type your jitkey username for an offline code: ");
		else
			answer = converse(pamh, info, PAM_PROMPT_ECHO_OFF, "Press Enter after approving on your phone: ");
		if (answer == NULL) {
			l->pam_rc = PAM_CONV_ERR;
			break;
		}
		if (answer[0] != '\0' && l->otp) {
			char *code = converse(pamh, NULL, PAM_PROMPT_ECHO_OFF, "Offline code: ");
			size_t m = 0;
			if (code != NULL)
				m = jk_encode_code(body, sizeof body, answer, code);
			int conv_failed = code == NULL;
			free_answer(answer);
			free_answer(code);
			if (m == 0 || write_frame(fd, body, m) < 0) {
				explicit_bzero(body, sizeof body);
				l->pam_rc = conv_failed ? PAM_CONV_ERR : PAM_AUTH_ERR;
				break;
			}
			explicit_bzero(body, sizeof body);
			/* The code ends the login: a Credential or a Denied. */
			if (pump(pamh, a, user, fd, l, buf, now_ms() + 60000, 0) < 0 || !l->done) {
				say(pamh, PAM_ERROR_MSG, "jitkey: no answer to the offline code");
				l->pam_rc = PAM_AUTH_ERR;
				break;
			}
			continue;
		}
		free_answer(answer);
		/* Enter: the approval may still be on its way. */
		long long grace = now_ms() + GRACE_MS;
		if (pump(pamh, a, user, fd, l, buf, grace < deadline ? grace : deadline, 0) < 0) {
			say(pamh, PAM_ERROR_MSG, "jitkey: the agent closed the login");
			l->pam_rc = PAM_AUTH_ERR;
			break;
		}
		if (!l->done && !l->second)
			say(pamh, PAM_TEXT_INFO, "jitkey: not approved yet");
	}
	rc = l->pam_rc;
	if (l->done == 0) {
		/*
		 * Given up (deadline, conversation error, no answer to a code):
		 * a Credential the agent already sent would outlive this
		 * connection, so take it and end its session.
		 */
		pump(pamh, a, user, fd, l, buf, now_ms() + 200, 0);
		if (l->done == 1)
			end_session(pamh, a, fd, l->session);
		l->done = 0;
	}
	if (l->done == 1) {
		if (remember_session(pamh, l->session) < 0) {
			pam_syslog(pamh, LOG_ERR, "cannot record the session of %s; ending it", user);
			end_session(pamh, a, fd, l->session);
			rc = PAM_AUTH_ERR;
		} else {
			if (l->password != NULL && pam_set_item(pamh, PAM_AUTHTOK, l->password) != PAM_SUCCESS)
				pam_syslog(pamh, LOG_WARNING, "cannot set PAM_AUTHTOK");
			pam_syslog(pamh, LOG_NOTICE, "jitkey login of %s approved (surface %s)", user, a->surface);
		}
	}
out:
	if (fd >= 0)
		close(fd);
	if (buf != NULL) {
		explicit_bzero(buf, JK_MAX_FRAME);
		free(buf);
	}
	if (l != NULL) {
		if (l->password != NULL) {
			explicit_bzero(l->password, strlen(l->password));
			free(l->password);
		}
		explicit_bzero(l, sizeof *l);
		free(l);
	}
	return rc;
}

/* user_of returns PAM_USER if jitkey manages it, else NULL. */
static const char *user_of(pam_handle_t *pamh, const struct args *a)
{
	const char *user = NULL;
	if (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL)
		return NULL;
	return managed(a, user) ? user : NULL;
}

/* ours reports whether PAM_USER is managed and jitkey authenticated it in
 * this handle. */
static int ours(pam_handle_t *pamh, int argc, const char **argv)
{
	struct args a;
	uint8_t s[JK_SESSION_LEN];
	parse_args(pamh, argc, argv, &a);
	return user_of(pamh, &a) != NULL && session_of(pamh, s) == 0;
}

JK_EXPORT PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	const char *user = NULL;
	(void)flags;
	parse_args(pamh, argc, argv, &a);
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || !managed(&a, user))
		return PAM_IGNORE;
	return authenticate(pamh, &a, user);
}

/*
 * setcred: nothing to set, but a login jitkey authenticated succeeds here
 * too, so that "success=done" in the auth stack holds for pam_setcred
 * (sshd calls it) as it did for pam_authenticate.
 */
JK_EXPORT PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return ours(pamh, argc, argv) ? PAM_SUCCESS : PAM_IGNORE;
}

/*
 * Account: a managed user authenticated by jitkey in this handle passes;
 * otherwise jitkey has no say (PAM_IGNORE) and pam_unix's expiry check,
 * which the agent's disabling sets, decides.
 */
JK_EXPORT PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return ours(pamh, argc, argv) ? PAM_SUCCESS : PAM_IGNORE;
}

JK_EXPORT PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	uint8_t s[JK_SESSION_LEN];
	(void)flags;
	parse_args(pamh, argc, argv, &a);
	const char *user = user_of(pamh, &a);
	if (user == NULL || session_of(pamh, s) < 0)
		return PAM_IGNORE;
	/* Keep the id as module data: close_session prefers it to the
	 * environment, which later modules (pam_env, user_readenv) or the
	 * user could change. */
	if (remember_session(pamh, s) < 0)
		pam_syslog(pamh, LOG_ERR, "cannot record the session of %s", user);
	pam_syslog(pamh, LOG_INFO, "jitkey session of %s opened", user);
	return PAM_SUCCESS;
}

/*
 * close_session: the user's session ended, so the agent ends the jitkey
 * session: it disables the account, ends its processes and gives it a
 * new random password.
 */
JK_EXPORT PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	uint8_t s[JK_SESSION_LEN];
	(void)flags;
	parse_args(pamh, argc, argv, &a);
	const char *user = user_of(pamh, &a);
	if (user == NULL || !a.end || session_of(pamh, s) < 0)
		return PAM_IGNORE;
	if (end_session(pamh, &a, -1, s) < 0) {
		pam_syslog(pamh, LOG_ERR, "jitkey session of %s not ended; the agent ends it at its deadline", user);
		return PAM_SESSION_ERR;
	}
	pam_syslog(pamh, LOG_NOTICE, "jitkey session of %s ended", user);
	return PAM_SUCCESS;
}
