/*
 * ui.h: the window of jitkey's authorization mechanism, as mechanism.c
 * uses it. ui_appkit.m implements it with AppKit inside SecurityAgent.
 * The window shows, by the core's state: the QR code (PNG from the
 * agent) and its text, a "technician email" field with "Send to my
 * phone" (push), the number to pick on the phone, "username + code"
 * fields while the agent accepts offline codes, the agent's refusal, and
 * always a local username/password form (customer and break-glass
 * accounts log in as before, whatever state the agent is in).
 */
#ifndef JK_UI_H
#define JK_UI_H

#include <stddef.h>
#include <stdint.h>

/* What the window shows. Strings and the PNG are copied by jk_ui_update. */
struct jk_ui_view {
	int state; /* enum jkc_state */
	int online, otp;
	const uint8_t *png;
	size_t png_len;
	const char *qr_text;
	int number;         /* JKC_PUSH_NUMBER */
	const char *reason; /* JKC_DENIED, or why the agent is unavailable */
	int agent_down;     /* no agent: only the local form */
};

/* The user's actions, called on the UI thread; the worker queues them. */
struct jk_ui_actions {
	void (*push)(void *ctx, const char *email);
	void (*code)(void *ctx, const char *username, const char *code);
	void *ctx;
};

enum jk_ui_outcome {
	JK_UI_CANCEL = 0, /* the user closed the window */
	JK_UI_AGENT,      /* the agent's Credential: mechanism.c has it */
	JK_UI_LOCAL,      /* the local form: username and password below */
};

#define JK_UI_MAX 256

struct jk_ui_result {
	enum jk_ui_outcome outcome;
	char username[JK_UI_MAX + 1];
	char password[JK_UI_MAX + 1]; /* wiped by mechanism.c after use */
};

struct jk_ui;

/* jk_ui_open makes the window (main thread). elevate: admin prompt wording. */
struct jk_ui *jk_ui_open(int elevate, const struct jk_ui_actions *actions);
/* jk_ui_update shows v; safe from any thread. */
void jk_ui_update(struct jk_ui *ui, const struct jk_ui_view *v);
/* jk_ui_finish ends jk_ui_run with outcome; safe from any thread. */
void jk_ui_finish(struct jk_ui *ui, enum jk_ui_outcome outcome);
/* jk_ui_run runs the window modally until an outcome (main thread). */
void jk_ui_run(struct jk_ui *ui, struct jk_ui_result *res);
/* jk_ui_close closes and frees the window (main thread). */
void jk_ui_close(struct jk_ui *ui);

#endif
