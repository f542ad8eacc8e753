// Package agenttest provides test fixtures for the agent: an MSP authority
// that signs policies and certificates, an enrolled agent state (keys,
// store, recorder) without a console, and a test phone that answers QR
// logins over package channel as the technician's app would.
package agenttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// Relay is the home relay address fixtures use.
const Relay = "127.0.0.1:4433"

// MSP is a test MSP authority for one tenant.
type MSP struct {
	Key    ed25519.PrivateKey
	Pub    protocol.IdentityKey
	Tenant string
	serial atomic.Uint64 // last serial issued; the fake console enrolls concurrently with the test
}

// NewMSP returns an MSP authority with a fresh key.
func NewMSP(t testing.TB, tenant string) *MSP {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := &MSP{Key: key, Tenant: tenant}
	m.serial.Store(100)
	copy(m.Pub[:], pub)
	return m
}

// Policy returns a valid named-mode policy of the MSP's tenant.
func (m *MSP) Policy(version uint64) protocol.Policy {
	return protocol.Policy{
		Tenant: m.Tenant, Version: version, IssuedAt: time.Now().Unix(), LoginMode: protocol.ModeNamed,
		Offline:    protocol.OfflineParams{Digits: 6, Period: 30, Skew: 1, MaxFailures: 5, LockoutBase: 30, LockoutLimit: 3600},
		MaxSession: 3600, InactivityDays: 30,
	}
}

