/*
 * mechanism.c: jitkey's macOS authorization plugin (JitkeyLogin.bundle),
 * the C half: the plugin and mechanism entry points of Apple's
 * Authorization Plug-in API (AuthorizationPluginCreate and the
 * AuthorizationPluginInterface functions), the agent conversation (a
 * worker thread driving jkcore over the agent's Unix socket), and the
 * hand-over of the result to the login window or admin prompt through
 * the authorization context.
 *
 * Mechanisms (authdb installs them; see macos/authdb):
 *	JitkeyLogin:login      system.login.console, in loginwindow:login's place
 *	JitkeyLogin:elevate    admin prompts (system.preferences, system.privilege.admin)
 *	JitkeyLogin:admin      privileged: the user named in the context must be
 *	                       in the admin group (after builtin:authenticate)
 *
 * login and elevate put the user name and password (from the agent's
 * Credential, or from the window's local form) into the context as
 * kAuthorizationEnvironmentUsername and kAuthorizationEnvironmentPassword
 * and as hints, and allow; Apple's builtin:authenticate that follows
 * checks them against the directory. The plugin decides nothing else: it
 * holds no policy and keeps no secret beyond the moment it hands the
 * password over (then wipes it).
 *
 * Built only on macOS (Makefile in this directory). Not built or run in
 * this repository's CI: there is no macOS SDK there.
 */
#include <Security/AuthorizationPlugin.h>
#include <Security/AuthorizationTags.h>
#include <errno.h>
#include <membership.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jkcore.h"
#include "ui.h"

#define JK_AGENT_SOCKET "/var/run/jitkey/agent.sock"
#define JK_AGENT_UID 0
#define JK_POLL_MS 250

enum jk_kind { JK_LOGIN = 1, JK_ELEVATE, JK_ADMIN };

struct jk_plugin {
	const AuthorizationCallbacks *cb;
};

struct jk_mech {
	struct jk_plugin *plugin;
	AuthorizationEngineRef engine;
	enum jk_kind kind;
};

/* A login conversation: the core, its socket, the worker and the user's
 * queued action. */
struct jk_session {
	struct jkc core;
	int fd;
	struct jk_ui *ui;
	pthread_mutex_t mu;
	int pending; /* 0 none, 1 push, 2 code */
	char email[JK_MAX_EMAIL + 1];
	char user[65], code[9];
	atomic_int stop;
	uint8_t buf[JK_MAX_FRAME];
};

static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}

static void show(struct jk_session *s, const char *reason, int agent_down)
{
	struct jk_ui_view v = {
		.state = s->core.state,
		.online = s->core.online,
		.otp = s->core.otp,
		.png = s->core.qr_png,
		.png_len = s->core.qr_png_len,
		.qr_text = s->core.qr_text,
		.number = s->core.number,
		.reason = reason ? reason : s->core.reason,
		.agent_down = agent_down,
	};
	jk_ui_update(s->ui, &v);
}

static void on_push(void *ctx, const char *email)
{
	struct jk_session *s = ctx;
	pthread_mutex_lock(&s->mu);
	if (strlen(email) <= JK_MAX_EMAIL) {
		strcpy(s->email, email);
		s->pending = 1;
	}
	pthread_mutex_unlock(&s->mu);
}

static void on_code(void *ctx, const char *user, const char *code)
{
	struct jk_session *s = ctx;
	pthread_mutex_lock(&s->mu);
	if (strlen(user) < sizeof s->user && strlen(code) < sizeof s->code) {
		strcpy(s->user, user);
		strcpy(s->code, code);
		s->pending = 2;
	}
	pthread_mutex_unlock(&s->mu);
}

/* send_pending sends the user's queued action, if the core allows it. */
static int send_pending(struct jk_session *s)
{
	uint8_t out[1024];
	size_t n = 0;
	pthread_mutex_lock(&s->mu);
	if (s->pending == 1)
		n = jkc_push(&s->core, out, sizeof out, s->email);
	else if (s->pending == 2)
		n = jkc_code(&s->core, out, sizeof out, s->user, s->code);
	wipe(s->code, sizeof s->code);
	s->pending = 0;
	pthread_mutex_unlock(&s->mu);
	int rc = n > 0 ? jkc_write_frame(s->fd, out, n) : 0;
	wipe(out, sizeof out);
	return rc;
}

