//go:build (linux || darwin) && cgo

/*
 * jkmsg.c: bounded canonical CBOR for the agent's IPC messages (jkmsg.h).
 *
 * Every read goes through struct rd, whose position never passes its end:
 * each length is compared with what is left before anything is read.
 */
#include "jkmsg.h"

#include <string.h>

struct rd {
	const uint8_t *p;
	size_t n; /* bytes left */
};

/* CBOR major types. */
enum { MT_UINT = 0, MT_NEG = 1, MT_BYTES = 2, MT_TEXT = 3, MT_ARRAY = 4, MT_MAP = 5, MT_TAG = 6, MT_SIMPLE = 7 };

/*
 * head reads one item head: major type and argument, in its shortest
 * form only (core deterministic encoding). Indefinite lengths, reserved
 * additional information and non-shortest arguments are refused.
 */
static int head(struct rd *r, int *major, uint64_t *arg)
{
	if (r->n < 1)
		return -1;
	uint8_t b = r->p[0];
	int ai = b & 0x1f;
	size_t len;
	uint64_t min;
	*major = b >> 5;
	r->p++;
	r->n--;
	switch (ai) {
	case 24: len = 1; min = 24; break;
	case 25: len = 2; min = 0x100; break;
	case 26: len = 4; min = 0x10000; break;
	case 27: len = 8; min = 0x100000000ULL; break;
	default:
		if (ai > 27)
			return -1;
		*arg = (uint64_t)ai;
		return 0;
	}
	if (r->n < len)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = (v << 8) | r->p[i];
	r->p += len;
	r->n -= len;
	if (v < min)
		return -1;
	*arg = v;
	return 0;
}

/* take returns the next n bytes, or -1 if fewer are left. */
static int take(struct rd *r, uint64_t n, struct jk_str *s)
{
	if (n > r->n)
		return -1;
	s->p = r->p;
	s->n = (size_t)n;
	r->p += n;
	r->n -= (size_t)n;
	return 0;
}

/* rd_exact reads a head of major type major with argument want. */
static int rd_exact(struct rd *r, int major, uint64_t want)
{
	int mt;
	uint64_t v;
	if (head(r, &mt, &v) < 0 || mt != major || v != want)
		return -1;
	return 0;
}

/* rd_key: the map key want (a small unsigned integer). */
static int rd_key(struct rd *r, uint64_t want) { return rd_exact(r, MT_UINT, want); }

/* rd_map: a map head of exactly pairs entries. */
static int rd_map(struct rd *r, uint64_t pairs) { return rd_exact(r, MT_MAP, pairs); }

static int rd_bool(struct rd *r, int *out)
{
	if (r->n < 1)
		return -1;
	if (r->p[0] == 0xf4)
		*out = 0;
	else if (r->p[0] == 0xf5)
		*out = 1;
	else
		return -1;
	r->p++;
	r->n--;
	return 0;
}

