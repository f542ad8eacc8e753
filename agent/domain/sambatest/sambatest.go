//go:build linux

package sambatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LockPath is the file whose exclusive flock serialises every Samba of the
// test suite.
const LockPath = "/tmp/jitkey-samba.lock"

// Fixed names of the test realm.
const (
	Realm     = "JITKEY.TEST"
	Domain    = "JITKEY"
	BaseDN    = "DC=jitkey,DC=test"
	AdminDN   = "CN=Administrator,CN=Users," + BaseDN
	AdminPass = "Adm1n-Pa55word.jitkey"
	// Addr is the LDAPS address the DC listens on.
	Addr = "127.0.0.1:636"
	// URL is the LDAPS URL of the DC.
	URL = "ldaps://127.0.0.1:636"
	// AdminGroup and ProtectedUsers are the DNs of those groups.
	AdminGroup     = "CN=Domain Admins,CN=Users," + BaseDN
	ProtectedUsers = "CN=Protected Users,CN=Users," + BaseDN
	// UPNSuffix is the realm's UPN suffix.
	UPNSuffix = "jitkey.test"
)

// DC is a provisioned Samba domain controller.
type DC struct {
	// Dir holds everything of the DC: configuration, databases, logs,
	// sockets, certificates.
	Dir string
	// CAFile is the PEM file of the CA that issued the LDAPS certificate.
	CAFile string
	// CAPool holds that CA alone.
	CAPool *x509.CertPool

	conf string
	cmd  *exec.Cmd
	done chan error
	lock *os.File
}

// Available reports whether the Samba programs are installed.
func Available() bool {
	for _, p := range []string{"samba", "samba-tool"} {
		if _, err := exec.LookPath(p); err != nil {
			return false
		}
	}
	return true
}

// Start takes the Samba lock (waiting for another package to finish),
// provisions a domain in a new directory under parent (os.TempDir if
// empty) and starts Samba. Close stops it, removes the directory and
// releases the lock.
func Start(ctx context.Context, parent string) (dc *DC, err error) {
	lock, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sambatest: open lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("sambatest: lock: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "jitkey-samba-")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("sambatest: temp dir: %w", err)
	}
	dc = &DC{Dir: dir, lock: lock, conf: filepath.Join(dir, "etc", "smb.conf")}
	defer func() {
		if err != nil {
			dc.Close()
			dc = nil
		}
	}()
	if err := dc.provision(ctx); err != nil {
		return nil, err
	}
	if err := dc.Run(ctx); err != nil {
		return nil, err
	}
	return dc, nil
}

func (d *DC) provision(ctx context.Context) error {
	opt := func(k, v string) string { return "--option=" + k + "=" + v }
	args := []string{"domain", "provision", "--targetdir=" + d.Dir,
		"--realm=" + Realm, "--domain=" + Domain, "--server-role=dc",
		"--use-rfc2307", "--dns-backend=NONE", "--host-name=dc1",
		"--adminpass=" + AdminPass,
		opt("interfaces", "lo"), opt("bind interfaces only", "yes"),
		opt("log file", filepath.Join(d.Dir, "log")),
		opt("pid directory", filepath.Join(d.Dir, "pid")),
		opt("ncalrpc dir", filepath.Join(d.Dir, "ncalrpc")),
		opt("winbindd socket directory", filepath.Join(d.Dir, "winbindd")),
		opt("ntp signd socket directory", filepath.Join(d.Dir, "ntp")),
	}
	out, err := exec.CommandContext(ctx, "samba-tool", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sambatest: provision: %w: %s", err, tail(out))
	}
	if err := d.makeCerts(); err != nil {
		return err
	}
	// Settings that provision's --option drops or that only the test bed
	// wants: our own TLS certificate (Samba's has no SAN), no 60-minute
	// grace for an old password, and only the services the tests use.
	conf, err := os.ReadFile(d.conf)
	if err != nil {
		return fmt.Errorf("sambatest: read smb.conf: %w", err)
	}
	extra := strings.Join([]string{
		"\ttls enabled = yes",
		"\ttls certfile = " + filepath.Join(d.Dir, "tls", "server.pem"),
		"\ttls keyfile = " + filepath.Join(d.Dir, "tls", "server.key"),
		"\ttls cafile = " + d.CAFile,
		"\told password allowed period = 0",
		"\tserver services = ldap, kdc",
		"",
	}, "\n")
	s := strings.Replace(string(conf), "[global]\n", "[global]\n"+extra, 1)
	s = strings.Replace(s, "\tserver services = s3fs, rpc, nbt, wrepl, ldap, cldap, kdc, drepl, winbindd, ntp_signd, kcc, dnsupdate\n", "", 1)
	if err := os.WriteFile(d.conf, []byte(s), 0o600); err != nil {
		return fmt.Errorf("sambatest: write smb.conf: %w", err)
	}
	return nil
}

