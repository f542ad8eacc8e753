//go:build linux

package domain

import (
	"context"
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
	testAdmin = sambatest.AdminGroup
	testPU    = sambatest.ProtectedUsers
)

func TestMain(m *testing.M) {
	os.Exit(sambatest.Main(m, &testDC, func(dc *sambatest.DC) error {
		_, err := dc.AddOU("JIT")
		return err
	}))
}

// adminDo runs fn on a connection bound as the domain administrator.
func adminDo(fn func(*ldap.Conn) error) error {
	c, err := testDC.Conn()
	if err != nil {
		return err
	}
	defer c.Close()
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
	return testDC.Bind(name+"@"+sambatest.UPNSuffix, string(pw.Bytes()))
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