static int rd_u8(struct rd *r, uint8_t *out)
{
	int mt;
	uint64_t v;
	if (head(r, &mt, &v) < 0 || mt != MT_UINT || v > 0xff)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/* rd_i64: a Go int64: major 0 or 1 with an argument up to 2^63-1. */
static int rd_i64(struct rd *r, int64_t *out)
{
	int mt;
	uint64_t v;
	if (head(r, &mt, &v) < 0 || v > (uint64_t)INT64_MAX)
		return -1;
	if (mt == MT_UINT)
		*out = (int64_t)v;
	else if (mt == MT_NEG)
		*out = -1 - (int64_t)v;
	else
		return -1;
	return 0;
}

/* rd_text: a CBOR text string holding valid UTF-8. */
static int rd_text(struct rd *r, struct jk_str *s)
{
	int mt;
	uint64_t v;
	if (head(r, &mt, &v) < 0 || mt != MT_TEXT || take(r, v, s) < 0)
		return -1;
	return jk_utf8_valid(s->p, s->n) ? 0 : -1;
}

/*
 * rd_bytes: a Go []byte: a byte string, or null for a nil slice (the Go
 * encoder writes nil as null).
 */
static int rd_bytes(struct rd *r, struct jk_str *s)
{
	int mt;
	uint64_t v;
	if (r->n >= 1 && r->p[0] == 0xf6) {
		r->p++;
		r->n--;
		s->p = NULL;
		s->n = 0;
		return 0;
	}
	if (head(r, &mt, &v) < 0 || mt != MT_BYTES)
		return -1;
	return take(r, v, s);
}

/* rd_session: a protocol.SessionID: a byte string of exactly 16 bytes. */
static int rd_session(struct rd *r, uint8_t out[JK_SESSION_LEN])
{
	int mt;
	uint64_t v;
	struct jk_str s;
	if (head(r, &mt, &v) < 0 || mt != MT_BYTES || v != JK_SESSION_LEN || take(r, v, &s) < 0)
		return -1;
	memcpy(out, s.p, JK_SESSION_LEN);
	return 0;
}

int jk_decode(const uint8_t *body, size_t n, struct jk_msg *m)
{
	if (body == NULL || n < 2 || n > JK_MAX_FRAME)
		return -1;
	struct rd r = {body + 1, n - 1};
	memset(m, 0, sizeof *m);
	m->type = body[0];
	switch (m->type) {
	case JK_MSG_STATUS: {
		/* Field 3 (SecondApproval) is omitted when false: a map of 2,
		 * or of 3 whose field 3 is true (false would not be canonical). */
		int mt;
		uint64_t pairs;
		if (head(&r, &mt, &pairs) < 0 || mt != MT_MAP || (pairs != 2 && pairs != 3) ||
		    rd_key(&r, 1) < 0 || rd_bool(&r, &m->u.status.online) < 0 ||
		    rd_key(&r, 2) < 0 || rd_bool(&r, &m->u.status.otp) < 0)
			return -1;
		if (pairs == 3 && (rd_key(&r, 3) < 0 || rd_bool(&r, &m->u.status.second_approval) < 0 ||
				   !m->u.status.second_approval))
			return -1;
		break;
	}
	case JK_MSG_QR:
		if (rd_map(&r, 4) < 0 ||
		    rd_key(&r, 1) < 0 || rd_text(&r, &m->u.qr.text) < 0 ||
		    rd_key(&r, 2) < 0 || rd_bytes(&r, &m->u.qr.png) < 0 ||
		    rd_key(&r, 3) < 0 || rd_text(&r, &m->u.qr.terminal) < 0 ||
		    rd_key(&r, 4) < 0 || rd_i64(&r, &m->u.qr.expires) < 0)
			return -1;
		break;
	case JK_MSG_CREDENTIAL:
		if (rd_map(&r, 4) < 0 ||
		    rd_key(&r, 1) < 0 || rd_text(&r, &m->u.cred.username) < 0 ||
		    rd_key(&r, 2) < 0 || rd_bytes(&r, &m->u.cred.password) < 0 ||
		    rd_key(&r, 3) < 0 || rd_session(&r, m->u.cred.session) < 0 ||
		    rd_key(&r, 4) < 0 || rd_i64(&r, &m->u.cred.deadline) < 0)
			return -1;
		break;
	case JK_MSG_DENIED:
		if (rd_map(&r, 2) < 0 ||
		    rd_key(&r, 1) < 0 || rd_u8(&r, &m->u.denied.code) < 0 ||
		    rd_key(&r, 2) < 0 || rd_text(&r, &m->u.denied.reason) < 0)
			return -1;
		break;
	case JK_MSG_ENDED:
		if (rd_map(&r, 1) < 0 || rd_key(&r, 1) < 0 || rd_bool(&r, &m->u.ended.ok) < 0)
			return -1;
		break;
	case JK_MSG_NUMBER:
		if (rd_map(&r, 1) < 0 || rd_key(&r, 1) < 0 || rd_u8(&r, &m->u.number.number) < 0 ||
		    m->u.number.number < 10 || m->u.number.number > 99)
			return -1;
		break;
	default:
		return -1;
	}
	return r.n == 0 ? 0 : -1;
}

int jk_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		size_t len;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2; cp = c & 0x1f; min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3; cp = c & 0x0f; min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Writer: w.n counts what was written; w.err is set when cap is exceeded. */
struct wr {
	uint8_t *p;
	size_t cap, n;
	int err;
};

static void put(struct wr *w, const void *b, size_t n)
{
	if (w->err || n > w->cap - w->n) {
		w->err = 1;
		return;
	}
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void put_head(struct wr *w, int major, uint64_t v)
{
	uint8_t b[9];
	size_t n;
	uint8_t mt = (uint8_t)(major << 5);
	if (v < 24) {
		b[0] = mt | (uint8_t)v;
		n = 1;
	} else if (v <= 0xff) {
		b[0] = mt | 24;
		b[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		b[0] = mt | 25;
		b[1] = (uint8_t)(v >> 8);
		b[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffULL) {
		b[0] = mt | 26;
		for (int i = 0; i < 4; i++)
			b[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		b[0] = mt | 27;
		for (int i = 0; i < 8; i++)
			b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	put(w, b, n);
}

static void put_text(struct wr *w, const char *s)
{
	if (w->err || s == NULL) {
		w->err = 1;
		return;
	}
	size_t n = strnlen(s, JK_MAX_STRING + 1);
	if (n > JK_MAX_STRING || !jk_utf8_valid((const uint8_t *)s, n)) {
		w->err = 1;
		return;
	}
	put_head(w, MT_TEXT, n);
	put(w, s, n);
}

static size_t finish(struct wr *w)
{
	if (w->err) {
		if (w->p != NULL && w->cap > 0)
			memset(w->p, 0, w->cap);
		return 0;
	}
	return w->n;
}

size_t jk_encode_begin(uint8_t *out, size_t cap, const char *surface, uint8_t action, const char *target)
{
	size_t tn = target == NULL ? 0 : strnlen(target, JK_MAX_TARGET + 1);
	struct wr w = {out, cap, 0, out == NULL || surface == NULL || tn > JK_MAX_TARGET};
	uint8_t t = JK_MSG_BEGIN;
	put(&w, &t, 1);
	put_head(&w, MT_MAP, tn > 0 ? 3 : 2);
	put_head(&w, MT_UINT, 1);
	put_text(&w, surface);
	put_head(&w, MT_UINT, 2);
	put_head(&w, MT_UINT, action);
	if (tn > 0) {
		put_head(&w, MT_UINT, 3);
		put_text(&w, target);
	}
	return finish(&w);
}

size_t jk_encode_code(uint8_t *out, size_t cap, const char *username, const char *code)
{
	struct wr w = {out, cap, 0, out == NULL || username == NULL || code == NULL};
	uint8_t t = JK_MSG_CODE;
	put(&w, &t, 1);
	put_head(&w, MT_MAP, 2);
	put_head(&w, MT_UINT, 1);
	put_text(&w, username);
	put_head(&w, MT_UINT, 2);
	put_text(&w, code);
	return finish(&w);
}

size_t jk_encode_end(uint8_t *out, size_t cap, const uint8_t session[JK_SESSION_LEN])
{
	struct wr w = {out, cap, 0, out == NULL || session == NULL};
	uint8_t t = JK_MSG_END;
	put(&w, &t, 1);
	put_head(&w, MT_MAP, 1);
	put_head(&w, MT_UINT, 1);
	put_head(&w, MT_BYTES, JK_SESSION_LEN);
	if (!w.err)
		put(&w, session, JK_SESSION_LEN);
	return finish(&w);
}

size_t jk_encode_push(uint8_t *out, size_t cap, const char *email)
{
	size_t n = email == NULL ? 0 : strnlen(email, JK_MAX_EMAIL + 1);
	struct wr w = {out, cap, 0, out == NULL || n == 0 || n > JK_MAX_EMAIL};
	uint8_t t = JK_MSG_PUSH;
	put(&w, &t, 1);
	put_head(&w, MT_MAP, 1);
	put_head(&w, MT_UINT, 1);
	put_text(&w, email);
	return finish(&w);
}