// makeCerts writes a CA and a server certificate for localhost,
// 127.0.0.1 and dc1.jitkey.test into Dir/tls.
func (d *DC) makeCerts() error {
	tdir := filepath.Join(d.Dir, "tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return fmt.Errorf("sambatest: tls dir: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("sambatest: ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jitkey test DC CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sambatest: ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("sambatest: ca certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("sambatest: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "dc1.jitkey.test"},
		DNSNames:     []string{"localhost", "dc1.jitkey.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sambatest: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("sambatest: server key: %w", err)
	}
	d.CAFile = filepath.Join(tdir, "ca.pem")
	files := map[string][]byte{
		d.CAFile:                          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		filepath.Join(tdir, "server.pem"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		filepath.Join(tdir, "server.key"): pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("sambatest: write %s: %w", filepath.Base(p), err)
		}
	}
	d.CAPool = x509.NewCertPool()
	d.CAPool.AddCert(ca)
	return nil
}

// Run starts Samba (after Kill, again) and waits until LDAPS accepts
// connections.
func (d *DC) Run(ctx context.Context) error {
	if d.cmd != nil {
		return errors.New("sambatest: samba already running")
	}
	cmd := exec.Command("samba", "--foreground", "--no-process-group", "-M", "single", "-s", d.conf)
	logf, err := os.OpenFile(filepath.Join(d.Dir, "samba.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sambatest: log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("sambatest: start samba: %w", err)
	}
	d.cmd = cmd
	d.done = make(chan error, 1)
	go func() { d.done <- cmd.Wait(); logf.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-d.done:
			d.cmd = nil
			out, _ := os.ReadFile(filepath.Join(d.Dir, "samba.out"))
			return fmt.Errorf("sambatest: samba exited before listening: %v: %s", err, tail(out))
		case <-ctx.Done():
			d.Kill()
			return fmt.Errorf("sambatest: samba not listening on %s: %w", Addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// Kill stops Samba at once (SIGKILL), as a crash would, and waits for it
// to exit. The domain's data stays; Run starts it again.
func (d *DC) Kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// Close stops Samba, removes Dir and releases the lock.
func (d *DC) Close() {
	d.Kill()
	if d.Dir != "" {
		_ = os.RemoveAll(d.Dir)
	}
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		_ = d.lock.Close()
		d.lock = nil
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Conn returns an LDAPS connection to the DC bound as the domain
// administrator; the caller closes it.
func (d *DC) Conn() (*ldap.Conn, error) {
	c, err := d.dial()
	if err != nil {
		return nil, err
	}
	if err := c.Bind(AdminDN, AdminPass); err != nil {
		c.Close()
		return nil, fmt.Errorf("sambatest: bind as administrator: %w", err)
	}
	return c, nil
}

func (d *DC) dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: d.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, fmt.Errorf("sambatest: dial: %w", err)
	}
	return c, nil
}

// AddOU creates the organisational unit OU=name under the base DN and
// returns its DN.
func (d *DC) AddOU(name string) (string, error) {
	c, err := d.Conn()
	if err != nil {
		return "", err
	}
	defer c.Close()
	dn := "OU=" + ldap.EscapeDN(name) + "," + BaseDN
	a := ldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if err := c.Add(a); err != nil {
		return "", fmt.Errorf("sambatest: add %s: %w", dn, err)
	}
	return dn, nil
}

// Bind binds as user (a UPN, e.g. msp-nik@jitkey.test) with pw over
// LDAPS and returns the bind's error.
func (d *DC) Bind(user, pw string) error {
	c, err := d.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(user, pw)
}

// Main is a TestMain body for a package whose tests share one DC: it
// starts the DC (failing, not skipping, when Samba is missing), runs
// setup, then the tests, and closes the DC. Use:
//
//	func TestMain(m *testing.M) { os.Exit(sambatest.Main(m, &testDC, nil)) }
func Main(m interface{ Run() int }, dc **DC, setup func(*DC) error) int {
	if !Available() {
		fmt.Fprintln(os.Stderr, "sambatest: samba is not installed: run make deps")
		return 1
	}
	d, err := Start(context.Background(), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Close()
	*dc = d
	if setup != nil {
		if err := setup(d); err != nil {
			fmt.Fprintln(os.Stderr, "sambatest: setup:", err)
			return 1
		}
	}
	return m.Run()
}