static void *worker(void *arg)
{
	struct jk_session *s = arg;
	while (!atomic_load(&s->stop) && !jkc_done(&s->core)) {
		if (send_pending(s) < 0) {
			jkc_on_lost(&s->core);
			break;
		}
		/* Wait for the first byte of a frame, checking the user's
		 * actions every JK_POLL_MS; then read the whole frame (a
		 * timeout inside a frame would lose the stream's framing). */
		struct pollfd pfd = {s->fd, POLLIN, 0};
		int r = poll(&pfd, 1, JK_POLL_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			continue;
		long n = r > 0 ? jkc_read_frame(s->fd, s->buf, sizeof s->buf, 10000) : -1;
		if (n < 0) {
			jkc_on_lost(&s->core);
			break;
		}
		jkc_on_message(&s->core, s->buf, (size_t)n);
		wipe(s->buf, (size_t)n);
		show(s, NULL, 0);
	}
	if (s->core.state == JKC_CREDENTIAL)
		jk_ui_finish(s->ui, JK_UI_AGENT);
	else if (s->core.state == JKC_FAILED)
		show(s, "jitkey is unavailable: log in with a local account", 1);
	return NULL;
}

/* set_value puts a NUL-terminated string into the context and the hints. */
static OSStatus set_value(struct jk_mech *m, const char *key, const char *val)
{
	AuthorizationValue v = {strlen(val) + 1, (void *)val};
	OSStatus st = m->plugin->cb->SetContextValue(m->engine, key, kAuthorizationContextFlagExtractable, &v);
	if (st == errAuthorizationSuccess && strcmp(key, kAuthorizationEnvironmentPassword) != 0)
		st = m->plugin->cb->SetHintValue(m->engine, key, &v);
	return st;
}

static OSStatus run_login(struct jk_mech *m)
{
	struct jk_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return errAuthorizationInternal;
	jkc_init(&s->core);
	pthread_mutex_init(&s->mu, NULL);
	struct jk_ui_actions actions = {on_push, on_code, s};
	s->ui = jk_ui_open(m->kind == JK_ELEVATE, &actions);
	pthread_t th;
	int have_worker = 0;
	s->fd = jkc_connect(JK_AGENT_SOCKET, JK_AGENT_UID);
	uint8_t out[64];
	size_t n = s->fd >= 0 ? jkc_begin(&s->core, out, sizeof out, m->kind == JK_ELEVATE ? "elevate" : "logon") : 0;
	if (n > 0 && jkc_write_frame(s->fd, out, n) == 0 && pthread_create(&th, NULL, worker, s) == 0) {
		have_worker = 1;
		show(s, NULL, 0);
	} else {
		show(s, "jitkey is unavailable: log in with a local account", 1);
	}
	struct jk_ui_result res;
	memset(&res, 0, sizeof res);
	jk_ui_run(s->ui, &res);
	atomic_store(&s->stop, 1);
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
	if (have_worker)
		pthread_join(th, NULL);
	OSStatus st = errAuthorizationSuccess;
	AuthorizationResult result = kAuthorizationResultUserCanceled;
	const char *user = NULL, *pass = NULL;
	if (res.outcome == JK_UI_AGENT && s->core.state == JKC_CREDENTIAL) {
		user = s->core.username;
		pass = s->core.password;
	} else if (res.outcome == JK_UI_LOCAL && res.username[0] != 0) {
		user = res.username;
		pass = res.password;
	}
	if (user != NULL) {
		st = set_value(m, kAuthorizationEnvironmentUsername, user);
		if (st == errAuthorizationSuccess)
			st = set_value(m, kAuthorizationEnvironmentPassword, pass);
		result = st == errAuthorizationSuccess ? kAuthorizationResultAllow : kAuthorizationResultDeny;
	}
	/* The session id stays with the agent: it ends the session at its
	 * deadline (SPEC 5.7); the plugin does not see the logout. */
	wipe(&res, sizeof res);
	jkc_wipe(&s->core);
	jk_ui_close(s->ui);
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->mu);
	wipe(s, sizeof *s);
	free(s);
	if (st != errAuthorizationSuccess)
		result = kAuthorizationResultDeny;
	return m->plugin->cb->SetResult(m->engine, result);
}

