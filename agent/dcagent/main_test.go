//go:build linux

package dcagent

import (
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// testDC is the package's one Samba DC; ous the OU of each test (the
// tests do not run in parallel).
var (
	testDC *sambatest.DC
	ous    = map[string]string{}
)

func TestMain(m *testing.M) { os.Exit(sambatest.Main(m, &testDC, nil)) }

// dirConfig is the Directory configuration for the test DC. Protected
// Users is left out so that the tests can check the issued password with
// an LDAPS simple bind (members of Protected Users may use Kerberos
// only; package domain's TestProtectedUsers covers that).
func dirConfig(ou string, now func() time.Time) domain.Config {
	return domain.Config{
		URL: sambatest.URL, RootCAs: testDC.CAPool,
		BindDN: sambatest.AdminDN, BindPassword: password.FromBytes([]byte(sambatest.AdminPass)),
		OU: ou, AdminGroup: sambatest.AdminGroup, UPNSuffix: sambatest.UPNSuffix, Now: now,
	}
}

// world is a DC agent, a workstation and a technician of one MSP.
type world struct {
	msp     *agenttest.MSP
	dc      *agenttest.Agent
	svc     *Service
	dir     *domain.Directory
	clock   *agenttest.Clock
	policy  protocol.Policy
	phone   *agenttest.Phone
	wsKeys  *keys.Keys
	ws      protocol.DeviceCert
	wsCert  protocol.Signed
	target  protocol.DeviceCert
	tgtCert protocol.Signed
}

func newWorld(t *testing.T, username string, mod func(*domain.Config)) *world {
	t.Helper()
	w := &world{msp: agenttest.NewMSP(t, "acme"), clock: agenttest.NewClock(time.Now())}
	w.policy = w.msp.Policy(1)
	w.policy.SelectiveLogin, w.policy.DomainAccounts = true, true
	w.dc = agenttest.NewAgent(t, w.msp, &w.policy, store.Config{})
	// Each test has an OU of its own, so inventories do not mix.
	ou, ok := ous[t.Name()]
	if !ok {
		var err error
		if ou, err = testDC.AddOU(strings.ReplaceAll(t.Name(), "/", "-")); err != nil {
			t.Fatal(err)
		}
		ous[t.Name()] = ou
	}
	cfg := dirConfig(ou, w.clock.Now)
	if mod != nil {
		mod(&cfg)
	}
	dir, err := domain.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.dir = dir
	w.svc = New(Config{Store: w.dc.Store, Dir: dir, Audit: w.dc.Audit, MSPKey: w.msp.Pub, Tenant: "acme", Now: w.clock.Now})
	w.phone = w.msp.NewPhone(t, username, protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	w.wsKeys, w.ws, w.wsCert = w.device(t, "WS-01")
	_, w.target, w.tgtCert = w.device(t, "SRV-02")
	return w
}

func (w *world) device(t *testing.T, name string) (*keys.Keys, protocol.DeviceCert, protocol.Signed) {
	k, err := keys.Generate(t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := w.msp.DeviceCert(t, k, name)
	c.DomainJoined = true
	c.NotBefore, c.NotAfter = w.clock.Now().Add(-time.Hour).Unix(), w.clock.Now().Add(400*24*time.Hour).Unix()
	return k, c, w.msp.Sign(t, protocol.DocDeviceCert, &c)
}

// setPolicy stores a newer policy on the DC agent.
func (w *world) setPolicy(t *testing.T, mod func(*protocol.Policy)) {
	t.Helper()
	w.policy.Version++
	mod(&w.policy)
	s := w.msp.Sign(t, protocol.DocPolicy, &w.policy)
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.dc.Store.Update(t.Context(), func(tx *store.Tx) error {
		return tx.PutPolicy(store.PolicyRow{Tenant: "acme", Version: w.policy.Version, Signed: b, Applied: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
}

// request builds the workstation's DomainRequest with an approval the
// phone signed now; mod may change the approval before signing.
func (w *world) request(t *testing.T, rdp bool, mod func(*protocol.Approval)) *protocol.DomainRequest {
	t.Helper()
	var session protocol.SessionID
	rand.Read(session[:])
	a := protocol.Approval{Serial: w.phone.Cert.Serial, DeviceID: w.ws.DeviceID, Session: session,
		HandshakeHash: make([]byte, 32), Action: protocol.ActionLogon, Account: protocol.AccountDomain,
		Decision: protocol.DecisionApprove, Time: w.clock.Now().Unix()}
	rand.Read(a.Nonce[:])
	rand.Read(a.HandshakeHash)
	r := &protocol.DomainRequest{TechCert: w.phone.Signed, DeviceCert: w.wsCert, Session: session}
	if rdp {
		a.Target = w.target.DeviceID
		r.Target = w.tgtCert
	}
	if mod != nil {
		mod(&a)
	}
	s, err := protocol.SignP256(protocol.DocApproval, &a, w.phone.Approval, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.Approval = s
	return r
}

func (w *world) peer() protocol.NoiseKey { return w.ws.NoiseKey }

func bind(name, pw string) error { return testDC.Bind(name+"@"+sambatest.UPNSuffix, pw) }

func wantRefusedBind(t *testing.T, err error) {
	t.Helper()
	if err == nil || !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
		!(strings.Contains(err.Error(), "data 52e") || strings.Contains(err.Error(), "data 533")) {
		t.Fatalf("bind: %v, want refused with data 52e or 533", err)
	}
}

func wantRefusal(t *testing.T, err error, code uint8) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) || r.Code != code {
		t.Fatalf("err = %v, want refusal code %d", err, code)
	}
	return r
}
