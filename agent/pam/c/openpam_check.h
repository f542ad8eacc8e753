/*
 * openpam_check.h declares, for a compile-only check on Linux, the macOS
 * functions and constants the module's OpenPAM branch uses that glibc
 * lacks (signatures and values as in macOS's <unistd.h>, <string.h> and
 * <sys/socket.h>). It is never used to build a module.
 */
#include <stddef.h>
#include <sys/types.h>
int getpeereid(int fd, uid_t *euid, gid_t *egid);
int memset_s(void *s, size_t smax, int c, size_t n);
#define SO_NOSIGPIPE 0x1022