/* run_admin: allow only if the context's user is a member of "admin". */
static OSStatus run_admin(struct jk_mech *m)
{
	AuthorizationContextFlags flags;
	const AuthorizationValue *v = NULL;
	AuthorizationResult result = kAuthorizationResultDeny;
	if (m->plugin->cb->GetContextValue(m->engine, kAuthorizationEnvironmentUsername, &flags, &v) == errAuthorizationSuccess &&
	    v != NULL && v->length > 1 && v->length <= 256 && ((const char *)v->data)[v->length - 1] == 0) {
		uuid_t user, group;
		int member = 0;
		if (mbr_user_name_to_uuid((const char *)v->data, user) == 0 &&
		    mbr_group_name_to_uuid("admin", group) == 0 &&
		    mbr_check_membership(user, group, &member) == 0 && member)
			result = kAuthorizationResultAllow;
	}
	return m->plugin->cb->SetResult(m->engine, result);
}

static OSStatus MechanismInvoke(AuthorizationMechanismRef ref)
{
	struct jk_mech *m = (struct jk_mech *)ref;
	if (m->kind == JK_ADMIN)
		return run_admin(m);
	return run_login(m);
}

static OSStatus MechanismDeactivate(AuthorizationMechanismRef ref)
{
	struct jk_mech *m = (struct jk_mech *)ref;
	return m->plugin->cb->DidDeactivate(m->engine);
}

static OSStatus MechanismDestroy(AuthorizationMechanismRef ref)
{
	free(ref);
	return errAuthorizationSuccess;
}

static OSStatus MechanismCreate(AuthorizationPluginRef pref, AuthorizationEngineRef engine,
				AuthorizationMechanismId id, AuthorizationMechanismRef *out)
{
	enum jk_kind kind;
	if (id != NULL && strcmp(id, "login") == 0)
		kind = JK_LOGIN;
	else if (id != NULL && strcmp(id, "elevate") == 0)
		kind = JK_ELEVATE;
	else if (id != NULL && strcmp(id, "admin") == 0)
		kind = JK_ADMIN;
	else
		return errAuthorizationInternal;
	struct jk_mech *m = calloc(1, sizeof *m);
	if (m == NULL)
		return errAuthorizationInternal;
	m->plugin = (struct jk_plugin *)pref;
	m->engine = engine;
	m->kind = kind;
	*out = (AuthorizationMechanismRef)m;
	return errAuthorizationSuccess;
}

static OSStatus PluginDestroy(AuthorizationPluginRef pref)
{
	free(pref);
	return errAuthorizationSuccess;
}

static const AuthorizationPluginInterface jk_interface = {
	kAuthorizationPluginInterfaceVersion,
	PluginDestroy,
	MechanismCreate,
	MechanismInvoke,
	MechanismDeactivate,
	MechanismDestroy,
};

__attribute__((visibility("default"))) OSStatus AuthorizationPluginCreate(
	const AuthorizationCallbacks *callbacks, AuthorizationPluginRef *outPlugin,
	const AuthorizationPluginInterface **outInterface)
{
	if (callbacks == NULL || outPlugin == NULL || outInterface == NULL)
		return errAuthorizationInternal;
	struct jk_plugin *p = calloc(1, sizeof *p);
	if (p == NULL)
		return errAuthorizationInternal;
	p->cb = callbacks;
	*outPlugin = (AuthorizationPluginRef)p;
	*outInterface = &jk_interface;
	return errAuthorizationSuccess;
}
