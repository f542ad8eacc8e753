// pack.cpp: KERB_INTERACTIVE_UNLOCK_LOGON byte layout (pack.h).
#include "pack.h"

#include <string.h>

namespace {

void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = uint8_t(v);
	p[1] = uint8_t(v >> 8);
}

void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = uint8_t(v >> (8 * i));
}

void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = uint8_t(v >> (8 * i));
}

// put_string writes the UNICODE_STRING at hdr and the characters at
// *off, advancing *off.
void put_string(uint8_t *base, size_t hdr, size_t *off, const uint16_t *s, size_t n)
{
	uint16_t bytes = uint16_t(n * 2);
	put_u16(base + hdr, bytes);
	put_u16(base + hdr + 2, bytes);
	put_u64(base + hdr + 8, n ? uint64_t(*off) : 0);
	for (size_t i = 0; i < n; i++)
		put_u16(base + *off + 2 * i, s[i]);
	*off += 2 * n;
}

} // namespace

extern "C" int jk_account_split(const uint16_t *account, size_t n, const uint16_t *local, size_t ln,
				const uint16_t **domain, size_t *dn, const uint16_t **user, size_t *un)
{
	if (account == nullptr || domain == nullptr || dn == nullptr || user == nullptr || un == nullptr)
		return -1;
	size_t slash = n, count = 0;
	for (size_t i = 0; i < n; i++)
		if (account[i] == '\\') {
			slash = i;
			count++;
		}
	if (count > 1)
		return -1;
	if (count == 0) {
		*domain = local;
		*dn = local == nullptr ? 0 : ln;
		*user = account;
		*un = n;
	} else {
		*domain = account;
		*dn = slash;
		*user = account + slash + 1;
		*un = n - slash - 1;
	}
	return *dn == 0 || *un == 0 ? -1 : 0;
}

extern "C" size_t jk_account_qualified(const uint16_t *account, size_t n, const uint16_t *local, size_t ln,
				       uint16_t *out, size_t cap)
{
	const uint16_t *d, *u;
	size_t dn, un;
	if (out == nullptr || jk_account_split(account, n, local, ln, &d, &dn, &u, &un) != 0 || dn + 1 + un + 1 > cap)
		return 0;
	memcpy(out, d, dn * 2);
	out[dn] = '\\';
	memcpy(out + dn + 1, u, un * 2);
	out[dn + 1 + un] = 0;
	return dn + 1 + un;
}

extern "C" size_t jk_kerb_size(size_t d, size_t u, size_t p)
{
	return JK_KIUL_SIZE + 2 * (d + u + p);
}

extern "C" size_t jk_kerb_pack(uint8_t *out, size_t cap, uint32_t message_type,
			       const uint16_t *domain, size_t dn,
			       const uint16_t *user, size_t un,
			       const uint16_t *password, size_t pn)
{
	if (out == nullptr)
		return 0;
	size_t need = jk_kerb_size(dn, un, pn);
	if (dn > JK_PACK_MAX_STRING || un > JK_PACK_MAX_STRING || pn > JK_PACK_MAX_STRING ||
	    need > cap || (dn && !domain) || (un && !user) || (pn && !password)) {
		memset(out, 0, cap);
		return 0;
	}
	memset(out, 0, need);
	put_u32(out + JK_KIL_OFF_MESSAGE_TYPE, message_type);
	size_t off = JK_KIUL_SIZE;
	put_string(out, JK_KIL_OFF_DOMAIN, &off, domain, dn);
	put_string(out, JK_KIL_OFF_USER, &off, user, un);
	put_string(out, JK_KIL_OFF_PASSWORD, &off, password, pn);
	// LogonId stays 0 (the LUID of the session to unlock is LSA's to find).
	return need;
}

extern "C" size_t jk_utf8_to_utf16(const uint8_t *in, size_t n, uint16_t *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = in[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 0;
		if (len == 0 || i + len > n)
			return size_t(-1);
		if (len == 2)
			c = ((c & 0x1f) << 6) | (in[i + 1] & 0x3f);
		else if (len == 3)
			c = ((c & 0x0f) << 12) | ((in[i + 1] & 0x3f) << 6) | (in[i + 2] & 0x3f);
		for (size_t k = 1; k < len; k++)
			if ((in[i + k] & 0xc0) != 0x80)
				return size_t(-1);
		if ((len == 2 && c < 0x80) || (len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))))
			return size_t(-1);
		if (o >= cap)
			return size_t(-1);
		out[o++] = uint16_t(c);
		i += len;
	}
	return o;
}
