//go:build linux

package domain

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/domain/adattr"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
)

// noPU configures a Directory without Protected Users: its members may
// not use simple binds (NTLM-class authentication; Samba answers data
// 52f), and these tests check the password with an LDAPS simple bind.
func noPU(c *Config) { c.ProtectedUsers = "" }

// TestProtectedUsers: a created account is disabled (0x202 |
// NOT_DELEGATED, never PASSWD_NOTREQD), in Protected Users and outside
// the admin group; in a session, Protected Users refuses even the right
// password over a simple bind (data 52f: no NTLM-class logons).
func TestProtectedUsers(t *testing.T) {
	ctx := ctxT(t)
	d := newTestDir(t, nil)
	const name = "msp-pu"
	e, err := d.Ensure(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if e.UAC != adattr.UACDisabled || e.InGroup(testAdmin) || !e.InGroup(testPU) {
		t.Fatalf("created: uac %#x groups %v", e.UAC, e.MemberOf)
	}
	pw, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.End(ctx, name)
	err = bindAs(name, pw)
	if err == nil || !strings.Contains(err.Error(), "data 52f") {
		t.Fatalf("simple bind of a Protected Users member: %v, want data 52f", err)
	}
}

// TestSessionLifecycle: during a session an LDAPS bind with the issued
// password succeeds and the account is an admin; after it the same bind
// fails (52e/533) and the membership is gone.
func TestSessionLifecycle(t *testing.T) {
	ctx := ctxT(t)
	d := newTestDir(t, noPU)
	const name = "msp-life"
	e, err := d.Ensure(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if e.UAC != adattr.UACDisabled || e.InGroup(testAdmin) || e.UAC&adattr.UACPasswdNotReq != 0 {
		t.Fatalf("created: uac %#x groups %v", e.UAC, e.MemberOf)
	}
	pw, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(pw.Bytes()) != PasswordLength {
		t.Fatalf("password length %d", len(pw.Bytes()))
	}
	if err := bindAs(name, pw); err != nil {
		t.Fatalf("bind during session: %v", err)
	}
	e, err = d.Lookup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Enabled() || !e.InGroup(testAdmin) || e.PwdLastSet.IsZero() || e.Expires.Before(time.Now()) {
		t.Fatalf("in session: %+v", e)
	}
	if err := d.End(ctx, name); err != nil {
		t.Fatal(err)
	}
	wantBindRefused(t, bindAs(name, pw))
	e, err = d.Lookup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if e.Enabled() || e.InGroup(testAdmin) || e.UAC != adattr.UACDisabled {
		t.Fatalf("after session: uac %#x groups %v", e.UAC, e.MemberOf)
	}
	// A second session issues another password; the first stays dead.
	pw2, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantBindRefused(t, bindAs(name, pw))
	if err := bindAs(name, pw2); err != nil {
		t.Fatal(err)
	}
	// A Begin while a session runs (the account already enabled and in
	// the admin group, which Samba answers with "Entry Already Exists"
	// to the membership's add) replaces its password.
	pw3, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("Begin during a session: %v", err)
	}
	wantBindRefused(t, bindAs(name, pw2))
	if err := bindAs(name, pw3); err != nil {
		t.Fatal(err)
	}
	pw2 = pw3
	if err := d.End(ctx, name); err != nil {
		t.Fatal(err)
	}
	wantBindRefused(t, bindAs(name, pw2))
}

// TestExpiredBackstop: with accountExpires in the past the DC refuses the
// bind even though the account is enabled (the backstop when jitkey dies).
func TestExpiredBackstop(t *testing.T) {
	ctx := ctxT(t)
	d := newTestDir(t, noPU)
	const name = "msp-expired"
	pw, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.End(ctx, name)
	if err := d.Extend(ctx, name, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	err = bindAs(name, pw)
	if err == nil || !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bind after accountExpires: %v, want refused", err)
	}
	if err := d.Extend(ctx, name, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := bindAs(name, pw); err != nil {
		t.Fatalf("bind after extending: %v", err)
	}
}

func TestOnlyLDAPSWithPinnedCA(t *testing.T) {
	cfg := testConfig()
	cfg.URL = "ldap://127.0.0.1:389"
	if _, err := New(cfg); !errors.Is(err, ErrNotLDAPS) {
		t.Fatalf("plain LDAP: %v", err)
	}
	cfg = testConfig()
	cfg.RootCAs = nil
	if _, err := New(cfg); err == nil {
		t.Fatal("no CA accepted")
	}
	d := newTestDir(t, func(c *Config) { c.RootCAs = x509.NewCertPool() })
	if _, err := d.Lookup(ctxT(t), "msp-x"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("unpinned CA: %v", err)
	}
	d = newTestDir(t, func(c *Config) { c.ServerName = "other.example" })
	if _, err := d.Lookup(ctxT(t), "msp-x"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("wrong server name: %v", err)
	}
}

// TestUnreachable: a DC that does not answer gives a clear error and
// creates nothing.
func TestUnreachable(t *testing.T) {
	d := newTestDir(t, func(c *Config) { c.URL = "ldaps://127.0.0.1:1" })
	_, err := d.Begin(ctxT(t), "msp-unreach", time.Now().Add(time.Hour))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if _, err := newTestDir(t, nil).Lookup(ctxT(t), "msp-unreach"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("account after failed begin: %v", err)
	}
}

// TestForeignAccountUntouched: an msp- account jitkey did not create is
// neither enabled, nor deleted, nor listed.
func TestForeignAccountUntouched(t *testing.T) {
	ctx := ctxT(t)
	if err := adminDo(func(c *ldap.Conn) error {
		a := ldap.NewAddRequest("CN=msp-foreign,"+testOU, nil)
		a.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		a.Attribute("sAMAccountName", []string{"msp-foreign"})
		return c.Add(a)
	}); err != nil {
		t.Fatal(err)
	}
	d := newTestDir(t, nil)
	if _, err := d.Begin(ctx, "msp-foreign", time.Now().Add(time.Hour)); !errors.Is(err, ErrNotJIT) {
		t.Fatalf("begin: %v", err)
	}
	if err := d.Delete(ctx, "msp-foreign"); !errors.Is(err, ErrNotJIT) {
		t.Fatalf("delete: %v", err)
	}
	inv, err := d.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inv {
		if e.Name == "msp-foreign" {
			t.Fatal("foreign account inventoried")
		}
	}
	e, err := d.Lookup(ctx, "msp-foreign")
	if err != nil || e.InGroup(testAdmin) {
		t.Fatalf("foreign account: %v %+v", err, e)
	}
}

// TestInventoryPaged lists more accounts than one page holds.
func TestInventoryPaged(t *testing.T) {
	ctx := ctxT(t)
	d := newTestDir(t, func(c *Config) { c.PageSize = 2 })
	want := map[string]bool{}
	for _, n := range []string{"msp-inv1", "msp-inv2", "msp-inv3", "msp-inv4", "msp-inv5"} {
		if _, err := d.Ensure(ctx, n); err != nil {
			t.Fatal(err)
		}
		want[n] = true
	}
	inv, err := d.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inv {
		delete(want, e.Name)
	}
	if len(want) != 0 {
		t.Fatalf("inventory misses %v", want)
	}
	for _, n := range []string{"msp-inv1", "msp-inv2", "msp-inv3", "msp-inv4", "msp-inv5"} {
		if err := d.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Lookup(ctx, "msp-inv1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestSambaKilledMidBegin: Samba dies between the enabling Modify and the
// group membership; Begin reports the failure, and after Samba restarts
// Repair leaves the account disabled and outside the admin group.
func TestSambaKilledMidBegin(t *testing.T) {
	ctx := ctxT(t)
	d := newTestDir(t, noPU)
	const name = "msp-killed"
	d.afterEnable = func() { testDC.Kill() }
	_, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err == nil {
		t.Fatal("begin succeeded with Samba killed")
	}
	if err := testDC.Run(ctx); err != nil {
		t.Fatal(err)
	}
	d.afterEnable = nil
	e, err := d.Lookup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Enabled() {
		t.Fatalf("test premise: account should be left enabled by the kill, uac %#x", e.UAC)
	}
	ended, err := d.Repair(ctx, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range ended {
		found = found || n == name
	}
	if !found {
		t.Fatalf("repair ended %v", ended)
	}
	e, err = d.Lookup(ctx, name)
	if err != nil || e.Enabled() || e.InGroup(testAdmin) {
		t.Fatalf("after repair: %v uac %#x groups %v", err, e.UAC, e.MemberOf)
	}
	// Repair keeps a live session.
	pw, err := d.Begin(ctx, name, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Repair(ctx, func(n string) bool { return n == name }); err != nil {
		t.Fatal(err)
	}
	if err := bindAs(name, pw); err != nil {
		t.Fatalf("live session ended by repair: %v", err)
	}
	_ = d.End(ctx, name)
	_ = sambatest.URL
}
