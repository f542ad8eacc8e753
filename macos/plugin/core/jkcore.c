//go:build (linux || darwin) && cgo

/*
 * jkcore.c: the plugin's agent connection and login state machine
 * (jkcore.h).
 */
#ifdef __linux__
#define _GNU_SOURCE /* struct ucred */
#endif
#include "jkcore.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* wipe clears n bytes in a way the compiler does not drop. */
static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}

void jkc_init(struct jkc *c)
{
	wipe(c, sizeof *c);
	c->state = JKC_IDLE;
}

void jkc_wipe(struct jkc *c) { jkc_init(c); }

int jkc_done(const struct jkc *c)
{
	return c->state == JKC_CREDENTIAL || c->state == JKC_DENIED || c->state == JKC_FAILED;
}

static int live(const struct jkc *c) { return c->state != JKC_IDLE && !jkc_done(c); }

static size_t fail(struct jkc *c)
{
	wipe(c->password, sizeof c->password);
	c->state = JKC_FAILED;
	return 0;
}

size_t jkc_begin(struct jkc *c, uint8_t *out, size_t cap, const char *surface)
{
	if (c->state != JKC_IDLE || surface == NULL ||
	    (strcmp(surface, "logon") != 0 && strcmp(surface, "unlock") != 0 && strcmp(surface, "elevate") != 0))
		return 0;
	size_t n = jk_encode_begin(out, cap, surface, 0, NULL);
	if (n > 0)
		c->state = JKC_WAITING;
	return n;
}

size_t jkc_push(struct jkc *c, uint8_t *out, size_t cap, const char *email)
{
	if (c->state != JKC_WAITING && c->state != JKC_SHOWING_QR)
		return 0;
	size_t n = jk_encode_push(out, cap, email);
	if (n > 0)
		c->state = JKC_PUSH_SENT;
	return n;
}

size_t jkc_code(struct jkc *c, uint8_t *out, size_t cap, const char *username, const char *code)
{
	if ((c->state != JKC_WAITING && c->state != JKC_SHOWING_QR) || !c->otp || username == NULL || code == NULL)
		return 0;
	size_t ul = strnlen(username, JK_MAX_STRING + 1), cl = strnlen(code, JK_MAX_STRING + 1);
	if (ul == 0 || ul > 64 || (cl != 6 && cl != 8))
		return 0;
	for (size_t i = 0; i < cl; i++)
		if (code[i] < '0' || code[i] > '9')
			return 0;
	size_t n = jk_encode_code(out, cap, username, code);
	if (n > 0)
		c->state = JKC_CODE_SENT;
	return n;
}

/* copy_text copies a decoded string into dst (cap bytes + NUL); -1 if it
 * does not fit or holds a NUL. */
static int copy_text(char *dst, size_t cap, struct jk_str s)
{
	if (s.n > cap || (s.n > 0 && memchr(s.p, 0, s.n) != NULL))
		return -1;
	if (s.n > 0)
		memcpy(dst, s.p, s.n);
	dst[s.n] = 0;
	return 0;
}

int jkc_on_message(struct jkc *c, const uint8_t *body, size_t n)
{
	struct jk_msg m;
	if (!live(c) || jk_decode(body, n, &m) < 0) {
		fail(c);
		return JKC_EV_ERROR;
	}
	switch (m.type) {
	case JK_MSG_STATUS:
		c->online = m.u.status.online;
		c->otp = m.u.status.otp;
		if (m.u.status.second_approval) {
			/* SPEC.md 5.7.7: the QR code is offered no more. */
			c->state = JKC_SECOND_APPROVAL;
			wipe(c->qr_png, c->qr_png_len);
			c->qr_png_len = 0;
			c->qr_text[0] = 0;
			c->qr_expires = 0;
		}
		return JKC_EV_STATUS;
	case JK_MSG_QR:
		if (c->state == JKC_SECOND_APPROVAL)
			return JKC_EV_STATUS; /* not offered while waiting: ignored */
		if (m.u.qr.png.n > sizeof c->qr_png || copy_text(c->qr_text, JKC_MAX_QRTEXT, m.u.qr.text) < 0) {
			fail(c);
			return JKC_EV_ERROR;
		}
		if (m.u.qr.png.n > 0)
			memcpy(c->qr_png, m.u.qr.png.p, m.u.qr.png.n);
		c->qr_png_len = m.u.qr.png.n;
		c->qr_expires = m.u.qr.expires;
		if (c->state == JKC_WAITING)
			c->state = JKC_SHOWING_QR;
		return JKC_EV_QR;
	case JK_MSG_NUMBER:
		if (c->state == JKC_SECOND_APPROVAL)
			return JKC_EV_STATUS; /* a push sent just before: ignored */
		if (c->state != JKC_PUSH_SENT) {
			fail(c);
			return JKC_EV_ERROR;
		}
		c->number = m.u.number.number;
		c->state = JKC_PUSH_NUMBER;
		return JKC_EV_NUMBER;
	case JK_MSG_CREDENTIAL:
		if (m.u.cred.username.n == 0 || m.u.cred.password.n == 0 ||
		    copy_text(c->username, JKC_MAX_NAME, m.u.cred.username) < 0 ||
		    copy_text(c->password, JKC_MAX_SECRET, m.u.cred.password) < 0) {
			fail(c);
			return JKC_EV_ERROR;
		}
		memcpy(c->session, m.u.cred.session, JK_SESSION_LEN);
		c->deadline = m.u.cred.deadline;
		c->state = JKC_CREDENTIAL;
		return JKC_EV_CREDENTIAL;
	case JK_MSG_DENIED:
		c->denied_code = m.u.denied.code;
		if (copy_text(c->reason, JKC_MAX_REASON, m.u.denied.reason) < 0)
			c->reason[0] = 0; /* over-long: shown without text */
		c->state = JKC_DENIED;
		return JKC_EV_DENIED;
	}
	/* Ended during a login: not expected. */
	fail(c);
	return JKC_EV_ERROR;
}

void jkc_on_lost(struct jkc *c)
{
	if (!jkc_done(c))
		fail(c);
}

/* peer_uid returns the connected peer's effective uid. */
static int peer_uid(int fd, uid_t *uid)
{
#ifdef __APPLE__
	gid_t gid;
	return getpeereid(fd, uid, &gid);
#else
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof cr)
		return -1;
	*uid = cr.uid;
	return 0;
#endif
}

int jkc_connect(const char *path, uid_t want_uid)
{
	struct sockaddr_un sa;
	if (path == NULL || strlen(path) >= sizeof sa.sun_path)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
#ifdef __APPLE__
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
	uid_t uid;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || peer_uid(fd, &uid) < 0 || uid != want_uid) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
#ifdef MSG_NOSIGNAL
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
#else
		ssize_t w = send(fd, p, n, 0);
#endif
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int jkc_write_frame(int fd, const uint8_t *body, size_t n)
{
	if (n == 0 || n > JK_MAX_FRAME)
		return -1;
	uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	if (write_all(fd, hdr, 4) < 0 || write_all(fd, body, n) < 0)
		return -1;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* read_full reads n bytes before the deadline (monotonic ms). */
static int read_full(int fd, uint8_t *p, size_t n, long long deadline)
{
	while (n > 0) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd pfd = {fd, POLLIN, 0};
		int r = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t got = recv(fd, p, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

long jkc_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	uint8_t hdr[4];
	long long deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	if (read_full(fd, hdr, 4, deadline) < 0)
		return -1;
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > JK_MAX_FRAME || n > cap)
		return -1;
	if (read_full(fd, buf, n, deadline) < 0)
		return -1;
	return (long)n;
}
