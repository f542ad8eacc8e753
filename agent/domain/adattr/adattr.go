// Package adattr parses and formats the Active Directory attribute values
// jitkey reads and writes over LDAP: FILETIME (accountExpires,
// pwdLastSet), userAccountControl, generalized time (whenChanged) and a
// whole account entry. Every parser refuses what it would not write back.
package adattr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// userAccountControl flags jitkey uses ([MS-ADTS] 2.2.16).
const (
	UACDisable      uint32 = 0x2
	UACPasswdNotReq uint32 = 0x20
	UACNormal       uint32 = 0x200
	UACDontExpire   uint32 = 0x10000
	UACNotDelegated uint32 = 0x100000

	// UACDisabled is what jitkey writes for an account outside a session.
	UACDisabled = UACNormal | UACDisable | UACNotDelegated
	// UACEnabled is what jitkey writes for an account in a session.
	UACEnabled = UACNormal | UACNotDelegated
)

// ErrAttr is returned (wrapped) for an LDAP attribute value that does not
// parse.
var ErrAttr = errors.New("adattr: malformed attribute value")

// fileTimeEpoch is 1601-01-01 in Unix seconds; FILETIME counts 100 ns
// ticks from there.
const fileTimeEpoch = 11644473600

// neverTicks is 2^63-1, which AD, like 0, reads as "never expires".
const neverTicks = 1<<63 - 1

// maxFileTimeUnix bounds the times FormatFileTime writes (year 9999).
const maxFileTimeUnix = 253402300799

