// tile.cpp: the jitkey tile's state machine (tile.h). No exceptions: the
// DLL is built with -fno-exceptions and nothing here allocates after
// construction except jk_tile_new itself (which returns NULL on failure).
#include "tile.h"
#include "qrterm.h"

#include <new>
#include <stdio.h>
#include <string.h>

extern "C" void jk_wipe(void *p, size_t n)
{
	volatile uint8_t *v = static_cast<volatile uint8_t *>(p);
	while (n--)
		*v++ = 0;
}

namespace {

const size_t kText = 512; // longest field text, bytes

// copy_text copies a decoded string into a NUL-terminated field, keeping
// printable characters only (an agent reason is shown, never executed).
void copy_text(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		uint8_t c = p[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : char(c);
	}
	// Do not cut a UTF-8 sequence in half.
	while (o > 0 && (uint8_t(dst[o - 1]) & 0xc0) == 0x80 && o == cap - 1)
		o--;
	dst[o] = 0;
}

bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

} // namespace

struct jk_tile {
	int mode = JK_MODE_CONNECTING;
	char surface[16] = "logon"; // Begin's surface without a target
	bool ask_target = false;    // mode TARGET before connecting
	char target[JK_MAX_TARGET + 1] = {}; // this login's Target; "" = this computer
	bool online = false, otp = false, have_status = false;
	bool auto_offline = false; // OFFLINE entered because the agent is offline
	uint32_t gen = 1, qr_gen = 0;
	uint8_t qr[JK_QR_MAX_SIDE * JK_QR_MAX_SIDE];
	int qr_side = 0;
	char text[JK_F_COUNT][kText] = {};
	// The credential, until the DLL takes it.
	bool ready = false;
	char user[JK_MAX_ACCOUNT + 1] = {};
	uint8_t pw[JK_MAX_PASSWORD] = {};
	size_t pw_len = 0;
	uint8_t session[JK_SESSION_LEN] = {};
	// The message waiting to be sent.
	uint8_t out[1024] = {};
	size_t out_len = 0;

	jk_tile()
	{
		set(JK_F_TITLE, "jitkey");
		set(JK_F_LINK_PUSH, "Send notification");
		set(JK_F_LINK_OFFLINE, "Use an offline code");
		set(JK_F_SUBMIT, "Submit");
		status("Connecting to the jitkey agent...");
	}
	~jk_tile()
	{
		wipe_secrets();
	}

	void wipe_secrets()
	{
		jk_wipe(pw, sizeof pw);
		jk_wipe(out, sizeof out);
		jk_wipe(text[JK_F_CODE], kText);
		pw_len = out_len = 0;
		ready = false;
	}

	void set(int f, const char *s)
	{
		if (strncmp(text[f], s, kText) != 0) {
			snprintf(text[f], kText, "%s", s);
			gen++;
		}
	}
	void status(const char *s) { set(JK_F_STATUS, s); }
	bool remote() const { return target[0] != 0; }

	void go(int m)
	{
		if (mode != m) {
			mode = m;
			gen++;
		}
		switch (mode) {
		case JK_MODE_QR:
			set(JK_F_LINK_BACK, "Back to the QR code");
			if (remote()) {
				char s[kText];
				if (!have_status || online)
					snprintf(s, sizeof s, "Scan the QR code with the jitkey app: Remote Desktop to %s", target);
				else
					snprintf(s, sizeof s, "This computer is offline: Remote Desktop to %s needs the jitkey app's approval online", target);
				status(s);
			} else if (!have_status || online)
				status(otp ? "Scan the QR code with the jitkey app, or use an offline code" : "Scan the QR code with the jitkey app");
			else
				status("This computer is offline and takes no offline code now: use another sign-in option");
			break;
		case JK_MODE_PUSH:
			set(JK_F_LINK_BACK, "Back to the QR code");
			status("Enter your email address, then Submit: your phone gets a notification");
			break;
		case JK_MODE_OFFLINE:
			set(JK_F_LINK_BACK, "Back to the QR code");
			status(online ? "Enter your jitkey username and the code your app shows"
				      : "This computer is offline: enter your jitkey username and the code your app shows");
			break;
		case JK_MODE_DOWN:
			set(JK_F_LINK_BACK, "Try again");
			status("The jitkey agent is not running: use another sign-in option");
			break;
		case JK_MODE_DENIED:
			set(JK_F_LINK_BACK, "Start again");
			break;
		case JK_MODE_TARGET:
			status("Remote Desktop: enter the computer to connect to as jitkey knows it, then Submit (empty: sign in on this computer)");
			break;
		case JK_MODE_SECOND_APPROVAL:
			// SPEC.md 5.7.7: no names (anyone at the screen reads it).
			set(JK_F_LINK_BACK, "Start again");
			status("Approved. Waiting for a second approver...");
			break;
		default:
			break;
		}
	}

