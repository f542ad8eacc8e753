/*
 * tile: the jitkey tile's logic, without Windows: which fields the tile
 * shows in which state, what it says, what it sends the agent and when
 * its credential is ready. The credential provider DLL (credprov/dll)
 * drives it from LogonUI's calls and the pipe's messages and reflects it
 * into ICredentialProviderCredentialEvents; the Go tests of
 * winhelper/credprov/core drive it the same way on Linux.
 *
 * Modes:
 *   CONNECTING  pipe being opened, no Status yet
 *   DOWN        no agent: one line, the other tiles stay usable
 *   QR          the QR code as tile image (refreshed on every QR message);
 *               links "Send notification" (online) and "Use an offline
 *               code" (while Status.OTP)
 *   PUSH        email field + Submit ("Send notification", IPC type 9)
 *   PUSH_WAIT   the number the phone must show (IPC type 10)
 *   OFFLINE     username + code fields + Submit; entered by itself when
 *               the agent's Status says offline with OTP, left by itself
 *               when it comes back online
 *   CHECKING    a Code is with the agent
 *   APPROVED    Credential received: auto-logon
 *   DENIED      the agent's reason; link "Start again"
 *   TARGET      Remote Desktop from this computer (CredUI on a domain
 *               member, SPEC.md 11.7 RDP): the computer to connect to,
 *               then Submit; only then does the tile connect and send
 *               Begin with that Target. Empty: a login on this computer.
 *               A login with a Target shows only the QR code (the agent
 *               ignores Code and Push during it) and its Credential is a
 *               domain account, DOMAIN\msp-<tech>.
 *   SECOND_APPROVAL  the technician approved and the agent asks a second
 *               approver (Status SecondApproval, SPEC.md 5.7.7): "Approved.
 *               Waiting for a second approver...", no names, no QR code
 *               (a later QR or Number is ignored), no push or code; link
 *               "Start again"; the Credential or Denied ends it.
 */
#ifndef JK_TILE_H
#define JK_TILE_H

#include <stddef.h>
#include <stdint.h>

#include "jkmsg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Field ids (the provider's field descriptor indexes). */
enum {
	JK_F_IMAGE = 0,    /* CPFT_TILE_IMAGE */
	JK_F_TITLE,        /* CPFT_LARGE_TEXT "jitkey" */
	JK_F_STATUS,       /* CPFT_SMALL_TEXT */
	JK_F_NUMBER,       /* CPFT_LARGE_TEXT: the push number */
	JK_F_EMAIL,        /* CPFT_EDIT_TEXT */
	JK_F_USERNAME,     /* CPFT_EDIT_TEXT */
	JK_F_CODE,         /* CPFT_PASSWORD_TEXT, numbers only */
	JK_F_SUBMIT,       /* CPFT_SUBMIT_BUTTON */
	JK_F_LINK_PUSH,    /* CPFT_COMMAND_LINK "Send notification" */
	JK_F_LINK_OFFLINE, /* CPFT_COMMAND_LINK "Use an offline code" */
	JK_F_LINK_BACK,    /* CPFT_COMMAND_LINK "Back to the QR code" / "Start again" */
	JK_F_TARGET,       /* CPFT_EDIT_TEXT "Computer to connect to" (mode TARGET) */
	JK_F_COUNT
};

enum {
	JK_MODE_CONNECTING = 0,
	JK_MODE_DOWN,
	JK_MODE_QR,
	JK_MODE_PUSH,
	JK_MODE_PUSH_WAIT,
	JK_MODE_OFFLINE,
	JK_MODE_CHECKING,
	JK_MODE_APPROVED,
	JK_MODE_DENIED,
	JK_MODE_TARGET,
	JK_MODE_SECOND_APPROVAL,
};

/* Field visibility (CREDENTIAL_PROVIDER_FIELD_STATE values). */
enum { JK_HIDDEN = 0, JK_SELECTED = 1, JK_BOTH = 3 };
/* Interactive state (CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE values). */
enum { JK_IS_NONE = 0, JK_IS_DISABLED = 2, JK_IS_FOCUSED = 3 };

/*
 * What the caller must do after an input: nothing; send jk_tile_outgoing;
 * restart (jk_tile_start); connect to the agent and send jk_tile_begin.
 */
enum { JK_ACT_NONE = 0, JK_ACT_SEND = 1, JK_ACT_RESTART = 2, JK_ACT_CONNECT = 3 };

#define JK_MAX_USERNAME 64 /* the jitkey username typed for a Code */
#define JK_MAX_ACCOUNT 128 /* the Credential's Username: msp-x or DOMAIN\msp-x */
#define JK_MAX_PASSWORD 256