// ParseFileTime parses an AD FILETIME attribute (accountExpires,
// pwdLastSet, lastLogon): decimal 100 ns ticks since 1601-01-01 UTC.
// never is true for 0 and 2^63-1. The text must be the canonical decimal
// (no sign, no leading zeros) of a time up to the year 9999.
func ParseFileTime(s string) (t time.Time, never bool, err error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return time.Time{}, false, fmt.Errorf("%w: file time %q", ErrAttr, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > neverTicks {
		return time.Time{}, false, fmt.Errorf("%w: file time %q", ErrAttr, s)
	}
	if n == 0 || n == neverTicks {
		return time.Time{}, true, nil
	}
	if n > uint64(maxFileTimeUnix+fileTimeEpoch)*10_000_000+9_999_999 {
		// After 9999-12-31: no DC writes it, and FormatFileTime cannot.
		return time.Time{}, false, fmt.Errorf("%w: file time %q after year 9999", ErrAttr, s)
	}
	sec := int64(n/10_000_000) - fileTimeEpoch
	nsec := int64(n%10_000_000) * 100
	return time.Unix(sec, nsec).UTC(), false, nil
}

// FormatFileTime writes t as FILETIME ticks, clamped to 1601-01-01 plus
// one tick and to the year 9999.
func FormatFileTime(t time.Time) string {
	sec := t.Unix()
	if sec > maxFileTimeUnix {
		sec = maxFileTimeUnix
	}
	if sec < -fileTimeEpoch {
		return "1"
	}
	n := uint64(sec+fileTimeEpoch)*10_000_000 + uint64(t.Nanosecond()/100)
	if n == 0 {
		n = 1
	}
	return strconv.FormatUint(n, 10)
}

// ParseUAC parses userAccountControl: a canonical decimal integer that AD
// sends as a signed 32-bit value.
func ParseUAC(s string) (uint32, error) {
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil || strconv.FormatInt(v, 10) != s {
		return 0, fmt.Errorf("%w: userAccountControl %q", ErrAttr, s)
	}
	return uint32(v), nil
}

// FormatUAC writes userAccountControl as AD wants it (signed 32-bit).
func FormatUAC(v uint32) string { return strconv.FormatInt(int64(int32(v)), 10) }

// generalizedLayout is the form AD writes whenChanged / whenCreated in.
const generalizedLayout = "20060102150405.0Z"

// ParseGeneralizedTime parses whenChanged / whenCreated as AD writes them
// ("20261206175609.0Z", UTC).
func ParseGeneralizedTime(s string) (time.Time, error) {
	if len(s) != len(generalizedLayout) {
		return time.Time{}, fmt.Errorf("%w: generalized time %q", ErrAttr, s)
	}
	t, err := time.Parse(generalizedLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: generalized time %q", ErrAttr, s)
	}
	return t, nil
}

// FormatGeneralizedTime writes t as AD writes whenChanged.
func FormatGeneralizedTime(t time.Time) string { return t.UTC().Format(generalizedLayout) }

// Entry is a JIT domain account as the directory reports it.
type Entry struct {
	// DN is the account's distinguished name.
	DN string
	// Name is the sAMAccountName.
	Name string
	// UAC is userAccountControl.
	UAC uint32
	// Expires is accountExpires; zero with NeverExpires.
	Expires      time.Time
	NeverExpires bool
	// PwdLastSet is pwdLastSet; zero when it is 0 (change forced at next
	// logon, which RDP with NLA cannot do).
	PwdLastSet time.Time
	// Changed is whenChanged.
	Changed time.Time
	// Description is jitkey's marker (accounts.JITFullNamePrefix …).
	Description string
	// MemberOf lists the groups' DNs.
	MemberOf []string
}

// Enabled reports whether the account may log in by its flags (the DC
// still checks accountExpires).
func (e Entry) Enabled() bool { return e.UAC&UACDisable == 0 }

// InGroup reports whether the account is a direct member of the group
// with that DN (compared case-insensitively).
func (e Entry) InGroup(dn string) bool {
	for _, g := range e.MemberOf {
		if strings.EqualFold(g, dn) {
			return true
		}
	}
	return false
}

// EntryAttrs are the attributes an Entry is built from.
var EntryAttrs = []string{"sAMAccountName", "userAccountControl", "accountExpires", "pwdLastSet", "whenChanged", "description", "memberOf"}

// ParseEntry builds an Entry from an LDAP answer's attributes (name →
// values, names as EntryAttrs spells them). sAMAccountName,
// userAccountControl and whenChanged are required; a single-valued
// attribute with several values is refused.
func ParseEntry(dn string, attrs map[string][]string) (Entry, error) {
	e := Entry{DN: dn}
	one := func(name string, required bool) (string, error) {
		v := attrs[name]
		switch {
		case len(v) == 1:
			return v[0], nil
		case len(v) == 0 && !required:
			return "", nil
		}
		return "", fmt.Errorf("%w: %s has %d values", ErrAttr, name, len(v))
	}
	var err error
	if dn == "" {
		return e, fmt.Errorf("%w: empty DN", ErrAttr)
	}
	if e.Name, err = one("sAMAccountName", true); err != nil {
		return e, err
	}
	if e.Name == "" {
		return e, fmt.Errorf("%w: empty sAMAccountName", ErrAttr)
	}
	s, err := one("userAccountControl", true)
	if err != nil {
		return e, err
	}
	if e.UAC, err = ParseUAC(s); err != nil {
		return e, err
	}
	if s, err = one("whenChanged", true); err != nil {
		return e, err
	}
	if e.Changed, err = ParseGeneralizedTime(s); err != nil {
		return e, err
	}
	if s, err = one("accountExpires", false); err != nil {
		return e, err
	}
	if s == "" {
		e.NeverExpires = true
	} else if e.Expires, e.NeverExpires, err = ParseFileTime(s); err != nil {
		return e, err
	}
	if s, err = one("pwdLastSet", false); err != nil {
		return e, err
	}
	if s != "" {
		if e.PwdLastSet, _, err = ParseFileTime(s); err != nil {
			return e, err
		}
	}
	if e.Description, err = one("description", false); err != nil {
		return e, err
	}
	e.MemberOf = append([]string(nil), attrs["memberOf"]...)
	return e, nil
}

// Attrs is the inverse of ParseEntry, for round-trip checks.
func (e Entry) Attrs() map[string][]string {
	m := map[string][]string{
		"sAMAccountName":     {e.Name},
		"userAccountControl": {FormatUAC(e.UAC)},
		"whenChanged":        {FormatGeneralizedTime(e.Changed)},
	}
	if !e.NeverExpires {
		m["accountExpires"] = []string{FormatFileTime(e.Expires)}
	}
	if !e.PwdLastSet.IsZero() {
		m["pwdLastSet"] = []string{FormatFileTime(e.PwdLastSet)}
	}
	if e.Description != "" {
		m["description"] = []string{e.Description}
	}
	if len(e.MemberOf) > 0 {
		m["memberOf"] = append([]string(nil), e.MemberOf...)
	}
	return m
}