	// follow_status switches between QR and OFFLINE as the agent says.
	void follow_status()
	{
		if (remote()) { // no codes, no push during a login with a Target
			if (mode == JK_MODE_CONNECTING || mode == JK_MODE_QR)
				go(JK_MODE_QR);
			return;
		}
		bool auto_mode = mode == JK_MODE_CONNECTING || mode == JK_MODE_QR ||
				 (mode == JK_MODE_OFFLINE && auto_offline) || (mode == JK_MODE_PUSH && !online);
		if (!auto_mode) {
			if (mode == JK_MODE_OFFLINE && !otp)
				go(JK_MODE_QR); // codes no longer taken
			return;
		}
		if (!online && otp) {
			auto_offline = true;
			go(JK_MODE_OFFLINE);
		} else {
			auto_offline = false;
			go(JK_MODE_QR);
		}
	}
};

extern "C" {

jk_tile *jk_tile_new(void) { return new (std::nothrow) jk_tile(); }

void jk_tile_free(jk_tile *t) { delete t; }

void jk_tile_setup(jk_tile *t, const char *surface, int ask_target)
{
	if (surface != nullptr && strlen(surface) < sizeof t->surface)
		snprintf(t->surface, sizeof t->surface, "%s", surface);
	t->ask_target = ask_target != 0;
}

int jk_tile_set_target_hint(jk_tile *t, const char *spn)
{
	char host[JK_MAX_TARGET + 1];
	if (jk_target_from_spn(spn, host, sizeof host) == 0)
		return -1;
	t->set(JK_F_TARGET, host);
	return 0;
}

int jk_tile_start(jk_tile *t)
{
	jk_tile_connecting(t);
	t->target[0] = 0;
	if (t->ask_target) {
		t->go(JK_MODE_TARGET);
		return JK_ACT_NONE;
	}
	return JK_ACT_CONNECT;
}

size_t jk_tile_begin(const jk_tile *t, uint8_t *out, size_t cap)
{
	// A Target asks for a domain logon (action 1) from this computer to
	// the target (SPEC.md 5.7.1): surface logon, whatever the scenario.
	if (t->remote())
		return jk_encode_begin(out, cap, "logon", 0, t->target);
	return jk_encode_begin(out, cap, t->surface, 0, nullptr);
}

size_t jk_target_from_spn(const char *in, char *out, size_t cap)
{
	if (out != nullptr && cap > 0)
		out[0] = 0;
	if (in == nullptr || out == nullptr)
		return 0;
	size_t n = strnlen(in, 1024);
	const char *p = in, *end = in + n;
	if (const char *slash = static_cast<const char *>(memchr(p, '/', n)))
		p = slash + 1; // SERVICE/host
	const char *q = p;
	while (q < end && *q != ':' && *q != '/')
		q++; // host:port, host/name
	end = q;
	while (p < end && *p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	size_t len = size_t(end - p);
	if (len == 0 || len > JK_MAX_TARGET || len + 1 > cap)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = uint8_t(p[i]);
		if (c < 0x20 || c == 0x7f || c == ' ' || c == '\\' || c == '@')
			return 0;
	}
	if (!jk_utf8_valid(reinterpret_cast<const uint8_t *>(p), len))
		return 0;
	memcpy(out, p, len);
	out[len] = 0;
	return len;
}

void jk_tile_connecting(jk_tile *t)
{
	t->wipe_secrets();
	t->have_status = t->online = t->otp = t->auto_offline = false;
	t->qr_side = 0;
	t->qr_gen++;
	t->set(JK_F_NUMBER, "");
	t->go(JK_MODE_CONNECTING);
	t->status("Connecting to the jitkey agent...");
}

void jk_tile_agent_down(jk_tile *t)
{
	if (t->mode == JK_MODE_APPROVED)
		return; // the credential is here; the connection may end
	t->qr_side = 0;
	t->qr_gen++;
	t->go(JK_MODE_DOWN);
}

void jk_tile_agent_refused(jk_tile *t)
{
	jk_tile_agent_down(t);
	if (t->mode == JK_MODE_DOWN)
		t->status("This prompt runs without the rights to reach the jitkey agent (it admits only SYSTEM): use another sign-in option");
}

void jk_tile_message(jk_tile *t, const struct jk_msg *m)
{
	if (t->mode == JK_MODE_APPROVED || t->mode == JK_MODE_DENIED || t->mode == JK_MODE_DOWN || t->mode == JK_MODE_TARGET)
		return;
	switch (m->type) {
	case JK_MSG_STATUS:
		t->have_status = true;
		t->online = m->u.status.online != 0;
		t->otp = m->u.status.otp != 0;
		t->gen++;
		if (m->u.status.second_approval && t->mode != JK_MODE_SECOND_APPROVAL) {
			// The QR code is offered no more (SPEC.md 5.7.7).
			t->qr_side = 0;
			t->qr_gen++;
			t->set(JK_F_NUMBER, "");
			jk_wipe(t->text[JK_F_CODE], kText);
			t->go(JK_MODE_SECOND_APPROVAL);
		}
		if (t->mode != JK_MODE_SECOND_APPROVAL)
			t->follow_status();
		break;
	case JK_MSG_QR: {
		if (t->mode == JK_MODE_SECOND_APPROVAL)
			break; // not offered while waiting
		int side = jk_qr_parse(m->u.qr.terminal.p, m->u.qr.terminal.n, t->qr, sizeof t->qr);
		t->qr_side = side;
		t->qr_gen++;
		t->gen++;
		if (side == 0 && t->mode == JK_MODE_QR)
			t->status("The QR code is too large for this tile: use Send notification or an offline code");
		if (t->mode == JK_MODE_CONNECTING)
			t->go(JK_MODE_QR);
		break;
	}
	case JK_MSG_NUMBER: {
		if (t->mode == JK_MODE_SECOND_APPROVAL)
			break; // a push sent just before the approval: nothing to pick now
		char n[8];
		snprintf(n, sizeof n, "%u", unsigned(m->u.number.number));
		t->set(JK_F_NUMBER, n);
		t->go(JK_MODE_PUSH_WAIT);
		t->status("On your phone, pick this number to approve");
		break;
	}
	case JK_MSG_CREDENTIAL:
		if (m->u.cred.username.n == 0 || m->u.cred.username.n > JK_MAX_ACCOUNT ||
		    m->u.cred.password.n == 0 || m->u.cred.password.n > JK_MAX_PASSWORD) {
			t->go(JK_MODE_DENIED);
			t->status("The agent sent an unusable credential");
			break;
		}
		memcpy(t->user, m->u.cred.username.p, m->u.cred.username.n);
		t->user[m->u.cred.username.n] = 0;
		memcpy(t->pw, m->u.cred.password.p, m->u.cred.password.n);
		t->pw_len = m->u.cred.password.n;
		memcpy(t->session, m->u.cred.session, JK_SESSION_LEN);
		t->ready = true;
		jk_wipe(t->text[JK_F_CODE], kText);
		t->go(JK_MODE_APPROVED);
		{
			char s[kText];
			snprintf(s, sizeof s, "Approved: signing in as %s", t->user);
			t->status(s);
		}
		break;
	case JK_MSG_DENIED: {
		char reason[kText];
		copy_text(reason, sizeof reason, m->u.denied.reason.p, m->u.denied.reason.n);
		jk_wipe(t->text[JK_F_CODE], kText);
		t->go(JK_MODE_DENIED);
		t->status(reason[0] ? reason : "Refused by the jitkey agent");
		break;
	}
	default:
		// Anything unexpected ends the exchange (SPEC 5.7).
		t->go(JK_MODE_DENIED);
		t->status("Unexpected answer from the jitkey agent");
		break;
	}
}

int jk_tile_link(jk_tile *t, int field)
{
	switch (field) {
	case JK_F_LINK_PUSH:
		if (t->mode == JK_MODE_QR && t->online && !t->remote()) {
			t->go(JK_MODE_PUSH);
			return JK_ACT_NONE;
		}
		break;
	case JK_F_LINK_OFFLINE:
		if (t->mode == JK_MODE_QR && t->otp && !t->remote()) {
			t->auto_offline = false;
			t->go(JK_MODE_OFFLINE);
			return JK_ACT_NONE;
		}
		break;
	case JK_F_LINK_BACK:
		if (t->mode == JK_MODE_DOWN || t->mode == JK_MODE_DENIED || t->mode == JK_MODE_PUSH_WAIT ||
		    t->mode == JK_MODE_SECOND_APPROVAL)
			return JK_ACT_RESTART;
		if ((t->mode == JK_MODE_PUSH || t->mode == JK_MODE_OFFLINE) && t->online) {
			t->auto_offline = false;
			t->go(JK_MODE_QR);
		}
		break;
	}
	return JK_ACT_NONE;
}

int jk_tile_set_string(jk_tile *t, int field, const char *s)
{
	size_t max = field == JK_F_EMAIL ? JK_MAX_EMAIL : field == JK_F_USERNAME ? JK_MAX_USERNAME : field == JK_F_CODE ? 8
		   : field == JK_F_TARGET ? JK_MAX_TARGET : 0;
	if (max == 0 || s == nullptr)
		return -1;
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return -1;
	memcpy(t->text[field], s, n);
	t->text[field][n] = 0;
	return 0;
}

int jk_tile_submit(jk_tile *t)
{
	if (t->mode == JK_MODE_TARGET) {
		const char *in = t->text[JK_F_TARGET];
		char clean[JK_MAX_TARGET + 1];
		if (in[strspn(in, " ")] == 0) {
			t->target[0] = 0; // a login on this computer
		} else if (jk_target_from_spn(in, clean, sizeof clean) == 0) {
			t->status("Enter a computer name (up to 64 characters, no spaces), or leave it empty");
			return JK_ACT_NONE;
		} else {
			memcpy(t->target, clean, sizeof t->target);
		}
		t->go(JK_MODE_CONNECTING);
		t->status("Connecting to the jitkey agent...");
		return JK_ACT_CONNECT;
	}
	if (t->mode == JK_MODE_PUSH) {
		const char *e = t->text[JK_F_EMAIL];
		if (e[0] == 0 || strchr(e, '@') == nullptr) {
			t->status("Enter the email address of your jitkey account");
			return JK_ACT_NONE;
		}
		t->out_len = jk_encode_push(t->out, sizeof t->out, e);
		if (t->out_len == 0) {
			t->status("That email address cannot be used");
			return JK_ACT_NONE;
		}
		t->set(JK_F_NUMBER, "");
		t->go(JK_MODE_PUSH_WAIT);
		t->status("Notification sent: wait for the number to pick on your phone");
		return JK_ACT_SEND;
	}
	if (t->mode == JK_MODE_OFFLINE) {
		const char *u = t->text[JK_F_USERNAME];
		char *c = t->text[JK_F_CODE];
		size_t cn = strlen(c);
		if (u[0] == 0 || (cn != 6 && cn != 8) || !digits(c, cn)) {
			t->status("Enter your jitkey username and the 6 or 8 digits of the code");
			return JK_ACT_NONE;
		}
		t->out_len = jk_encode_code(t->out, sizeof t->out, u, c);
		jk_wipe(c, kText);
		if (t->out_len == 0) {
			t->status("That username cannot be used");
			return JK_ACT_NONE;
		}
		t->go(JK_MODE_CHECKING);
		t->status("Checking the code...");
		return JK_ACT_SEND;
	}
	return JK_ACT_NONE;
}

size_t jk_tile_outgoing(jk_tile *t, uint8_t *out, size_t cap)
{
	size_t n = t->out_len;
	if (n == 0 || n > cap)
		return 0;
	memcpy(out, t->out, n);
	jk_wipe(t->out, sizeof t->out);
	t->out_len = 0;
	return n;
}

int jk_tile_mode(const jk_tile *t) { return t->mode; }

int jk_tile_field_state(const jk_tile *t, int f)
{
	int m = t->mode;
	switch (f) {
	case JK_F_IMAGE:
	case JK_F_TITLE:
		return JK_BOTH;
	case JK_F_STATUS:
		return JK_SELECTED;
	case JK_F_NUMBER:
		return m == JK_MODE_PUSH_WAIT && t->text[JK_F_NUMBER][0] ? JK_SELECTED : JK_HIDDEN;
	case JK_F_EMAIL:
		return m == JK_MODE_PUSH ? JK_SELECTED : JK_HIDDEN;
	case JK_F_USERNAME:
	case JK_F_CODE:
		return m == JK_MODE_OFFLINE ? JK_SELECTED : JK_HIDDEN;
	case JK_F_SUBMIT:
		return m == JK_MODE_PUSH || m == JK_MODE_OFFLINE || m == JK_MODE_TARGET ? JK_SELECTED : JK_HIDDEN;
	case JK_F_TARGET:
		return m == JK_MODE_TARGET ? JK_SELECTED : JK_HIDDEN;
	case JK_F_LINK_PUSH:
		return m == JK_MODE_QR && t->online && !t->remote() ? JK_SELECTED : JK_HIDDEN;
	case JK_F_LINK_OFFLINE:
		return m == JK_MODE_QR && t->otp && !t->remote() ? JK_SELECTED : JK_HIDDEN;
	case JK_F_LINK_BACK:
		if (m == JK_MODE_DOWN || m == JK_MODE_DENIED || m == JK_MODE_PUSH_WAIT || m == JK_MODE_SECOND_APPROVAL)
			return JK_SELECTED;
		return (m == JK_MODE_PUSH || m == JK_MODE_OFFLINE) && t->online ? JK_SELECTED : JK_HIDDEN;
	}
	return JK_HIDDEN;
}

int jk_tile_field_interactive(const jk_tile *t, int f)
{
	if (f == JK_F_EMAIL && t->mode == JK_MODE_PUSH)
		return JK_IS_FOCUSED;
	if (f == JK_F_USERNAME && t->mode == JK_MODE_OFFLINE)
		return JK_IS_FOCUSED;
	if (f == JK_F_TARGET && t->mode == JK_MODE_TARGET)
		return JK_IS_FOCUSED;
	return JK_IS_NONE;
}

const char *jk_tile_string(const jk_tile *t, int f)
{
	if (f < 0 || f >= JK_F_COUNT || f == JK_F_CODE)
		return ""; // the code is never read back
	return t->text[f];
}

const uint8_t *jk_tile_qr(const jk_tile *t, int *side)
{
	if (t->qr_side == 0 || t->mode != JK_MODE_QR) {
		*side = 0;
		return nullptr;
	}
	*side = t->qr_side;
	return t->qr;
}

int jk_tile_submit_adjacent(const jk_tile *t)
{
	return t->mode == JK_MODE_PUSH ? JK_F_EMAIL : t->mode == JK_MODE_TARGET ? JK_F_TARGET : JK_F_CODE;
}

uint32_t jk_tile_generation(const jk_tile *t) { return t->gen; }

uint32_t jk_tile_qr_generation(const jk_tile *t) { return t->qr_gen; }

int jk_tile_ready(const jk_tile *t) { return t->ready; }

int jk_tile_take_credential(jk_tile *t, char *user, size_t ucap, uint8_t *pw, size_t pcap,
			    uint8_t session[JK_SESSION_LEN])
{
	size_t un = strlen(t->user);
	if (!t->ready || un + 1 > ucap || t->pw_len > pcap)
		return -1;
	memcpy(user, t->user, un + 1);
	memcpy(pw, t->pw, t->pw_len);
	memcpy(session, t->session, JK_SESSION_LEN);
	int n = int(t->pw_len);
	jk_wipe(t->pw, sizeof t->pw);
	t->pw_len = 0;
	t->ready = false;
	return n;
}

} // extern "C"
