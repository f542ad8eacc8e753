// Package domain manages jitkey's just-in-time domain accounts
// (`msp-<tech>`) in Active Directory or Samba over LDAPS, the work of the
// agent on a domain controller (SPEC.md 11.7).
//
// Rules it keeps (../shared/research/domain-anchors.md): LDAPS only, with
// a pinned CA and the DC's name checked; accounts are created disabled
// with userAccountControl 0x202 | NOT_DELEGATED (never PASSWD_NOTREQD) in
// one configured OU, with a random password (unicodePwd, replaced), and
// put into Protected Users when the domain has it; an account is enabled,
// given a fresh password and an accountExpires backstop in one Modify and
// added to the admin group only for a session; ending it disables the
// account, sets another password and accountExpires = now in one Modify
// and removes the membership. Every change is read back. Revocation is
// never instant: Kerberos tickets issued during a session survive it (at
// most 4 h with Protected Users).
package domain
