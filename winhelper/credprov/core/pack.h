/*
 * pack: the byte layout of KERB_INTERACTIVE_UNLOCK_LOGON (ntsecapi.h) as
 * LsaLogonUser and LogonUI take it from a credential provider's
 * GetSerialization on x64, built without Windows headers so that it is
 * unit-tested on Linux. The DLL checks at compile time that these
 * offsets are those of the Windows structures (static_assert on offsetof).
 *
 *   KERB_INTERACTIVE_UNLOCK_LOGON (64 bytes)
 *     0  KERB_INTERACTIVE_LOGON Logon (56 bytes)
 *          0  MessageType u32 (KerbInteractiveLogon 2, KerbWorkstationUnlockLogon 7)
 *          4  (padding)
 *          8  LogonDomainName UNICODE_STRING
 *         24  UserName        UNICODE_STRING
 *         40  Password        UNICODE_STRING
 *    56  LUID LogonId (LowPart u32, HighPart i32): 0
 *   64  strings, UTF-16LE, no terminators: domain, user, password
 *
 *   UNICODE_STRING (16 bytes): 0 Length u16 (bytes), 2 MaximumLength u16,
 *   4 (padding), 8 Buffer: here the offset of the string from the start
 *   of the serialization (LogonUI relocates it), as Microsoft's
 *   KerbInteractiveUnlockLogonPack does.
 */
#ifndef JK_PACK_H
#define JK_PACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	JK_KERB_INTERACTIVE_LOGON = 2,
	JK_KERB_WORKSTATION_UNLOCK_LOGON = 7,
	JK_UNICODE_STRING_SIZE = 16,
	JK_KIL_OFF_MESSAGE_TYPE = 0,
	JK_KIL_OFF_DOMAIN = 8,
	JK_KIL_OFF_USER = 24,
	JK_KIL_OFF_PASSWORD = 40,
	JK_KIL_SIZE = 56,
	JK_KIUL_OFF_LOGON_ID = 56,
	JK_KIUL_SIZE = 64,
	JK_PACK_MAX_STRING = 32767, /* UNICODE_STRING Length is u16 bytes */
};

/*
 * jk_kerb_pack writes the serialization into out (cap bytes) and returns
 * its size, or 0 if it does not fit or a string is longer than
 * JK_PACK_MAX_STRING UTF-16 units. Strings are UTF-16 units (host order;
 * written little-endian), lengths in units. On failure out is zeroed.
 */
size_t jk_kerb_pack(uint8_t *out, size_t cap, uint32_t message_type,
		    const uint16_t *domain, size_t domain_len,
		    const uint16_t *user, size_t user_len,
		    const uint16_t *password, size_t password_len);

/*
 * jk_account_split splits a Credential's Username (SPEC.md 5.7.3), in
 * UTF-16 units, into the logon domain and user name of a packed logon:
 * "DOMAIN\msp-x" (a domain account of a selective or Remote Desktop
 * login, 11.7) gives DOMAIN and msp-x; a name without '\' (a local
 * account) gives local (this computer's name) and the name. Returns 0,
 * or -1 if a part is empty or the name holds more than one '\'. The
 * parts point into account and local.
 */
int jk_account_split(const uint16_t *account, size_t n, const uint16_t *local, size_t ln,
		     const uint16_t **domain, size_t *dn, const uint16_t **user, size_t *un);

/*
 * jk_account_qualified writes DOMAIN\user (jk_account_split's parts)
 * into out, NUL-terminated: the user name CredPackAuthenticationBuffer
 * takes for a CredUI serialization. Returns its length in units, or 0
 * if the account does not split or out (cap units, NUL included) is too
 * small.
 */
size_t jk_account_qualified(const uint16_t *account, size_t n, const uint16_t *local, size_t ln,
			    uint16_t *out, size_t cap);

/* jk_kerb_size returns the size jk_kerb_pack needs. */
size_t jk_kerb_size(size_t domain_len, size_t user_len, size_t password_len);

/* jk_utf8_to_utf16 converts ASCII/UTF-8 (BMP only) into out; returns the
 * number of units or (size_t)-1 on invalid input or overflow. */
size_t jk_utf8_to_utf16(const uint8_t *in, size_t n, uint16_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