// Sign signs a document with the MSP key.
func (m *MSP) Sign(t testing.TB, typ protocol.DocType, doc any) protocol.Signed {
	t.Helper()
	s, err := protocol.SignEd25519(typ, doc, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NextSerial returns a fresh certificate serial.
func (m *MSP) NextSerial() uint64 { return m.serial.Add(1) }

// DeviceCert returns a signed device certificate for k.
func (m *MSP) DeviceCert(t testing.TB, k *keys.Keys, name string) (protocol.DeviceCert, protocol.Signed) {
	t.Helper()
	c := protocol.DeviceCert{
		Serial: m.NextSerial(), Name: name, Tenant: m.Tenant, OS: "linux",
		NoiseKey: k.NoisePublic(), IdentityKey: k.IdentityPublic(), Relay: Relay,
		NotBefore: time.Now().Add(-time.Hour).Unix(), NotAfter: time.Now().Add(365 * 24 * time.Hour).Unix(),
	}
	if _, err := rand.Read(c.DeviceID[:]); err != nil {
		t.Fatal(err)
	}
	return c, m.Sign(t, protocol.DocDeviceCert, &c)
}

// Agent is an enrolled agent's state, made without a console.
type Agent struct {
	Dir        string
	Keys       *keys.Keys
	Store      *store.Store
	Audit      *audit.Recorder
	Enrollment store.Enrollment
	Device     protocol.DeviceCert
}

// NewAgent creates keys and a store in a temporary directory, enrolled
// with m, holding policy (signed by m) if policy is non-nil.
func NewAgent(t testing.TB, m *MSP, policy *protocol.Policy, cfg store.Config) *Agent {
	t.Helper()
	dir := t.TempDir()
	k, err := keys.Generate(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), filepath.Join(dir, "agent.db"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dc, dcs := m.DeviceCert(t, k, "W11-TEST")
	e := store.Enrollment{DeviceCert: dcs, MSPKey: m.Pub, Tenant: m.Tenant, DeviceID: dc.DeviceID, Relay: Relay, Name: dc.Name, OS: "linux"}
	err = st.Update(t.Context(), func(tx *store.Tx) error {
		if err := tx.SetEnrollment(e); err != nil {
			return err
		}
		if policy == nil {
			return nil
		}
		s := m.Sign(t, protocol.DocPolicy, policy)
		b, err := s.Encode()
		if err != nil {
			return err
		}
		return tx.PutPolicy(store.PolicyRow{Tenant: policy.Tenant, Version: policy.Version, Signed: b, Applied: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{Dir: dir, Keys: k, Store: st, Audit: audit.NewRecorder(k.Identity, dc.DeviceID, nil), Enrollment: e, Device: dc}
}

// Records returns every audit record, verified against the agent's key
// and chain.
func (a *Agent) Records(t testing.TB) []protocol.AuditRecord {
	t.Helper()
	return Records(t, a.Store, a.Keys.IdentityPublic())
}

// LastReceipt returns the end receipt (SPEC.md 6.6) of a's newest
// account.disabled record of account, verified with a's identity key
// for a's device and that account; it fails the test when there is none
// or it does not verify.
func (a *Agent) LastReceipt(t testing.TB, account string) protocol.EndReceipt {
	t.Helper()
	recs := a.Records(t)
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Event == audit.AccountDisabled && r.Account == account {
			rc, err := protocol.VerifyEndReceipt(r.Receipt, a.Keys.IdentityPublic(), a.Device.DeviceID, account)
			if err != nil {
				t.Fatalf("receipt of record %d: %v", r.Seq, err)
			}
			return rc
		}
	}
	t.Fatalf("no account.disabled of %s", account)
	return protocol.EndReceipt{}
}

// Records returns every audit record of st, verified against key.
func Records(t testing.TB, st *store.Store, key protocol.IdentityKey) []protocol.AuditRecord {
	t.Helper()
	var rows []store.AuditRow
	if err := st.View(t.Context(), func(tx *store.Tx) error {
		var err error
		rows, err = tx.Audit(0, 1<<20, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	signed, err := audit.Decode(rows)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Verify(key, 0, [32]byte{}, signed)
	if err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	return recs
}

// Events returns the Event of each record.
func Events(recs []protocol.AuditRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

// Phone is a technician's phone: keys and a certificate from the MSP.
type Phone struct {
	Noise    noise.DHKey
	Identity ed25519.PrivateKey
	Approval *ecdsa.PrivateKey
	Cert     protocol.TechCert
	Signed   protocol.Signed
	MSPKey   protocol.IdentityKey // the phone verifies device certificates with it
}

// NewPhone returns a phone of technician username with the given grants,
// certified by m (valid from an hour ago for a year).
func (m *MSP) NewPhone(t testing.TB, username string, grants ...protocol.Grant) *Phone {
	t.Helper()
	p := NewUncertifiedPhone(t)
	p.MSPKey = m.Pub
	p.Cert = protocol.TechCert{
		Serial: m.NextSerial(), TechID: "tech-" + username, Username: username, Email: username + "@msp.example",
		Grants: grants, Relay: Relay,
		NotBefore: time.Now().Add(-time.Hour).Unix(), NotAfter: time.Now().Add(365 * 24 * time.Hour).Unix(),
	}
	copy(p.Cert.NoiseKey[:], p.Noise.Public)
	copy(p.Cert.IdentityKey[:], p.Identity.Public().(ed25519.PublicKey))
	ak, err := protocol.ApprovalKeyOf(&p.Approval.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p.Cert.ApprovalKey = ak
	p.Signed = m.Sign(t, protocol.DocTechCert, &p.Cert)
	return p
}

// Resign re-signs the phone's (modified) certificate with m.
func (m *MSP) Resign(t testing.TB, p *Phone) { p.Signed = m.Sign(t, protocol.DocTechCert, &p.Cert) }

// NewUncertifiedPhone returns a phone with keys but no certificate.
func NewUncertifiedPhone(t testing.TB) *Phone {
	t.Helper()
	nk, err := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Phone{Noise: nk, Identity: id, Approval: ak}
}

// Mailbox returns the phone's relay mailbox.
func (p *Phone) Mailbox() protocol.MailboxID {
	return protocol.MailboxFor(p.Identity.Public().(ed25519.PublicKey))
}

// Addr returns the phone's address on Relay.
func (p *Phone) Addr() protocol.PeerAddr {
	return protocol.PeerAddr{Relay: Relay, Mailbox: p.Mailbox()}
}