typedef struct jk_tile jk_tile;

jk_tile *jk_tile_new(void);
/* jk_tile_free wipes the credential and every typed value. */
void jk_tile_free(jk_tile *t);

/*
 * jk_tile_setup names the Begin surface (logon, unlock, elevate) and
 * whether the tile first asks for a Remote Desktop target (mode TARGET).
 */
void jk_tile_setup(jk_tile *t, const char *surface, int ask_target);
/*
 * jk_tile_set_target_hint prefills the target field from the name the
 * caller gave CredUI (an SPN such as TERMSRV/pc42.corp.example, or a
 * bare host); -1 if nothing usable is in it (jk_target_from_spn).
 */
int jk_tile_set_target_hint(jk_tile *t, const char *spn);
/*
 * jk_tile_start (re)starts a login: JK_ACT_CONNECT when the caller must
 * connect to the agent and send jk_tile_begin, JK_ACT_NONE when the tile
 * waits for the target first (mode TARGET).
 */
int jk_tile_start(jk_tile *t);
/* jk_tile_begin writes the login's Begin body; 0 if it does not fit. */
size_t jk_tile_begin(const jk_tile *t, uint8_t *out, size_t cap);
/* Inputs. */
void jk_tile_connecting(jk_tile *t);
void jk_tile_agent_down(jk_tile *t);
/*
 * jk_tile_agent_refused: the pipe refused this process (ACCESS_DENIED: it
 * admits only SYSTEM, SPEC.md 5.7 Windows), as in a CredUI prompt that
 * runs as the user, such as the Remote Desktop client's.
 */
void jk_tile_agent_refused(jk_tile *t);
/* jk_tile_message takes one decoded agent message (jk_decode). */
void jk_tile_message(jk_tile *t, const struct jk_msg *m);
/* jk_tile_link: a command link was clicked; returns a JK_ACT_. */
int jk_tile_link(jk_tile *t, int field);
/* jk_tile_set_string: the user typed into an edit field (UTF-8); -1 if
 * the field takes no text or the value is too long. */
int jk_tile_set_string(jk_tile *t, int field, const char *utf8);
/* jk_tile_submit: the Submit button; returns JK_ACT_SEND with a message
 * waiting in jk_tile_outgoing, JK_ACT_CONNECT (mode TARGET: the target
 * is set), or JK_ACT_NONE (the status says why). */
int jk_tile_submit(jk_tile *t);
/* jk_tile_outgoing moves the waiting message body into out and returns
 * its length (0: none or too small); the tile's copy is wiped. */
size_t jk_tile_outgoing(jk_tile *t, uint8_t *out, size_t cap);

/* Outputs. */
int jk_tile_mode(const jk_tile *t);
int jk_tile_field_state(const jk_tile *t, int field);
int jk_tile_field_interactive(const jk_tile *t, int field);
/* jk_tile_string: the field's text (UTF-8, NUL-terminated); "" if none. */
const char *jk_tile_string(const jk_tile *t, int field);
/* jk_tile_qr: the current QR modules and side, or NULL (no QR to show). */
const uint8_t *jk_tile_qr(const jk_tile *t, int *side);
/* jk_tile_submit_adjacent: the field the Submit button sits next to. */
int jk_tile_submit_adjacent(const jk_tile *t);
/* jk_tile_generation changes whenever anything visible changes. */
uint32_t jk_tile_generation(const jk_tile *t);
/* jk_tile_qr_generation changes with every new QR code. */
uint32_t jk_tile_qr_generation(const jk_tile *t);
/* jk_tile_ready: a Credential is waiting (LogonUI may auto-logon). */
int jk_tile_ready(const jk_tile *t);
/*
 * jk_tile_take_credential moves the credential out: the account name
 * (NUL-terminated), the password bytes (not terminated) and the session
 * id; the tile's copy is wiped. Returns the password length, or -1 if
 * none is waiting or a buffer is too small.
 */
int jk_tile_take_credential(jk_tile *t, char *user, size_t ucap, uint8_t *pw, size_t pcap,
			    uint8_t session[JK_SESSION_LEN]);

/*
 * jk_target_from_spn takes the host out of a CredUI target name: the part
 * after "SERVICE/" (TERMSRV/host), before any ":port" or "/name", with
 * surrounding spaces removed, into out (NUL-terminated). Returns its
 * length, or 0 if it is empty, longer than JK_MAX_TARGET bytes, or holds
 * a control character, a space, '\' or '@', or is not valid UTF-8.
 */
size_t jk_target_from_spn(const char *in, char *out, size_t cap);

/* jk_wipe clears n bytes at p in a way the compiler keeps. */
void jk_wipe(void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif
