//go:build linux

package domain

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/password"
)

// testDC is the package's one Samba DC (TestMain).
var testDC *sambatest.DC

const (
	testOU    = "OU=JIT," + sambatest.BaseDN
	testAdmin = "CN=Domain Admins,CN=Users," + sambatest.BaseDN
	testPU    = "CN=Protected Users,CN=Users," + sambatest.BaseDN
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if !sambatest.Available() {
		fmt.Fprintln(os.Stderr, "domain tests need samba: run make deps")
		return 1
	}
	dc, err := sambatest.Start(context.Background(), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer dc.Close()
	testDC = dc
	if err := adminDo(func(c *ldap.Conn) error {
		a := ldap.NewAddRequest(testOU, nil)
		a.Attribute("objectClass", []string{"top", "organizationalUnit"})
		return c.Add(a)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "create OU:", err)
		return 1
	}
	return m.Run()
}

// adminDo runs fn on a connection bound as the domain administrator.
func adminDo(fn func(*ldap.Conn) error) error {
	c, err := ldap.DialURL(sambatest.URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: testDC.CAPool, ServerName: "127.0.0.1"}))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(sambatest.AdminDN, sambatest.AdminPass); err != nil {
		return err
	}
	return fn(c)
}

// testConfig is a Directory configuration for the test DC.
func testConfig() Config {
	return Config{
		URL:            sambatest.URL,
		RootCAs:        testDC.CAPool,
		BindDN:         sambatest.AdminDN,
		BindPassword:   password.FromBytes([]byte(sambatest.AdminPass)),
		OU:             testOU,
		AdminGroup:     testAdmin,
		ProtectedUsers: testPU,
		UPNSuffix:      "jitkey.test",
	}
}

func newTestDir(t *testing.T, mod func(*Config)) *Directory {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bindAs binds to the DC as the account (by UPN) with pw.
func bindAs(name string, pw password.Secret) error {
	c, err := ldap.DialURL(sambatest.URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: testDC.CAPool, ServerName: "127.0.0.1"}))
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(name+"@jitkey.test", string(pw.Bytes()))
}

// wantBindRefused checks err is an invalid-credentials refusal naming
// data 52e (bad password) or 533 (disabled).
func wantBindRefused(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("bind succeeded, want refused")
	}
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
		!(strings.Contains(err.Error(), "data 52e") || strings.Contains(err.Error(), "data 533")) {
		t.Fatalf("bind error %v, want 49 with data 52e or 533", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
