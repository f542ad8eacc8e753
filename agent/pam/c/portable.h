/*
 * portable.h: the few things pam_jitkey needs that Linux (Linux-PAM, glibc)
 * and macOS (OpenPAM, libSystem) spell differently. Everything else in the
 * module is POSIX and the PAM API both implement.
 *
 * JK_OPENPAM_CHECK lets a Linux test compile the macOS branch (with
 * openpam_check.h declaring what glibc lacks); the macOS build itself is in
 * macos/plugin/Makefile and runs only on a Mac.
 */
#ifndef JK_PORTABLE_H
#define JK_PORTABLE_H

#if defined(__APPLE__) || defined(JK_OPENPAM_CHECK)
#define JK_OPENPAM 1
#endif

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_appl.h>

#ifdef JK_OPENPAM
/* OpenPAM has no pam_syslog: syslog(3) under the module's name. */
static void jk_pam_syslog(const pam_handle_t *pamh, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void jk_pam_syslog(const pam_handle_t *pamh, int prio, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	(void)pamh;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	syslog(LOG_AUTHPRIV | prio, "pam_jitkey: %s", line);
}
#define pam_syslog jk_pam_syslog
/* macOS has memset_s (C11 Annex K), which the compiler may not remove. */
#define explicit_bzero(p, n) memset_s((p), (n), 0, (n))
/* Older macOS SDKs have no MSG_NOSIGNAL; jk_socket sets SO_NOSIGPIPE anyway. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#else
#include <security/pam_ext.h>
#endif

/* jk_socket returns a close-on-exec Unix stream socket that raises no SIGPIPE. */
static int jk_socket(void)
{
#ifdef JK_OPENPAM
	int one = 1;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
		close(fd);
		return -1;
	}
	return fd;
#else
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
}

/* jk_peer_uid sets *uid to the uid of the process serving the connected socket fd. */
static int jk_peer_uid(int fd, uid_t *uid)
{
#ifdef JK_OPENPAM
	gid_t gid;
	return getpeereid(fd, uid, &gid);
#else
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred)
		return -1;
	*uid = cred.uid;
	return 0;
#endif
}

#endif
