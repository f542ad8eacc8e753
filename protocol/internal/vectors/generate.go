package vectors

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flynn/noise"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// Now is the verifier's clock of every vector: 2026-01-01T00:00:00Z.
const Now = 1767225600

const (
	tenant = "acme"
	relayA = "relay-a.example:4433" // agents' and console's home relay
	relayB = "relay-b.example:4433" // phones' home relay
)

type gen struct {
	out        []Vector
	msp        ed25519.PrivateKey
	mspPub     protocol.IdentityKey
	approval   *detrand.Signer
	approvalPK protocol.ApprovalKey
	phone      noise.DHKey
	agent      noise.DHKey
	console    noise.DHKey
	tech       protocol.TechCert
	device     protocol.DeviceCert
	policy     protocol.Policy
}

// Generate returns every vector, in a stable order. It is deterministic:
// all keys, nonces and ephemerals come from detrand streams with fixed
// seeds, and P-256 signatures are deterministic.
func Generate() (vs []Vector, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("vectors: %v", r)
		}
	}()
	g := newGen()
	g.cbor()
	g.signed()
	g.certs()
	g.authorize()
	g.policies()
	g.approvals()
	g.qr()
	g.handshakes()
	g.transport()
	g.e2e()
	g.ipc()
	g.ipcMsgs()
	g.audit()
	g.relay()
	g.loginChain()
	g.proofs()
	g.enroll()
	g.msgs()
	g.transfers()
	g.kdf()
	g.otp()
	g.addrs()
	g.keyTexts()
	g.domain()
	g.consoleLogin()
	g.coApprovals()
	g.coApprovalMsgs()
	g.breakGlass()
	g.breakGlassSwitch()
	seen := map[string]bool{}
	for _, v := range g.out {
		if seen[v.Name] {
			return nil, fmt.Errorf("vectors: duplicate name %s", v.Name)
		}
		seen[v.Name] = true
		if _, ok := Kinds[v.Kind]; !ok {
			return nil, fmt.Errorf("vectors: %s: unknown kind %s", v.Name, v.Kind)
		}
	}
	return g.out, nil
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	check(err)
	return b
}

func keypair(seed string) noise.DHKey {
	k, err := protocol.CipherSuite.GenerateKeypair(detrand.New(seed))
	check(err)
	return k
}

func noiseKey(k noise.DHKey) protocol.NoiseKey {
	var n protocol.NoiseKey
	copy(n[:], k.Public)
	return n
}

func identity(seed string) protocol.IdentityKey {
	k, err := protocol.IdentityKeyOf(detrand.Ed25519(seed).Public().(ed25519.PublicKey))
	check(err)
	return k
}

func newGen() *gen {
	g := &gen{msp: detrand.Ed25519("msp")}
	g.mspPub = identity("msp")
	g.approval = detrand.P256("tech-approval")
	var err error
	g.approvalPK, err = protocol.ApprovalKeyOf(&g.approval.Key.PublicKey)
	check(err)
	g.phone, g.agent, g.console = keypair("phone-noise"), keypair("agent-noise"), keypair("console-noise")
	g.tech = protocol.TechCert{
		Serial: 42, TechID: "tech-nik", Username: "nik", Email: "nik@msp.example",
		Grants:   []protocol.Grant{{Tenant: tenant, Role: protocol.RoleAdmin}},
		NoiseKey: noiseKey(g.phone), IdentityKey: identity("phone-identity"), ApprovalKey: g.approvalPK,
		Relay: relayB, NotBefore: Now - 86400, NotAfter: Now + 365*86400,
	}
	g.device = protocol.DeviceCert{
		Serial: 7, Name: "W11-L-FRONTDESK", Tenant: tenant, OS: "windows",
		NoiseKey: noiseKey(g.agent), IdentityKey: identity("agent-identity"),
		Relay: relayA, NotBefore: Now - 86400, NotAfter: Now + 365*86400,
	}
	copy(g.device.DeviceID[:], detrand.Bytes("device-id", 16))
	g.policy = protocol.Policy{
		Tenant: tenant, Version: 5, IssuedAt: Now - 3600, LoginMode: protocol.ModeNamed,
		PushLogin: true,
		Offline: protocol.OfflineParams{Digits: 6, Period: 30, Skew: 1, MaxFailures: 5,
			LockoutBase: 30, LockoutLimit: 3600},
		MaxSession: 8 * 3600, InactivityDays: 30,
		Revoked: []uint64{3, 9},
		Roster: []protocol.RosterEntry{{Serial: 42, TechID: "tech-nik", Username: "nik",
			Email: "nik@msp.example", NoiseKey: noiseKey(g.phone), IdentityKey: identity("phone-identity"), Relay: relayB}},
		Console:      protocol.MailboxFor(identity("console-identity").Public()).String() + "@" + relayA,
		ConsoleNoise: noiseKey(g.console),
	}
	return g
}

func (g *gen) add(v Vector) {
	if v.Expect == "" {
		v.Expect = "ok"
	}
	g.out = append(g.out, v)
}

func (g *gen) signEd(t protocol.DocType, doc any, key ed25519.PrivateKey) []byte {
	s, err := protocol.SignEd25519(t, doc, key)
	check(err)
	b, err := s.Encode()
	check(err)
	return b
}

func (g *gen) signP256(doc any, signer *detrand.Signer) []byte {
	s, err := protocol.SignP256(protocol.DocApproval, doc, signer, nil)
	check(err)
	b, err := s.Encode()
	check(err)
	return b
}

// cbor: R-01..R-07 on TenantVersion {1: "acme", 2: 5} (canonically
// a2 01 64 61636d65 02 05) and on real documents.
func (g *gen) cbor() {
	tv := func(name, rule, desc, in, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "cbor", Description: desc, Input: hx(unhex(in)),
			Context: Context{Type: "TenantVersion"}, Expect: expect})
	}
	tv("ok-cbor-canonical", "", "canonical TenantVersion {1: \"acme\", 2: 5}", "a2 01 6461636d65 02 05", "ok")
	tv("R01-cbor-int-not-shortest", "R-01", "integer 5 encoded in the one-byte form 18 05", "a2 01 6461636d65 02 1805", "ErrNonCanonical")
	tv("R01-cbor-key-not-shortest", "R-01", "map key 1 encoded as 18 01", "a2 1801 6461636d65 02 05", "ErrNonCanonical")
	tv("R01-cbor-map-order", "R-01", "map keys in the order 2, 1", "a2 02 05 01 6461636d65", "ErrNonCanonical")
	tv("R01-cbor-length-not-shortest", "R-01", "text length 4 encoded as 78 04", "a2 01 780461636d65 02 05", "ErrNonCanonical")
	tv("R01-cbor-missing-field", "R-01", "field 2 absent: the canonical encoding of the decoded value has it", "a1 01 6461636d65", "ErrNonCanonical")
	tv("R02-cbor-duplicate-key", "R-02", "key 1 twice", "a3 01 6461636d65 02 05 01 6461636d65", "ErrMalformed")
	tv("R03-cbor-unknown-field", "R-03", "extra key 3", "a3 01 6461636d65 02 05 03 00", "ErrMalformed")
	tv("R04-cbor-indefinite-map", "R-04", "indefinite-length map", "bf 01 6461636d65 02 05 ff", "ErrMalformed")
	tv("R04-cbor-indefinite-text", "R-04", "indefinite-length text string", "a2 01 7f6461636d65ff 02 05", "ErrMalformed")
	tv("R05-cbor-tag", "R-05", "self-describe tag 55799 around the map", "d9d9f7 a2 01 6461636d65 02 05", "ErrMalformed")
	tv("R05-cbor-bignum-tag", "R-05", "integer as tag 2 bignum", "a2 01 6461636d65 02 c24105", "ErrMalformed")
	tv("R06-cbor-trailing-bytes", "R-06", "one byte after the map", "a2 01 6461636d65 02 05 00", "ErrMalformed")

	// A well-formed, canonical TenantVersion whose tenant is 61 432 bytes
	// long: 61 449 bytes in all, so only the size check rejects it.
	big := []byte{0xa2, 0x01, 0x7a}
	big = binary.BigEndian.AppendUint32(big, protocol.MaxMessageSize-8)
	big = append(big, bytes.Repeat([]byte("a"), protocol.MaxMessageSize-8)...)
	big = append(big, 0x02, 0x05)
	g.add(Vector{Name: "R07-cbor-oversized", Rule: "R-07", Kind: "cbor",
		Description: "a canonical TenantVersion of MaxMessageSize+9 bytes (a tenant name of 61 432 bytes): it is valid but for its size",
		Input:       hx(big), Context: Context{Type: "TenantVersion"}, Expect: "ErrMalformed"})

	// Lists: null and [] are two valid encodings of an empty list, kept
	// apart by the re-encoding check; null is valid only for a list field
	// that is not omitempty.
	for _, l := range []struct{ name, desc, in string }{
		{"ok-cbor-list-null", "PolicyAck {1: null}: an empty list written as null", "a1 01 f6"},
		{"ok-cbor-list-empty", "PolicyAck {1: []}: an empty list written as an empty array", "a1 01 80"},
	} {
		g.add(Vector{Name: l.name, Kind: "cbor", Description: l.desc, Input: hx(unhex(l.in)), Context: Context{Type: "PolicyAck"}})
	}
	tv("R01-cbor-null-text", "R-01", "TenantVersion with null for its text field 1: only lists may be null", "a2 01 f6 02 05", "ErrNonCanonical")
	tv("R48-cbor-invalid-utf8", "R-48", "tenant text \"ac\\xffe\": not valid UTF-8", "a2 01 646163ff65 02 05", "ErrMalformed")
	tv("R48-cbor-overlong-utf8", "R-48", "tenant text with the overlong UTF-8 form c0 af of '/'", "a2 01 6461c0af65 02 05", "ErrMalformed")
	tv("R48-cbor-surrogate-utf8", "R-48", "tenant text with the UTF-8 encoding ed a0 80 of surrogate U+D800", "a2 01 6461eda080 02 05", "ErrMalformed")
	tv("R48-cbor-bytes-for-text", "R-48", "tenant as a byte string where text is defined", "a2 01 4461636d65 02 05", "ErrMalformed")
	tv("R48-cbor-negative-uint", "R-48", "version -1 where uint is defined", "a2 01 6461636d65 02 20", "ErrMalformed")
	tv("R48-cbor-float", "R-48", "version 5.0 as a half-precision float", "a2 01 6461636d65 02 f94500", "ErrMalformed")
	g.add(Vector{Name: "R48-cbor-u8-overflow", Rule: "R-48", Kind: "cbor", Description: "ErrorMsg code 256 where u8 is defined",
		Input: hx(unhex("a2 01 190100 02 60")), Context: Context{Type: "ErrorMsg"}, Expect: "ErrMalformed"})
	g.add(Vector{Name: "ok-cbor-error-msg", Kind: "cbor", Description: "ErrorMsg {1: 255, 2: \"\"}: the largest u8",
		Input: hx(unhex("a2 01 18ff 02 60")), Context: Context{Type: "ErrorMsg"}})

	// A real signed document with its envelope re-encoded non-canonically:
	// the signature length 64 written as 59 0040 instead of 58 40.
	tc := g.signEd(protocol.DocTechCert, &g.tech, g.msp)
	i := bytes.LastIndex(tc, []byte{0x03, 0x58, 0x40})
	nc := append(append(bytes.Clone(tc[:i]), 0x03, 0x59, 0x00, 0x40), tc[i+3:]...)
	g.add(Vector{Name: "R01-cbor-signed-envelope-long-length", Rule: "R-01", Kind: "cbor",
		Description: "Signed envelope of a tech cert with the signature's length in a longer form",
		Input:       hx(nc), Context: Context{Type: "Signed"}, Expect: "ErrNonCanonical"})
	g.add(Vector{Name: "ok-cbor-signed-envelope", Kind: "cbor", Description: "Signed envelope of a tech cert",
		Input: hx(tc), Context: Context{Type: "Signed"}})
	pol, err := protocol.Marshal(&g.policy)
	check(err)
	g.add(Vector{Name: "ok-cbor-policy", Kind: "cbor", Description: "a tenant policy body", Input: hx(pol),
		Context: Context{Type: "Policy"}})

	// RevokedDevices (key 18) is omitted when empty: a policy without
	// removed devices is the 17-field map above; with some, an 18-field
	// map ending in 12 82 ...; an empty list written out is not canonical.
	rd := g.policy
	rd.RevokedDevices = []uint64{7, 12}
	polRD, err := protocol.Marshal(&rd)
	check(err)
	g.add(Vector{Name: "ok-cbor-policy-revoked-devices", Kind: "cbor",
		Description: "a tenant policy body revoking device certificates 7 and 12 (key 18)", Input: hx(polRD),
		Context: Context{Type: "Policy"}})
	if pol[0] != 0xb1 {
		panic("policy is not a 17-field map")
	}
	empty := append(append([]byte{0xb2}, pol[1:]...), 0x12, 0x80)
	g.add(Vector{Name: "R01-cbor-policy-empty-revoked-devices", Rule: "R-01", Kind: "cbor",
		Description: "a tenant policy body with key 18 (RevokedDevices) present as an empty array: omitempty omits it",
		Input:       hx(empty), Context: Context{Type: "Policy"}, Expect: "ErrNonCanonical"})
	null := append(append([]byte{0xb2}, pol[1:]...), 0x12, 0xf6)
	g.add(Vector{Name: "R01-cbor-policy-null-revoked-devices", Rule: "R-01", Kind: "cbor",
		Description: "a tenant policy body with key 18 (RevokedDevices) present as null: omitempty omits a null list too",
		Input:       hx(null), Context: Context{Type: "Policy"}, Expect: "ErrNonCanonical"})
}

func (g *gen) signed() {
	tc := g.signEd(protocol.DocTechCert, &g.tech, g.msp)
	s, err := protocol.DecodeSigned(tc)
	check(err)
	ed := func(name, rule, desc string, in []byte, doc, ty, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "signed", Description: desc, Input: hx(in),
			Context: Context{DocType: doc, Alg: "ed25519", Key: hx(g.mspPub[:]), Type: ty}, Expect: expect})
	}
	ed("ok-signed-tech-cert", "", "tech cert signed by the MSP key", tc, "tech-cert", "TechCert", "ok")
	ed("R08-signed-wrong-key", "R-08", "tech cert signed by a key other than the pinned MSP key",
		g.signEd(protocol.DocTechCert, &g.tech, detrand.Ed25519("rogue")), "tech-cert", "TechCert", "ErrBadSignature")
	tampered := s
	tampered.Body = bytes.Clone(s.Body)
	tampered.Body[len(tampered.Body)-1] ^= 1 // NotAfter's last byte
	tb, err := tampered.Encode()
	check(err)
	ed("R08-signed-tampered-body", "R-08", "tech cert body altered after signing", tb, "tech-cert", "TechCert", "ErrBadSignature")
	ed("R09-tech-cert-as-policy", "R-09", "a valid tech cert presented where a policy is expected", tc, "policy", "Policy", "ErrBadSignature")
	relabelled := s
	relabelled.Type = protocol.DocPolicy
	rb, err := relabelled.Encode()
	check(err)
	ed("R09-type-relabelled", "R-09", "tech cert whose envelope type is changed to policy", rb, "policy", "Policy", "ErrBadSignature")
	dc := g.signEd(protocol.DocDeviceCert, &g.device, g.msp)
	ed("R09-device-cert-as-tech-cert", "R-09", "a valid device cert presented as a tech cert", dc, "tech-cert", "TechCert", "ErrBadSignature")

	ap := g.approvalFor(func(*protocol.Approval) {})
	g.add(Vector{Name: "R08-approval-wrong-key", Rule: "R-08", Kind: "signed",
		Description: "approval signed by a P-256 key other than the tech cert's approval key",
		Input:       hx(g.signP256(&ap, detrand.P256("rogue-approval"))),
		Context:     Context{DocType: "approval", Alg: "p256", Key: hx(g.approvalPK[:]), Type: "Approval"}, Expect: "ErrBadSignature"})
	g.add(Vector{Name: "ok-signed-approval", Kind: "signed", Description: "approval signed by the approval key",
		Input:   hx(g.signP256(&ap, g.approval)),
		Context: Context{DocType: "approval", Alg: "p256", Key: hx(g.approvalPK[:]), Type: "Approval"}})
}

func (g *gen) certs() {
	cert := func(name, rule, kind, desc string, doc any, ty protocol.DocType, at int64, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: kind, Description: desc, Input: hx(g.signEd(ty, doc, g.msp)),
			Context: Context{MSPKey: hx(g.mspPub[:]), Now: at}, Expect: expect})
	}
	tc := g.tech
	cert("ok-tech-cert-valid", "", "tech-cert", "tech cert inside its validity", &tc, protocol.DocTechCert, Now, "ok")
	cert("R10-tech-cert-expired", "R-10", "tech-cert", "one second after NotAfter", &tc, protocol.DocTechCert, tc.NotAfter+1, "ErrExpired")
	cert("R10-tech-cert-not-yet-valid", "R-10", "tech-cert", "one second before NotBefore", &tc, protocol.DocTechCert, tc.NotBefore-1, "ErrExpired")
	dc := g.device
	cert("ok-device-cert-valid", "", "device-cert", "device cert inside its validity", &dc, protocol.DocDeviceCert, Now, "ok")
	cert("R11-device-cert-expired", "R-11", "device-cert", "one second after NotAfter", &dc, protocol.DocDeviceCert, dc.NotAfter+1, "ErrExpired")
	cert("R11-device-cert-not-yet-valid", "R-11", "device-cert", "one second before NotBefore", &dc, protocol.DocDeviceCert, dc.NotBefore-1, "ErrExpired")
}

func (g *gen) authorize() {
	auth := func(name, rule, desc string, mod func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy), expect string) {
		t, d, p := g.tech, g.device, g.policy
		t.Grants = append([]protocol.Grant(nil), t.Grants...)
		mod(&t, &d, &p)
		g.add(Vector{Name: name, Rule: rule, Kind: "authorize", Description: desc,
			Input: hx(g.signEd(protocol.DocTechCert, &t, g.msp)),
			Context: Context{MSPKey: hx(g.mspPub[:]), Now: Now,
				DeviceCert: hx(g.signEd(protocol.DocDeviceCert, &d, g.msp)),
				Policy:     hx(g.signEd(protocol.DocPolicy, &p, g.msp))},
			Expect: expect})
	}
	share := func(p *protocol.Policy, id protocol.DeviceID, entries ...string) {
		p.Shares = []protocol.DeviceShare{{DeviceID: id, Entries: entries}}
	}
	none := func(*protocol.TechCert, *protocol.DeviceCert, *protocol.Policy) {}
	auth("ok-authorize-admin-default-share", "", "tenant admin, device without a share list (default all-admins, all-users)", none, "ok")
	auth("ok-authorize-read-only-all-users", "", "read-only technician, share list [all-users]",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants[0].Role = protocol.RoleReadOnly
			share(p, d.DeviceID, protocol.ShareAllUsers)
		}, "ok")
	auth("ok-authorize-named-username", "", "read-only technician named in the share list",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants[0].Role = protocol.RoleReadOnly
			share(p, d.DeviceID, "bob", "nik")
		}, "ok")
	auth("ok-authorize-global-admin", "", "global admin, share list names somebody else",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants = []protocol.Grant{{Role: protocol.RoleGlobalAdmin}}
			share(p, d.DeviceID, "bob")
		}, "ok")
	auth("R12-authorize-revoked", "R-12", "tech cert serial 9 is in the policy's revocation list",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { t.Serial = 9 }, "ErrRevoked")
	auth("R12-authorize-revoked-global-admin", "R-12", "a revoked global admin",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Serial = 3
			t.Grants = []protocol.Grant{{Role: protocol.RoleGlobalAdmin}}
		}, "ErrRevoked")
	auth("R13-authorize-not-delegated", "R-13", "technician delegated only to tenant globex",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { t.Grants[0].Tenant = "globex" }, "ErrNotDelegated")
	auth("R13-authorize-unknown-role", "R-13", "a grant with an unknown role delegates nothing",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { t.Grants[0].Role = "owner" }, "ErrNotDelegated")
	auth("R14-authorize-read-only-all-admins", "R-14", "read-only technician, share list [all-admins]",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants[0].Role = protocol.RoleReadOnly
			share(p, d.DeviceID, protocol.ShareAllAdmins)
		}, "ErrNotShared")
	auth("R14-authorize-other-username", "R-14", "admin, share list names only bob",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { share(p, d.DeviceID, "bob") }, "ErrNotShared")
	auth("R14-authorize-reserved-username", "R-14", "read-only technician whose username is \"all-admins\", share list [all-admins]",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants[0].Role = protocol.RoleReadOnly
			t.Username = protocol.ShareAllAdmins
			share(p, d.DeviceID, protocol.ShareAllAdmins)
		}, "ErrNotShared")
	auth("R15-authorize-wrong-tenant", "R-15", "device cert of tenant globex checked against acme's policy",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { d.Tenant = "globex" }, "ErrWrongTenant")
	auth("R10-authorize-tech-cert-expired", "R-10", "an otherwise authorised technician with an expired cert",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { t.NotAfter = Now - 1 }, "ErrExpired")
	auth("ok-authorize-other-devices-revoked", "", "tenant admin; the policy revokes device certificates 5 and 11, not the device's 7",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			p.RevokedDevices = []uint64{5, 11}
		}, "ok")
	auth("R46-authorize-device-revoked", "R-46", "tenant admin on a device whose certificate serial 7 the policy revokes (device removed)",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) { p.RevokedDevices = []uint64{7} }, "ErrDeviceRevoked")
	auth("R46-authorize-device-revoked-global-admin", "R-46", "a global admin on a removed device",
		func(t *protocol.TechCert, d *protocol.DeviceCert, p *protocol.Policy) {
			t.Grants = []protocol.Grant{{Role: protocol.RoleGlobalAdmin}}
			p.RevokedDevices = []uint64{1, 7, 12}
		}, "ErrDeviceRevoked")

	// What a phone checks of the device certificate in a login request,
	// against the policy it holds for the certificate's tenant.
	dev := func(name, rule, desc string, mod func(d *protocol.DeviceCert, p *protocol.Policy), expect string) {
		d, p := g.device, g.policy
		mod(&d, &p)
		g.add(Vector{Name: name, Rule: rule, Kind: "device-check", Description: desc,
			Input: hx(g.signEd(protocol.DocDeviceCert, &d, g.msp)),
			Context: Context{MSPKey: hx(g.mspPub[:]), Now: Now,
				Policy: hx(g.signEd(protocol.DocPolicy, &p, g.msp))},
			Expect: expect})
	}
	dev("ok-device-check", "", "device certificate of the policy's tenant, other serials revoked",
		func(d *protocol.DeviceCert, p *protocol.Policy) { p.RevokedDevices = []uint64{6, 8} }, "ok")
	dev("R46-device-check-revoked", "R-46", "login request from a device whose certificate serial 7 the tenant policy revokes",
		func(d *protocol.DeviceCert, p *protocol.Policy) { p.RevokedDevices = []uint64{7} }, "ErrDeviceRevoked")
	dev("R15-device-check-wrong-tenant", "R-15", "device certificate of tenant globex checked against acme's policy",
		func(d *protocol.DeviceCert, p *protocol.Policy) { d.Tenant = "globex" }, "ErrWrongTenant")
}

func (g *gen) policies() {
	up := func(name, rule, desc string, held, next uint64, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "policy-upgrade", Description: desc,
			Context: Context{Held: held, Next: next}, Expect: expect})
	}
	up("ok-policy-upgrade", "", "held 5, offered 6", 5, 6, "ok")
	up("ok-policy-first", "", "no policy held (0), offered 1", 0, 1, "ok")
	up("R16-policy-same-version", "R-16", "held 5, offered 5 (replay)", 5, 5, "ErrPolicyDowngrade")
	up("R16-policy-older-version", "R-16", "held 5, offered 4 (rollback)", 5, 4, "ErrPolicyDowngrade")

	chk := func(name, rule, desc string, mod func(*protocol.Policy), expect string) {
		p := g.policy
		mod(&p)
		g.add(Vector{Name: name, Rule: rule, Kind: "policy-check", Description: desc,
			Input: hx(g.signEd(protocol.DocPolicy, &p, g.msp)), Context: Context{MSPKey: hx(g.mspPub[:])}, Expect: expect})
	}
	chk("ok-policy-check", "", "consistent policy", func(*protocol.Policy) {}, "ok")
	chk("R17-policy-revoked-unsorted", "R-17", "revocation list not sorted", func(p *protocol.Policy) { p.Revoked = []uint64{9, 3} }, "ErrInvalidDoc")
	chk("R17-policy-revoked-devices-unsorted", "R-17", "list of revoked device certificates not sorted",
		func(p *protocol.Policy) { p.RevokedDevices = []uint64{12, 7} }, "ErrInvalidDoc")
	chk("R17-policy-revoked-devices-duplicate", "R-17", "a device certificate serial revoked twice",
		func(p *protocol.Policy) { p.RevokedDevices = []uint64{7, 7} }, "ErrInvalidDoc")
	chk("R17-policy-shared-without-account", "R-17", "shared mode without a shared account name",
		func(p *protocol.Policy) { p.LoginMode = protocol.ModeShared }, "ErrInvalidDoc")
	chk("R17-policy-version-zero", "R-17", "version 0", func(p *protocol.Policy) { p.Version = 0 }, "ErrInvalidDoc")
	chk("R17-policy-skew-two", "R-17", "offline skew of 2 steps", func(p *protocol.Policy) { p.Offline.Skew = 2 }, "ErrInvalidDoc")
	chk("ok-policy-check-push-limits", "", "push limits at their largest: 16 pending, 100 per hour, blocked 7 days after a report",
		func(p *protocol.Policy) {
			p.PushLogin, p.PushMaxPending, p.PushPerHour, p.PushBlock = true, protocol.MaxPushMaxPending, protocol.MaxPushPerHour, protocol.MaxPushBlock
		}, "ok")
	chk("R17-policy-push-per-hour-too-high", "R-17", "push limit of 101 per hour", func(p *protocol.Policy) { p.PushPerHour = 101 }, "ErrInvalidDoc")
	chk("R17-policy-push-pending-negative", "R-17", "push max pending -1", func(p *protocol.Policy) { p.PushMaxPending = -1 }, "ErrInvalidDoc")
	chk("ok-policy-check-governance", "", "a reason required, a ticket pattern of MaxTicketPatternLen bytes, a warning 5 min before the cap, an end-user notice",
		func(p *protocol.Policy) {
			p.RequireReason, p.WarnBefore, p.EndUserNotice = true, 300, true
			p.TicketPattern = `[A-Z]{2,8}-[0-9]{1,6}` + strings.Repeat("x?", (protocol.MaxTicketPatternLen-21)/2) + "y"
		}, "ok")
	chk("R17-policy-warn-before-too-long", "R-17", "a warning 24 h and 1 s before the cap", func(p *protocol.Policy) { p.WarnBefore = protocol.MaxWarnBefore + 1 }, "ErrInvalidDoc")
	chk("R17-policy-warn-before-negative", "R-17", "a warning -1 s before the cap", func(p *protocol.Policy) { p.WarnBefore = -1 }, "ErrInvalidDoc")
	chk("ok-policy-check-warn-before", "", "a warning 24 h before the cap (the bound)", func(p *protocol.Policy) { p.WarnBefore = protocol.MaxWarnBefore }, "ok")
	chk("R17-policy-ticket-pattern-invalid", "R-17", "ticket pattern that does not compile", func(p *protocol.Policy) { p.TicketPattern = "[A-Z" }, "ErrInvalidDoc")
	chk("R17-policy-ticket-pattern-too-long", "R-17", "ticket pattern of 129 bytes",
		func(p *protocol.Policy) { p.TicketPattern = strings.Repeat("a", protocol.MaxTicketPatternLen+1) }, "ErrInvalidDoc")
	chk("R17-policy-push-block-too-long", "R-17", "push block of 7 days and 1 s", func(p *protocol.Policy) { p.PushBlock = protocol.MaxPushBlock + 1 }, "ErrInvalidDoc")
	chk("ok-policy-check-edges", "", "every bound at its edge: MaxSession 7 days, InactivityDays 0 (never), lockout 0 and 0, no console, "+
		"a share list of a reserved word and two usernames and an empty share list",
		func(p *protocol.Policy) {
			p.MaxSession, p.InactivityDays, p.Offline.LockoutBase, p.Offline.LockoutLimit = protocol.MaxSessionLimit, 0, 0, 0
			p.Console, p.ConsoleNoise = "", protocol.NoiseKey{}
			p.Shares = []protocol.DeviceShare{{DeviceID: protocol.DeviceID{1}, Entries: []string{protocol.ShareAllAdmins, "bob", "nik"}},
				{DeviceID: protocol.DeviceID{2}, Entries: []string{}}}
		}, "ok")
	chk("R17-policy-max-session-too-long", "R-17", "MaxSession of 7 days and 1 s", func(p *protocol.Policy) { p.MaxSession = protocol.MaxSessionLimit + 1 }, "ErrInvalidDoc")
	chk("R17-policy-inactivity-negative", "R-17", "InactivityDays -1", func(p *protocol.Policy) { p.InactivityDays = -1 }, "ErrInvalidDoc")
	chk("R17-policy-lockout-limit-below-base", "R-17", "LockoutLimit 30 below LockoutBase 60",
		func(p *protocol.Policy) { p.Offline.LockoutBase, p.Offline.LockoutLimit = 60, 30 }, "ErrInvalidDoc")
	chk("R17-policy-lockout-base-negative", "R-17", "LockoutBase -1", func(p *protocol.Policy) { p.Offline.LockoutBase = -1 }, "ErrInvalidDoc")
	chk("R17-policy-console-without-mailbox", "R-17", "Console is a relay address, not a peer address",
		func(p *protocol.Policy) { p.Console = relayA }, "ErrInvalidDoc")
	chk("R17-policy-share-entry-syntax", "R-17", "a share list entry in upper case (neither a reserved word nor a username)",
		func(p *protocol.Policy) {
			p.Shares = []protocol.DeviceShare{{DeviceID: g.device.DeviceID, Entries: []string{"Nik"}}}
		}, "ErrInvalidDoc")
	chk("R17-policy-share-entries-unsorted", "R-17", "a share list [nik, bob]",
		func(p *protocol.Policy) {
			p.Shares = []protocol.DeviceShare{{DeviceID: g.device.DeviceID, Entries: []string{"nik", "bob"}}}
		}, "ErrInvalidDoc")
	chk("R17-policy-shared-account-in-named-mode", "R-17", "named mode with a shared account name",
		func(p *protocol.Policy) { p.SharedAccount = "msp-0001" }, "ErrInvalidDoc")
}

func (g *gen) approvalFor(mod func(*protocol.Approval)) protocol.Approval {
	a := protocol.Approval{
		Serial: g.tech.Serial, DeviceID: g.device.DeviceID, HandshakeHash: detrand.Bytes("handshake-hash", 32),
		Action: protocol.ActionLogon, Account: protocol.AccountDefault, Decision: protocol.DecisionApprove, Time: Now,
	}
	copy(a.Session[:], detrand.Bytes("session", 16))
	copy(a.Nonce[:], detrand.Bytes("approval-nonce", 16))
	mod(&a)
	return a
}

func (g *gen) approvals() {
	base := g.approvalFor(func(*protocol.Approval) {})
	exp := func(mod func(*ApprovalExpect)) *ApprovalExpect {
		e := &ApprovalExpect{Serial: base.Serial, DeviceID: hx(base.DeviceID[:]), Session: hx(base.Session[:]),
			HandshakeHash: hx(base.HandshakeHash), Action: base.Action}
		mod(e)
		return e
	}
	ap := func(name, rule, desc string, amod func(*protocol.Approval), emod func(*ApprovalExpect), expect string) {
		a := g.approvalFor(amod)
		g.add(Vector{Name: name, Rule: rule, Kind: "approval", Description: desc, Input: hx(g.signP256(&a, g.approval)),
			Context: Context{Key: hx(g.approvalPK[:]), Now: Now, ApprovalExpect: exp(emod)}, Expect: expect})
	}
	same := func(*protocol.Approval) {}
	asked := func(*ApprovalExpect) {}
	ap("ok-approval-approve", "", "approval matching the request", same, asked, "ok")
	ap("ok-approval-deny", "", "a matching deny (the caller then refuses the login)",
		func(a *protocol.Approval) { a.Decision = protocol.DecisionDeny }, asked, "ok")
	ap("ok-approval-domain-offered", "", "domain account chosen where local and domain were offered",
		func(a *protocol.Approval) { a.Account = protocol.AccountDomain },
		func(e *ApprovalExpect) { e.Accounts = []int{int(protocol.AccountLocal), int(protocol.AccountDomain)} }, "ok")
	ap("ok-approval-push-number", "", "push approval with the matching number",
		func(a *protocol.Approval) { a.Number = 47 }, func(e *ApprovalExpect) { e.Number = 47 }, "ok")
	ap("R18-approval-wrong-session", "R-18", "approval for another session",
		func(a *protocol.Approval) { a.Session[0] ^= 1 }, asked, "ErrApprovalMismatch")
	ap("R18-approval-wrong-device", "R-18", "approval for another device",
		func(a *protocol.Approval) { a.DeviceID[0] ^= 1 }, asked, "ErrApprovalMismatch")
	ap("R18-approval-wrong-handshake-hash", "R-18", "approval bound to another Noise handshake (relayed from another session)",
		func(a *protocol.Approval) { a.HandshakeHash = detrand.Bytes("other-handshake", 32) }, asked, "ErrApprovalMismatch")
	ap("R18-approval-wrong-action", "R-18", "approval for elevate where logon was asked",
		func(a *protocol.Approval) { a.Action = protocol.ActionElevate }, asked, "ErrApprovalMismatch")
	ap("R18-approval-account-not-offered", "R-18", "domain account chosen where only the default was offered",
		func(a *protocol.Approval) { a.Account = protocol.AccountDomain }, asked, "ErrApprovalMismatch")
	ap("R18-approval-wrong-number", "R-18", "push approval with another number than shown on screen",
		func(a *protocol.Approval) { a.Number = 12 }, func(e *ApprovalExpect) { e.Number = 47 }, "ErrApprovalMismatch")
	ap("R18-approval-bad-decision", "R-18", "decision value 3", func(a *protocol.Approval) { a.Decision = 3 }, asked, "ErrApprovalMismatch")
	ap("R18-approval-wrong-serial", "R-18", "approval naming another tech cert serial",
		func(a *protocol.Approval) { a.Serial = 43 }, asked, "ErrApprovalMismatch")
	skew := int64(protocol.MaxApprovalSkew / time.Second)
	ap("R19-approval-stale", "R-19", "approval time MaxApprovalSkew+1 s in the past",
		func(a *protocol.Approval) { a.Time = Now - skew - 1 }, asked, "ErrStale")
	ap("R19-approval-future", "R-19", "approval time MaxApprovalSkew+1 s in the future",
		func(a *protocol.Approval) { a.Time = Now + skew + 1 }, asked, "ErrStale")

	// Reason and ticket (6.3, 6.4, R-61).
	const pattern = `[A-Z]{2,8}-[0-9]{1,6}`
	governed := func(e *ApprovalExpect) { e.RequireReason, e.TicketPattern = true, pattern }
	justified := func(a *protocol.Approval) { a.Reason, a.Ticket = "printer queue stuck on reception PC", "OPS-1234" }
	ap("ok-approval-reason-ticket", "", "approval with the reason and a ticket matching the pattern the policy requires",
		justified, governed, "ok")
	ap("ok-approval-reason-ticket-unrequired", "", "reason and ticket given where the policy requires neither",
		justified, asked, "ok")
	ap("ok-approval-deny-without-reason", "", "a deny needs no reason or ticket",
		func(a *protocol.Approval) { a.Decision = protocol.DecisionDeny }, governed, "ok")
	ap("R61-approval-reason-missing", "R-61", "approval without the reason the policy requires",
		func(a *protocol.Approval) { a.Ticket = "OPS-1234" }, governed, "ErrJustification")
	ap("R61-approval-reason-blank", "R-61", "approval whose reason is only spaces",
		func(a *protocol.Approval) { a.Reason, a.Ticket = "   ", "OPS-1234" }, governed, "ErrJustification")
	ap("R61-approval-ticket-missing", "R-61", "approval without the ticket the policy's pattern requires",
		func(a *protocol.Approval) { a.Reason = "printer queue stuck" }, governed, "ErrJustification")
	ap("R61-approval-ticket-not-matching", "R-61", "ticket that matches the pattern only in part (the pattern is anchored)",
		func(a *protocol.Approval) { a.Reason, a.Ticket = "printer queue stuck", "OPS-1234x" }, governed, "ErrJustification")
	ap("R61-approval-reason-too-long", "R-61", "reason of MaxReasonLen+1 bytes",
		func(a *protocol.Approval) { a.Reason = strings.Repeat("r", protocol.MaxReasonLen+1) }, asked, "ErrJustification")
	ap("R61-approval-ticket-control", "R-61", "ticket with a control character",
		func(a *protocol.Approval) { a.Ticket = "OPS-1\n" }, asked, "ErrJustification")
}

const b45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// base45 is an independent RFC 9285 encoder.
func base45(b []byte) string {
	var s []byte
	for ; len(b) >= 2; b = b[2:] {
		n := int(b[0])<<8 | int(b[1])
		s = append(s, b45[n%45], b45[n/45%45], b45[n/2025])
	}
	if len(b) == 1 {
		s = append(s, b45[int(b[0])%45], b45[int(b[0])/45])
	}
	return string(s)
}

// qrBinary builds a QR payload's binary form by hand (SPEC layout).
func (g *gen) qrBinary(kind, action uint8, t int64, dev protocol.DeviceID, static []byte, relay string) []byte {
	b := []byte{protocol.QRVersion, kind, action}
	b = binary.BigEndian.AppendUint32(b, uint32(t))
	b = append(b, dev[:]...)
	b = append(b, static...)
	b = append(b, detrand.Bytes("agent-mailbox", 32)...)
	b = append(b, detrand.Bytes("qr-secret", 16)...)
	b = append(b, byte(len(relay)))
	return append(b, relay...)
}

func (g *gen) qr() {
	login := g.qrBinary(protocol.QRLogin, protocol.ActionLogon, Now, g.device.DeviceID, g.agent.Public, relayA)
	q := func(name, rule, desc, text string, at int64, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "qr", Description: desc, Input: text, Context: Context{Now: at}, Expect: expect})
	}
	mod := func(f func([]byte) []byte) string { return "JK:" + base45(f(bytes.Clone(login))) }
	text := "JK:" + base45(login)
	// The hand-built payload must be what the implementation produces.
	p, err := protocol.ParseQR(text)
	check(err)
	enc, err := p.Encode()
	check(err)
	if enc != text {
		panic("QR encoder disagrees with the SPEC layout")
	}
	q("ok-qr-login", "", "login QR, scanned at its time", text, Now, "ok")
	q("ok-qr-login-at-max-age", "", "login QR scanned QRLoginMaxAge after its time", text, Now+90, "ok")
	pair := g.qrBinary(protocol.QRPair, 0, Now, protocol.DeviceID{}, g.console.Public, relayA)
	q("ok-qr-pair", "", "pairing QR 9 minutes old", "JK:"+base45(pair), Now+540, "ok")
	long := g.qrBinary(protocol.QRLogin, protocol.ActionSudo, Now, g.device.DeviceID, g.agent.Public,
		strings.Repeat("r", protocol.MaxRelayAddrLen-5)+":4433")
	q("ok-qr-longest-relay", "", "login QR with a relay address of MaxRelayAddrLen bytes (the longest text)", "JK:"+base45(long), Now, "ok")
	q("R20-qr-stale", "R-20", "login QR scanned 91 s after its time", text, Now+91, "ErrQRStale")
	q("R20-qr-future", "R-20", "login QR whose time is 31 s ahead of the scanner", text, Now-31, "ErrQRStale")
	q("R21-qr-truncated", "R-21", "binary payload cut after the secret", mod(func(b []byte) []byte { return b[:103] }), Now, "ErrMalformed")
	q("R21-qr-trailing-byte", "R-21", "one byte after the relay address", mod(func(b []byte) []byte { return append(b, 0) }), Now, "ErrMalformed")
	q("R21-qr-no-prefix", "R-21", "base45 payload without \"JK:\"", base45(login), Now, "ErrMalformed")
	q("R21-qr-lowercase-base45", "R-21", "payload characters outside the base45 alphabet", "JK:"+strings.ToLower(base45(login)), Now, "ErrMalformed")
	q("R21-qr-bad-kind", "R-21", "kind 3", mod(func(b []byte) []byte { b[1] = 3; return b }), Now, "ErrMalformed")
	q("R21-qr-bad-action", "R-21", "login QR with action 0", mod(func(b []byte) []byte { b[2] = 0; return b }), Now, "ErrMalformed")
	q("R21-qr-pair-with-device", "R-21", "pairing QR carrying a device id",
		"JK:"+base45(func() []byte { b := bytes.Clone(pair); b[7] = 1; return b }()), Now, "ErrMalformed")
	q("R21-qr-bad-relay", "R-21", "relay address without a port",
		mod(func(b []byte) []byte { return append(b[:103], 4, 'h', 'o', 's', 't') }), Now, "ErrMalformed")
	q("R21-qr-zero-key", "R-21", "all-zero static key", mod(func(b []byte) []byte { clear(b[23:55]); return b }), Now, "ErrMalformed")
	q("R22-qr-version-2", "R-22", "version byte 2", mod(func(b []byte) []byte { b[0] = 2; return b }), Now, "ErrUnsupportedVersion")
	q("R22-qr-version-2-short", "R-22", "version byte 2 followed by 40 bytes: a later layout; the version is checked before the length",
		"JK:"+base45(append([]byte{2}, detrand.Bytes("qr-v2", 40)...)), Now, "ErrUnsupportedVersion")
	q("R21-qr-empty", "R-21", "prefix without a payload", "JK:", Now, "ErrMalformed")
	q("R23-qr-oversized", "R-23", "text one character longer than MaxQRText",
		"JK:"+base45(long)+strings.Repeat("0", protocol.MaxQRText-3-len(base45(long))+1), Now, "ErrMalformed")
}

// side builds a Side and the matching protocol configuration.
type party struct {
	side Side
	cfg  protocol.HandshakeConfig
}

func (g *gen) party(flow protocol.Flow, static noise.DHKey, peer []byte, psk []byte, ephSeed string) party {
	eph := detrand.Bytes(ephSeed, 32)
	p := party{
		side: Side{Flow: flow.Name(), Static: hx(static.Private), PSK: hx(psk),
			InitiatorRelay: relayB, ResponderRelay: relayA, Ephemeral: hx(eph)},
		cfg: protocol.HandshakeConfig{Flow: flow, Static: static, PSK: psk,
			InitiatorRelay: relayB, ResponderRelay: relayA, Rand: bytes.NewReader(eph)},
	}
	if peer != nil {
		p.side.PeerStatic = hx(peer)
		copy(p.cfg.PeerStatic[:], peer)
	}
	return p
}

// script is a Transport for one side of a two-message handshake.
type script struct {
	out, in chan []byte
}

func newScript() *script { return &script{out: make(chan []byte, 1), in: make(chan []byte, 1)} }

func (s *script) WriteMessage(_ context.Context, m []byte) error {
	s.out <- bytes.Clone(m)
	return nil
}

func (s *script) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case m := <-s.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type hsResult struct {
	msg1, msg2 []byte
	is, rs     *protocol.Session
	ierr, rerr error
}

// runHandshake runs the implementation's two sides; tamper may replace
// msg1 or msg2 in flight.
func runHandshake(ini, resp protocol.HandshakeConfig, tamper func(n int, m []byte) []byte) hsResult {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := newScript()
	var r hsResult
	done := make(chan struct{})
	go func() {
		r.is, r.ierr = protocol.Initiate(ctx, ini, it)
		close(done)
	}()
	select {
	case r.msg1 = <-it.out:
	case <-done:
		return r
	}
	rt := newScript()
	r.rs, r.rerr = protocol.RespondMessage(ctx, resp, tamper(1, bytes.Clone(r.msg1)), rt)
	if r.rerr != nil {
		cancel()
		<-done
		return r
	}
	r.msg2 = <-rt.out
	it.in <- tamper(2, bytes.Clone(r.msg2))
	<-done
	return r
}

func noTamper(_ int, m []byte) []byte { return m }

func (g *gen) hsPair(flow protocol.Flow) (ini, resp party) {
	psk := []byte(nil)
	if flow.FirstContact() {
		psk = detrand.Bytes("qr-psk", 32)
	}
	ini = g.party(flow, g.phone, g.agent.Public, psk, "ini-ephemeral")
	var respPeer []byte
	if !flow.FirstContact() {
		respPeer = g.phone.Public
	}
	resp = g.party(flow, g.agent, respPeer, bytes.Clone(psk), "resp-ephemeral")
	return ini, resp
}

func (g *gen) handshakes() {
	hs := func(name, rule, desc string, flow protocol.Flow, mod func(ini, resp *party), tamperMsg int, expect string) {
		ini, resp := g.hsPair(flow)
		mod(&ini, &resp)
		h := &Handshake{Initiator: ini.side, Responder: resp.side}
		var input []byte
		tamper := noTamper
		if tamperMsg > 0 {
			h.Tamper = fmt.Sprintf("msg%d", tamperMsg)
			tamper = func(n int, m []byte) []byte {
				if n == tamperMsg {
					m[len(m)-1] ^= 1 // last tag byte
					input = bytes.Clone(m)
				}
				return m
			}
		}
		r := runHandshake(ini.cfg, resp.cfg, tamper)
		err := r.rerr
		if err == nil {
			err = r.ierr
		}
		switch {
		case expect == "ok" && err != nil:
			panic(fmt.Sprintf("%s: %v", name, err))
		case expect == "ok":
			h.Msg1, h.Msg2, h.Hash = hx(r.msg1), hx(r.msg2), hx(r.is.HandshakeHash())
		case !errors.Is(err, protocol.ErrHandshake):
			panic(fmt.Sprintf("%s: got %v", name, err))
		}
		g.add(Vector{Name: name, Rule: rule, Kind: "handshake", Description: desc, Input: hx(input),
			Context: Context{Handshake: h}, Expect: expect})
	}
	none := func(ini, resp *party) {}
	hs("ok-handshake-ikpsk1-qr-login", "", "Noise_IKpsk1 QR login, phone -> agent", protocol.FlowQRLogin, none, 0, "ok")
	hs("ok-handshake-ikpsk1-enroll", "", "Noise_IKpsk1 enrollment", protocol.FlowEnroll, none, 0, "ok")
	hs("ok-handshake-kk-push", "", "Noise_KK push login, agent and phone know each other", protocol.FlowPush, none, 0, "ok")
	hs("R24-handshake-wrong-psk", "R-24", "initiator's PSK is not the responder's (has not seen this QR code)", protocol.FlowQRLogin,
		func(ini, resp *party) {
			psk := detrand.Bytes("stale-qr-psk", 32)
			ini.side.PSK, ini.cfg.PSK = hx(psk), psk
		}, 0, "ErrHandshake")
	rogue := keypair("rogue-noise")
	hs("R25-handshake-ik-wrong-responder-static", "R-25", "initiator addresses a static key the responder does not hold", protocol.FlowQRLogin,
		func(ini, resp *party) {
			ini.side.PeerStatic = hx(rogue.Public)
			copy(ini.cfg.PeerStatic[:], rogue.Public)
		}, 0, "ErrHandshake")
	hs("R25-handshake-kk-unknown-initiator", "R-25", "KK initiator with a static key other than the one the responder expects", protocol.FlowPush,
		func(ini, resp *party) {
			ini.side.Static = hx(rogue.Private)
			ini.cfg.Static = rogue
		}, 0, "ErrHandshake")
	hs("R26-handshake-flow-mismatch", "R-26", "initiator runs the pairing flow against a QR-login responder (same keys, same PSK)", protocol.FlowQRLogin,
		func(ini, resp *party) { ini.side.Flow, ini.cfg.Flow = "pair", protocol.FlowPair }, 0, "ErrHandshake")
	hs("R26-handshake-relay-mismatch", "R-26", "the peers disagree on the responder's relay (a relay redirected the session)", protocol.FlowPolicy,
		func(ini, resp *party) {
			ini.side.ResponderRelay, ini.cfg.ResponderRelay = "evil.example:4433", "evil.example:4433"
		}, 0, "ErrHandshake")
	hs("R27-handshake-msg1-tampered", "R-27", "last byte of message 1 flipped in transit", protocol.FlowQRLogin, none, 1, "ErrHandshake")
	hs("R27-handshake-msg2-tampered", "R-27", "last byte of message 2 flipped in transit", protocol.FlowQRLogin, none, 2, "ErrHandshake")
	hs("R27-handshake-kk-msg1-tampered", "R-27", "last byte of KK message 1 flipped in transit", protocol.FlowAudit, none, 1, "ErrHandshake")
}

// transport builds transport-phase vectors on the QR-login handshake.
func (g *gen) transport() {
	ini, resp := g.hsPair(protocol.FlowQRLogin)
	r := runHandshake(ini.cfg, resp.cfg, noTamper)
	check(r.ierr)
	check(r.rerr)
	h := &Handshake{Initiator: ini.side, Responder: resp.side, Msg1: hx(r.msg1), Msg2: hx(r.msg2), Hash: hx(r.is.HandshakeHash())}
	pts := [][]byte{[]byte("login hello"), []byte("approval"), []byte("third")}
	var cts [][]byte
	for _, p := range pts {
		c, err := r.is.Seal(p)
		check(err)
		cts = append(cts, c)
	}
	// Authentic messages with plaintexts Seal never produces, sealed with
	// the cipher state of a bare flynn/noise run of the same handshake.
	craft := func(plain []byte) []byte {
		raw := g.rawInitiatorCipher(ini, r)
		for range cts { // skip the nonces Seal used
			_, err := raw.Encrypt(nil, nil, nil)
			check(err)
		}
		c, err := raw.Encrypt(nil, nil, plain)
		check(err)
		return c
	}
	badPad := make([]byte, protocol.PadBlock)
	binary.BigEndian.PutUint16(badPad, 5)
	copy(badPad[2:], "hello")
	badPad[protocol.PadBlock-1] = 1
	overLen := make([]byte, protocol.PadBlock)
	binary.BigEndian.PutUint16(overLen, protocol.PadBlock-1)
	notBlock := make([]byte, protocol.PadBlock+1)
	binary.BigEndian.PutUint16(notBlock, 5)

	tr := func(name, rule, desc string, msgs [][]byte, plains [][]byte, expect string) {
		var m, p []string
		for _, c := range msgs {
			m = append(m, hx(c))
		}
		for _, x := range plains {
			p = append(p, hx(x))
		}
		g.add(Vector{Name: name, Rule: rule, Kind: "transport", Description: desc,
			Context: Context{Handshake: h, Messages: m, Plaintexts: p}, Expect: expect})
	}
	tampered := bytes.Clone(cts[0])
	tampered[3] ^= 1
	tr("ok-transport-in-order", "", "three messages opened in order", cts, pts, "ok")
	tr("R28-transport-tampered", "R-28", "first message with a flipped ciphertext bit", [][]byte{tampered}, nil, "ErrDecrypt")
	tr("R29-transport-replayed", "R-29", "first message delivered twice", [][]byte{cts[0], cts[0]}, nil, "ErrDecrypt")
	tr("R30-transport-reordered", "R-30", "second message delivered first", [][]byte{cts[1], cts[0]}, nil, "ErrDecrypt")
	tr("R30-transport-dropped", "R-30", "first message dropped", [][]byte{cts[1]}, nil, "ErrDecrypt")
	after := func(c []byte) [][]byte { return append(append([][]byte{}, cts...), c) }
	tr("R31-transport-nonzero-padding", "R-31", "authentic fourth message whose padding has a nonzero byte",
		after(craft(badPad)), nil, "ErrDecrypt")
	tr("R31-transport-length-beyond-plaintext", "R-31", "authentic fourth message whose length prefix exceeds the plaintext",
		after(craft(overLen)), nil, "ErrDecrypt")
	tr("R31-transport-not-block-multiple", "R-31", "authentic fourth message whose plaintext is not a multiple of PadBlock",
		after(craft(notBlock)), nil, "ErrDecrypt")
}

// rawInitiatorCipher repeats the handshake with flynn/noise directly,
// configured as SPEC.md describes, checks that it produces the same
// messages as the implementation, and returns the initiator's sending
// cipher state.
func (g *gen) rawInitiatorCipher(ini party, r hsResult) *noise.CipherState {
	eph := unhex(ini.side.Ephemeral)
	cfg := noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s),
		Random:                bytes.NewReader(eph),
		Pattern:               noise.HandshakeIK,
		Initiator:             true,
		Prologue:              protocol.Prologue(ini.cfg.Flow, relayB, relayA),
		PresharedKey:          ini.cfg.PSK,
		PresharedKeyPlacement: 1,
		StaticKeypair:         ini.cfg.Static,
		PeerStatic:            ini.cfg.PeerStatic[:],
	}
	hs, err := noise.NewHandshakeState(cfg)
	check(err)
	m1, _, _, err := hs.WriteMessage(nil, nil)
	check(err)
	if !bytes.Equal(m1, r.msg1) {
		panic("bare noise msg1 differs from the implementation's")
	}
	_, cs1, _, err := hs.ReadMessage(nil, r.msg2)
	check(err)
	if !bytes.Equal(hs.ChannelBinding(), r.is.HandshakeHash()) {
		panic("bare noise handshake hash differs")
	}
	return cs1
}

func (g *gen) e2e() {
	sid := detrand.Bytes("session", 16)
	frame := func(kind byte, rest ...byte) []byte { return append(append(bytes.Clone(sid), kind), rest...) }
	hello := append(frame(protocol.E2EHello, byte(protocol.FlowQRLogin), byte(len(relayB))), relayB...)
	e := func(name, rule, desc string, in []byte, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "e2e", Description: desc, Input: hx(in), Expect: expect})
	}
	e("ok-e2e-hello", "", "hello frame of a QR login carrying a 1-byte message", append(bytes.Clone(hello), 0x55), "ok")
	e("ok-e2e-abort", "", "abort frame with reason 1", frame(protocol.E2EAbort, 1), "ok")
	e("R32-e2e-unknown-kind", "R-32", "kind 9", frame(9, 1), "ErrMalformed")
	e("R32-e2e-truncated", "R-32", "session id and kind, no body", frame(protocol.E2EData), "ErrMalformed")
	e("R32-e2e-hello-without-message", "R-32", "hello frame that ends after the relay", hello, "ErrMalformed")
	e("R32-e2e-hello-unknown-flow", "R-32", "hello frame naming flow 0",
		append(append(frame(protocol.E2EHello, 0, byte(len(relayB))), relayB...), 0x55), "ErrMalformed")
	e("R32-e2e-hello-bad-relay", "R-32", "hello frame whose relay has no port",
		append(frame(protocol.E2EHello, byte(protocol.FlowQRLogin), 5), 'r', 'e', 'l', 'a', 'y', 0x55), "ErrMalformed")
	e("R32-e2e-abort-long", "R-32", "abort frame with two reason bytes", frame(protocol.E2EAbort, 1, 2), "ErrMalformed")
}

func (g *gen) ipc() {
	i := func(name, rule, desc string, in []byte, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "ipc", Description: desc, Input: hx(in), Expect: expect})
	}
	i("ok-ipc-frame", "", "one frame with a 1-byte body", []byte{0, 0, 0, 1, 0xa0}, "ok")
	i("R33-ipc-too-large", "R-33", "header declaring MaxIPCFrame+1 bytes (rejected before reading the body)",
		binary.BigEndian.AppendUint32(nil, protocol.MaxIPCFrame+1), "ErrFrameTooLarge")
	i("R33-ipc-empty", "R-33", "header declaring 0 bytes", []byte{0, 0, 0, 0}, "ErrEmptyFrame")
}

func (g *gen) enroll() {
	tok := protocol.EnrollToken{
		Tenant: tenant, MSPKey: g.mspPub, Console: g.policy.Console, ConsoleNoise: noiseKey(g.console),
		RelayPins: [][32]byte{[32]byte(detrand.Bytes("relay-spki", 32))}, Expires: Now + 86400,
	}
	copy(tok.Secret[:], detrand.Bytes("enroll-secret", 16))
	enc := func(mod func(*protocol.EnrollToken)) string {
		t := tok
		mod(&t)
		b, err := protocol.Marshal(&t)
		check(err)
		return "jk-enroll-" + base64.RawURLEncoding.EncodeToString(b)
	}
	good := enc(func(*protocol.EnrollToken) {})
	e := func(name, rule, desc, text string, at int64, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "enroll-token", Description: desc, Input: text, Context: Context{Now: at}, Expect: expect})
	}
	e("ok-enroll-token", "", "token used one hour after issue", good, Now, "ok")
	e("R34-enroll-token-expired", "R-34", "token used one second after Expires", good, tok.Expires+1, "ErrExpired")
	e("R35-enroll-token-no-pin", "R-35", "token without a relay pin", enc(func(t *protocol.EnrollToken) { t.RelayPins = nil }), Now, "ErrMalformed")
	e("R35-enroll-token-bad-prefix", "R-35", "prefix jk-enrol-", "jk-enrol-"+good[len("jk-enroll-"):], Now, "ErrMalformed")
	e("R35-enroll-token-padded", "R-35", "base64 with padding", good+"=", Now, "ErrMalformed")
	e("R35-enroll-token-truncated", "R-35", "last characters cut off", good[:len(good)-3], Now, "ErrMalformed")
	e("R35-enroll-token-zero-console-key", "R-35", "console Noise key all zero",
		enc(func(t *protocol.EnrollToken) { t.ConsoleNoise = protocol.NoiseKey{} }), Now, "ErrBadKey")
	e("R35-enroll-token-bad-console", "R-35", "console address without a mailbox",
		enc(func(t *protocol.EnrollToken) { t.Console = relayA }), Now, "ErrBadAddr")
}

func (g *gen) msgs() {
	ack, err := protocol.EncodeMsg(protocol.MsgPolicyAck, &protocol.PolicyAck{Versions: []protocol.TenantVersion{{Tenant: tenant, Version: 5}}})
	check(err)
	g.add(Vector{Name: "ok-msg-policy-ack", Kind: "msg", Description: "PolicyAck where a PolicyAck is expected", Input: hx(ack),
		Context: Context{MsgType: uint8(protocol.MsgPolicyAck), Type: "PolicyAck"}})
	g.add(Vector{Name: "R36-msg-type-mismatch", Rule: "R-36", Kind: "msg", Description: "PolicyAck where an AuditAck is expected", Input: hx(ack),
		Context: Context{MsgType: uint8(protocol.MsgAuditAck), Type: "AuditAck"}, Expect: "ErrMalformed"})
	g.add(Vector{Name: "R36-msg-empty", Rule: "R-36", Kind: "msg", Description: "a type byte without a body", Input: hx([]byte{byte(protocol.MsgApproval)}),
		Context: Context{MsgType: uint8(protocol.MsgApproval), Type: "Signed"}, Expect: "ErrMalformed"})

	// Push login (SPEC.md 11.5).
	dc, err := protocol.SignEd25519(protocol.DocDeviceCert, &g.device, g.msp)
	check(err)
	var session protocol.SessionID
	copy(session[:], detrand.Bytes("push-session", 16))
	pr, err := protocol.EncodeMsg(protocol.MsgPushRequest, &protocol.PushRequest{DeviceCert: dc, Session: session, Action: protocol.ActionLogon,
		Account: "msp-nik", Choices: []uint8{}, Time: Now, Candidates: []uint16{47, 12, 83}})
	check(err)
	g.add(Vector{Name: "ok-msg-push-request", Kind: "msg", Description: "PushRequest: logon as msp-nik, candidates 47, 12 and 83",
		Input: hx(pr), Context: Context{MsgType: uint8(protocol.MsgPushRequest), Type: "PushRequest"}})
	rep, err := protocol.EncodeMsg(protocol.MsgPushReport, &protocol.PushReport{Session: session, Time: Now})
	check(err)
	g.add(Vector{Name: "ok-msg-push-report", Kind: "msg", Description: "PushReport: the technician answers \"this was not me\"",
		Input: hx(rep), Context: Context{MsgType: uint8(protocol.MsgPushReport), Type: "PushReport"}})
	g.add(Vector{Name: "R36-msg-push-report-for-approval", Rule: "R-36", Kind: "msg", Description: "PushReport where an Approval is expected",
		Input: hx(rep), Context: Context{MsgType: uint8(protocol.MsgApproval), Type: "Signed"}, Expect: "ErrMalformed"})
}

// transfers builds paged transfers (SPEC.md 8.3) of a phone's view: the
// acme policy, four device certificates and one offline key, cut into
// three small pages by hand.
func (g *gen) transfers() {
	dev := func(i int) protocol.Signed {
		d := g.device
		d.Serial = uint64(10 + i)
		d.Name = fmt.Sprintf("PC-%d", i)
		copy(d.DeviceID[:], detrand.Bytes(fmt.Sprintf("transfer-device-%d", i), 16))
		s, err := protocol.SignEd25519(protocol.DocDeviceCert, &d, g.msp)
		check(err)
		return s
	}
	pol, err := protocol.SignEd25519(protocol.DocPolicy, &g.policy, g.msp)
	check(err)
	key := protocol.TenantSecret{Tenant: tenant, Secret: detrand.Bytes("transfer-tech-key", 32)}
	page := func(n uint32, more bool, pols []protocol.Signed, devs ...protocol.Signed) protocol.PolicyPush {
		if pols == nil {
			pols = []protocol.Signed{}
		}
		return protocol.PolicyPush{Page: n, More: more, Policies: pols, Directory: append([]protocol.Signed{}, devs...)}
	}
	p0 := page(0, true, []protocol.Signed{pol}, dev(1))
	p1 := page(1, true, nil, dev(2), dev(3))
	p2 := page(2, false, nil, dev(4))
	p2.OfflineSecrets = []protocol.TenantSecret{key}

	tc, err := protocol.SignEd25519(protocol.DocTechCert, &g.tech, g.msp)
	check(err)
	pair := protocol.PairResponse{TechCert: tc, MSPKey: g.mspPub, Org: "Acme MSP", ConsoleNoise: noiseKey(g.console)}
	pair.SetPage(&p0)
	msg := func(t protocol.MsgType, body any) string {
		b, err := protocol.EncodeMsg(t, body)
		check(err)
		return hx(b)
	}
	pushes := func(ps ...protocol.PolicyPush) []string {
		var out []string
		for i := range ps {
			out = append(out, msg(protocol.MsgPolicyPush, &ps[i]))
		}
		return out
	}
	pairMsg := msg(protocol.MsgPairResponse, &pair)
	tr := func(name, rule, desc string, first protocol.MsgType, msgs []string, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "transfer", Description: desc,
			Context: Context{MSPKey: hx(g.mspPub[:]), MsgType: uint8(first), Messages: msgs}, Expect: expect})
	}
	sync, paired := protocol.MsgPolicyPush, protocol.MsgPairResponse

	g.add(Vector{Name: "ok-msg-policy-push-paged", Kind: "msg", Description: "PolicyPush page 1 of a transfer, another page following",
		Input: pushes(p1)[0], Context: Context{MsgType: uint8(protocol.MsgPolicyPush), Type: "PolicyPush"}})
	g.add(Vector{Name: "ok-msg-page-ack", Kind: "msg", Description: "PageAck for page 1",
		Input: msg(protocol.MsgPageAck, &protocol.PageAck{Page: 1}), Context: Context{MsgType: uint8(protocol.MsgPageAck), Type: "PageAck"}})
	single := page(0, false, []protocol.Signed{pol})
	tr("ok-transfer-single-page", "", "one PolicyPush {1: [policy], 2: []} without page fields, as to an agent", sync, pushes(single), "ok")
	tr("ok-transfer-sync-paged", "", "sync or push: PolicyPush pages 0, 1, 2 (policy, four devices, offline key)", sync, pushes(p0, p1, p2), "ok")
	tr("ok-transfer-pair-paged", "", "pairing: PairResponse carrying page 0, then PolicyPush pages 1 and 2", paired,
		append([]string{pairMsg}, pushes(p1, p2)...), "ok")

	tr("R43-transfer-first-page-not-zero", "R-43", "sync whose first PolicyPush is page 1", sync, pushes(p1, p2), "ErrPageSequence")
	tr("R43-transfer-page-skipped", "R-43", "pages 0 and 2: page 1 missing", sync, pushes(p0, p2), "ErrPageSequence")
	tr("R43-transfer-page-repeated", "R-43", "pages 0, 1, 1, 2", sync, pushes(p0, p1, p1, p2), "ErrPageSequence")
	tr("R43-transfer-pages-reordered", "R-43", "pages 0, 2, 1", sync, pushes(p0, p2, p1), "ErrPageSequence")
	tr("R43-transfer-pair-then-page-zero", "R-43", "PairResponse (page 0) followed by a PolicyPush page 0", paired,
		append([]string{pairMsg}, pushes(p0, p1, p2)...), "ErrPageSequence")
	tr("R43-transfer-last-page-missing", "R-43", "pages 0 and 1, both announcing another page, then the session ends", sync,
		pushes(p0, p1), "ErrPageSequence")
	after := page(3, false, nil)
	tr("R43-transfer-page-after-last", "R-43", "pages 0, 1, 2 (the last), then page 3", sync, pushes(p0, p1, p2, after), "ErrPageSequence")
	var many []protocol.PolicyPush
	for i := range protocol.MaxPages {
		many = append(many, page(uint32(i), true, nil))
	}
	tr("R43-transfer-too-many-pages", "R-43", fmt.Sprintf("%d empty pages, the last announcing page %d", protocol.MaxPages, protocol.MaxPages),
		sync, pushes(many...), "ErrPageSequence")

	dupDev := page(1, true, nil, dev(2), dev(1))
	tr("R44-transfer-device-on-two-pages", "R-44", "the certificate of device 1 on page 0 and again on page 1", sync,
		pushes(p0, dupDev, p2), "ErrDuplicateDoc")
	newer := g.policy
	newer.Version++
	pol6, err := protocol.SignEd25519(protocol.DocPolicy, &newer, g.msp)
	check(err)
	dupPol := page(1, true, []protocol.Signed{pol6}, dev(2), dev(3))
	tr("R44-transfer-two-policies-of-one-tenant", "R-44", "acme's policy version 5 on page 0 and version 6 on page 1", sync,
		pushes(p0, dupPol, p2), "ErrDuplicateDoc")
	dupKey := p1
	dupKey.OfflineSecrets = []protocol.TenantSecret{key}
	tr("R44-transfer-two-keys-of-one-tenant", "R-44", "acme's offline key on page 1 and again on page 2", sync,
		pushes(p0, dupKey, p2), "ErrDuplicateDoc")

	d := g.device
	copy(d.DeviceID[:], detrand.Bytes("transfer-rogue-device", 16))
	rogue, err := protocol.SignEd25519(protocol.DocDeviceCert, &d, detrand.Ed25519("rogue"))
	check(err)
	tr("R08-transfer-device-wrong-key", "R-08", "page 1 carries a device certificate signed by a key other than the MSP key", sync,
		pushes(p0, page(1, true, nil, dev(2), rogue), p2), "ErrBadSignature")
}

func (g *gen) kdf() {
	secret := detrand.Bytes("kdf-secret", 32)
	for _, l := range protocol.Labels {
		var ctx []byte
		switch l.Label {
		case protocol.LabelOTPSharedTech:
			ctx = []byte(g.tech.TechID)
		case protocol.LabelOTPSharedCode:
			ctx = g.device.DeviceID[:]
		}
		out, err := protocol.Derive(secret, l.Label, ctx, l.Length)
		check(err)
		name := "kat-kdf-" + strings.ReplaceAll(strings.TrimPrefix(string(l.Label), "jitkey/v1/"), "/", "-")
		g.add(Vector{Name: name, Kind: "kdf", Description: l.Purpose, Input: hx(out),
			Context: Context{Label: string(l.Label), Secret: hx(secret), DeriveContext: hx(ctx)}})
	}
	// The TechID binding: another technician of the same tenant secret
	// gets another key.
	other, err := protocol.Derive(secret, protocol.LabelOTPSharedTech, []byte("tech-sam"), 32)
	check(err)
	g.add(Vector{Name: "kat-kdf-otp-shared-tech-key-other-tech", Kind: "kdf",
		Description: "a technician's offline key for TechID tech-sam, from the same secret as kat-kdf-otp-shared-tech-key (tech-nik): another key",
		Input:       hx(other), Context: Context{Label: string(protocol.LabelOTPSharedTech), Secret: hx(secret), DeriveContext: hx([]byte("tech-sam"))}})
}

// otp builds the shared-mode offline chain of SPEC.md 11.6 end to end:
// tenant secret -> tech key -> code key -> TOTP code at a fixed time.
func (g *gen) otp() {
	tenantSecret := detrand.Bytes("tenant-offline-secret", protocol.TenantSecretLen)
	chain := func(name, desc, techID string, dev protocol.DeviceID, at int64, digits int) {
		tk, err := protocol.SharedTechKey(tenantSecret, techID)
		check(err)
		// Independently of the helpers: Derive with the SPEC's contexts.
		if d, _ := protocol.Derive(tenantSecret, protocol.LabelOTPSharedTech, []byte(techID), 32); !bytes.Equal(d, tk) {
			panic("SharedTechKey disagrees with the SPEC")
		}
		ck, err := protocol.SharedCodeKey(tk, dev)
		check(err)
		if d, _ := protocol.Derive(tk, protocol.LabelOTPSharedCode, dev[:], 20); !bytes.Equal(d, ck) {
			panic("SharedCodeKey disagrees with the SPEC")
		}
		code, err := protocol.TOTP(ck, at, 30, digits)
		check(err)
		g.add(Vector{Name: name, Kind: "otp", Description: desc, Input: code,
			Context: Context{Secret: hx(tenantSecret), TechID: techID, DeviceID: hx(dev[:]), TechKey: hx(tk), CodeKey: hx(ck),
				Now: at, Period: 30, Digits: digits}})
	}
	chain("kat-otp-shared-chain", "shared mode: tenant secret -> tech key (tech-nik) -> code key (device) -> 6-digit TOTP at Now, period 30",
		g.tech.TechID, g.device.DeviceID, Now, 6)
	chain("kat-otp-shared-chain-other-tech", "as kat-otp-shared-chain for TechID tech-sam: other tech key, code key and code",
		"tech-sam", g.device.DeviceID, Now, 6)
	chain("kat-otp-shared-chain-8-digits", "as kat-otp-shared-chain with 8 digits, 29 s later (same time step)",
		g.tech.TechID, g.device.DeviceID, Now+29, 8)
}

// addrs builds vectors for the relay address grammar and peer addresses
// (SPEC.md section 2, R-49).
func (g *gen) addrs() {
	ra := func(name, rule, desc, text, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "relay-addr", Description: desc, Input: text, Expect: expect})
	}
	ra("ok-relay-addr-name", "", "host name and port", relayA, "ok")
	ra("ok-relay-addr-ipv6", "", "IPv6 literal in brackets", "[2001:db8::1]:4433", "ok")
	ra("ok-relay-addr-ipv6-zone", "", "bracketed host with a zone id: any printable bytes but brackets, with a colon, are accepted", "[fe80::1%eth0]:4433", "ok")
	ra("ok-relay-addr-kept-as-written", "", "upper case, a trailing dot and a port with a leading zero are valid and kept byte for byte (not canonicalised)",
		"Relay-A.Example.:04433", "ok")
	ra("ok-relay-addr-longest", "", "an address of MaxRelayAddrLen (96) bytes", strings.Repeat("r", protocol.MaxRelayAddrLen-5)+":4433", "ok")
	ra("ok-relay-addr-ipv4", "", "IPv4 address and the highest port", "192.0.2.1:65535", "ok")
	bad := func(name, desc, text string) { ra("R49-relay-addr-"+name, "R-49", desc, text, "ErrBadAddr") }
	bad("empty", "empty address", "")
	bad("too-long", "97 bytes", strings.Repeat("r", protocol.MaxRelayAddrLen-4)+":4433")
	bad("no-port", "host without a port", "relay-a.example")
	bad("empty-port", "colon without a port", "relay-a.example:")
	bad("empty-host", "port without a host", ":4433")
	bad("port-zero", "port 0", "relay-a.example:0")
	bad("port-too-large", "port 65536", "relay-a.example:65536")
	bad("port-sign", "port with a plus sign", "relay-a.example:+443")
	bad("ipv6-unbracketed", "the ambiguous unbracketed IPv6 form", "::1:4433")
	bad("ipv6-empty", "empty brackets", "[]:4433")
	bad("brackets-without-colon", "bracketed host without a colon", "[relay]:4433")
	bad("bracket-in-name", "a closing bracket in a host name", "relay]a:4433")
	bad("space", "a space in the host", "relay a:4433")
	bad("non-ascii", "a byte above 0x7e (UTF-8 of e-acute) in the host", "r\u00e9lay:4433")
	bad("control", "a tab in the host", "relay\ta:4433")

	mb := protocol.MailboxFor(identity("console-identity").Public()).String()
	pa := func(name, rule, desc, text, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "peer-addr", Description: desc, Input: text, Expect: expect})
	}
	pa("ok-peer-addr", "", "mailbox@host:port (the console's address of the vectors' policy)", mb+"@"+relayA, "ok")
	pa("R49-peer-addr-no-at", "R-49", "no '@'", mb+relayA, "ErrBadAddr")
	pa("R49-peer-addr-uppercase-mailbox", "R-49", "the mailbox in upper case", strings.ToUpper(mb)+"@"+relayA, "ErrBadAddr")
	pa("R49-peer-addr-padded-mailbox", "R-49", "the mailbox with base32 padding", mb+"====@"+relayA, "ErrBadAddr")
	pa("R49-peer-addr-short-mailbox", "R-49", "a mailbox of 51 characters", mb[:51]+"@"+relayA, "ErrBadAddr")
	// The last character carries 1 data bit and 4 zero bits: setting one
	// of those bits gives another spelling of the same 32 bytes.
	last := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", mb[51])
	alt := mb[:51] + string("abcdefghijklmnopqrstuvwxyz234567"[last|1])
	if alt == mb {
		alt = mb[:51] + string("abcdefghijklmnopqrstuvwxyz234567"[last|2])
	}
	pa("R49-peer-addr-mailbox-trailing-bits", "R-49", "the mailbox's last character with a nonzero trailing bit (another spelling of the same 32 bytes)",
		alt+"@"+relayA, "ErrBadAddr")
	pa("R49-peer-addr-bad-relay", "R-49", "a relay address without a port", mb+"@relay-a.example", "ErrBadAddr")
}

// keyTexts builds known answers for the text forms derived from public
// keys: mailbox ids and fingerprints (SPEC.md section 2).
func (g *gen) keyTexts() {
	for _, seed := range []string{"agent-identity", "phone-identity"} {
		k := identity(seed)
		g.add(Vector{Name: "kat-mailbox-" + strings.TrimSuffix(seed, "-identity"), Kind: "mailbox",
			Description: "mailbox id of the " + strings.TrimSuffix(seed, "-identity") + "'s identity key",
			Input:       hx(k[:]), Context: Context{Text: protocol.MailboxFor(k.Public()).String()}})
	}
	fp := func(kind string, key []byte, f protocol.Fingerprint) {
		g.add(Vector{Name: "kat-fingerprint-" + kind, Kind: "fingerprint",
			Description: "fingerprint of a " + kind + " key, in groups of six base32 characters",
			Input:       hx(key), Context: Context{KeyKind: kind, Text: f.String()}})
	}
	nk := noiseKey(g.agent)
	fp("noise", nk[:], nk.Fingerprint())
	ik := identity("phone-identity")
	fp("identity", ik[:], ik.Fingerprint())
	fp("approval", g.approvalPK[:], g.approvalPK.Fingerprint())
}

// ipcMsgs builds one vector per local IPC message (SPEC.md 5.7), each a
// whole frame, and the rejections of R-50.
func (g *gen) ipcMsgs() {
	frame := func(body []byte) string {
		b, err := protocol.AppendIPCFrame(nil, body)
		check(err)
		return hx(b)
	}
	msg := func(t protocol.IPCMsgType, v any) []byte {
		b, err := protocol.EncodeIPCMsg(t, v)
		check(err)
		return b
	}
	add := func(name, rule, desc string, t protocol.IPCMsgType, typ string, body []byte, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "ipc-msg", Description: desc, Input: frame(body),
			Context: Context{MsgType: uint8(t), Type: typ}, Expect: expect})
	}
	ok := func(name, desc string, t protocol.IPCMsgType, typ string, v any) {
		add(name, "", desc, t, typ, msg(t, v), "ok")
	}
	var session protocol.SessionID
	copy(session[:], detrand.Bytes("ipc-session", 16))
	qrText := "JK:" + base45(g.qrBinary(protocol.QRLogin, protocol.ActionLogon, Now, g.device.DeviceID, g.agent.Public, relayA))
	ok("ok-ipc-msg-begin", "Begin from the logon surface, action 0 (the surface's own)", protocol.IPCMsgBegin, "IPCBegin",
		&protocol.IPCBegin{Surface: "logon"})
	ok("ok-ipc-msg-begin-action", "Begin from the sudo surface naming action 4 (sudo)", protocol.IPCMsgBegin, "IPCBegin",
		&protocol.IPCBegin{Surface: "sudo", Action: protocol.ActionSudo})
	ok("ok-ipc-msg-begin-rdp-target", "Begin from an RDP client naming its target WS-02 (field 3)", protocol.IPCMsgBegin, "IPCBegin",
		&protocol.IPCBegin{Surface: "logon", Target: "WS-02"})
	ok("ok-ipc-msg-begin-longest-target", "Begin naming a target of 64 bytes, the longest", protocol.IPCMsgBegin, "IPCBegin",
		&protocol.IPCBegin{Surface: "logon", Target: strings.Repeat("t", protocol.MaxIPCTarget)})
	ok("ok-ipc-msg-qr", "QR with its text, a PNG (here only the 8-byte PNG signature) and a terminal rendering",
		protocol.IPCMsgQR, "IPCQR", &protocol.IPCQR{Text: qrText, PNG: []byte("\x89PNG\r\n\x1a\n"),
			Terminal: "\u2588\u2580\u2584 \u2588\n\u2584\u2588\u2580\u2588 \n", Expires: Now + 60})
	ok("ok-ipc-msg-qr-no-terminal", "QR whose terminal rendering was dropped to fit the frame (Terminal empty)",
		protocol.IPCMsgQR, "IPCQR", &protocol.IPCQR{Text: qrText, PNG: []byte("\x89PNG\r\n\x1a\n"), Expires: Now + 60})
	ok("ok-ipc-msg-credential", "Credential: account msp-nik, a 24-character password, the session and its deadline (8 h)",
		protocol.IPCMsgCredential, "IPCCredential", &protocol.IPCCredential{Username: "msp-nik",
			Password: []byte("Hq7-xT2m_Ke9.pRw+Zc4@Ny8"), Session: session, Deadline: Now + 8*3600})
	ok("ok-ipc-msg-denied", "Denied with code 5 (denied by the technician)", protocol.IPCMsgDenied, "IPCDenied",
		&protocol.IPCDenied{Code: protocol.CodeDenied, Reason: "denied by the technician"})
	ok("ok-ipc-msg-end", "End naming the session of the credential", protocol.IPCMsgEnd, "IPCEnd", &protocol.IPCEnd{Session: session})
	ok("ok-ipc-msg-ended", "Ended: the account is disabled again", protocol.IPCMsgEnded, "IPCEnded", &protocol.IPCEnded{OK: true})
	ok("ok-ipc-msg-status-offline", "Status: the agent cannot reach its relay and accepts a username and code",
		protocol.IPCMsgStatus, "IPCStatus", &protocol.IPCStatus{Online: false, OTP: true})
	ok("ok-ipc-msg-status-online", "Status: online, QR codes only (the policy does not allow codes while online)",
		protocol.IPCMsgStatus, "IPCStatus", &protocol.IPCStatus{Online: true, OTP: false})
	ok("ok-ipc-msg-status-second-approval", "Status: online, the technician approved and the agent waits for a second approver (field 3 true)",
		protocol.IPCMsgStatus, "IPCStatus", &protocol.IPCStatus{Online: true, SecondApproval: true})
	ok("ok-ipc-msg-status-second-approval-offline", "Status: waiting for a second approver while the relay connection is lost (Online false, field 3 true)",
		protocol.IPCMsgStatus, "IPCStatus", &protocol.IPCStatus{SecondApproval: true})
	ok("ok-ipc-msg-code", "Code: technician nik types the 6-digit code his phone shows",
		protocol.IPCMsgCode, "IPCCode", &protocol.IPCCode{Username: "nik", Code: "012345"})
	ok("ok-ipc-msg-push", "Push: the technician types an email at the login screen", protocol.IPCMsgPush, "IPCPush",
		&protocol.IPCPush{Email: "nik@msp.example"})
	ok("ok-ipc-msg-push-longest-email", "Push with an email of 254 bytes, the longest", protocol.IPCMsgPush, "IPCPush",
		&protocol.IPCPush{Email: strings.Repeat("a", 242) + "@msp.example"})
	ok("ok-ipc-msg-number", "Number: the login screen shows 47", protocol.IPCMsgNumber, "IPCNumber", &protocol.IPCNumber{Number: 47})
	ok("ok-ipc-msg-number-edges", "Number 10, the smallest", protocol.IPCMsgNumber, "IPCNumber", &protocol.IPCNumber{Number: 10})

	end := msg(protocol.IPCMsgEnd, &protocol.IPCEnd{Session: session})
	begin := msg(protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon"})
	bad := func(name, desc string, t protocol.IPCMsgType, typ string, body []byte) {
		add("R50-ipc-msg-"+name, "R-50", desc, t, typ, body, "ErrMalformed")
	}
	bad("unknown-type", "type 7 with an End body", 7, "", append([]byte{7}, end[1:]...))
	bad("no-body", "a type byte without a body", protocol.IPCMsgBegin, "IPCBegin", []byte{byte(protocol.IPCMsgBegin)})
	bad("body-of-another-type", "type Begin carrying an End body (field 1 is bytes, not text)", protocol.IPCMsgBegin, "IPCBegin",
		append([]byte{byte(protocol.IPCMsgBegin)}, end[1:]...))
	bad("unknown-field", "Begin with an extra field 4", protocol.IPCMsgBegin, "IPCBegin",
		append(append([]byte{byte(protocol.IPCMsgBegin), 0xa3}, begin[2:]...), 0x04, 0x00))
	short := append([]byte{byte(protocol.IPCMsgEnd), 0xa1, 0x01, 0x4f}, session[:15]...)
	add("R01-ipc-msg-short-session", "R-01", "End whose session id has 15 bytes: a fixed-size byte string of another size fails the re-encoding check",
		protocol.IPCMsgEnd, "IPCEnd", short, "ErrNonCanonical")
	// Status {1: true, 2: false} with field 3 written out as false,
	// which omitempty omits.
	status := msg(protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if !bytes.Equal(status, []byte{byte(protocol.IPCMsgStatus), 0xa2, 0x01, 0xf5, 0x02, 0xf4}) {
		panic("ipc status is not 07 a2 01 f5 02 f4")
	}
	add("R01-ipc-msg-status-second-approval-false", "R-01", "Status with key 3 (SecondApproval) present as false: omitempty omits it",
		protocol.IPCMsgStatus, "IPCStatus", append(append([]byte{byte(protocol.IPCMsgStatus), 0xa3}, status[2:]...), 0x03, 0xf4), "ErrNonCanonical")
	bad("trailing-byte", "Ended followed by one byte", protocol.IPCMsgEnded, "IPCEnded",
		append(msg(protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true}), 0))
	raw := func(t protocol.IPCMsgType, v any) []byte {
		b, err := protocol.Marshal(v)
		check(err)
		return append([]byte{byte(t)}, b...)
	}
	bad("push-email-too-long", "Push with an email of 255 bytes", protocol.IPCMsgPush, "IPCPush",
		raw(protocol.IPCMsgPush, &protocol.IPCPush{Email: strings.Repeat("a", 243) + "@msp.example"}))
	bad("begin-target-too-long", "Begin naming a target of 65 bytes", protocol.IPCMsgBegin, "IPCBegin",
		raw(protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon", Target: strings.Repeat("t", protocol.MaxIPCTarget+1)}))
	bad("number-too-small", "Number 9: one digit", protocol.IPCMsgNumber, "IPCNumber", raw(protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 9}))
	bad("number-too-large", "Number 100: three digits", protocol.IPCMsgNumber, "IPCNumber", raw(protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 100}))
	bad("push-number-field", "Push carrying a Number body (field 1 is a u8, not text)", protocol.IPCMsgPush, "IPCPush",
		append([]byte{byte(protocol.IPCMsgPush)}, raw(protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 47})[1:]...))
}

// audit builds an agent's audit log of four records (SPEC.md 6.5, 11.8)
// and chains that break R-42.
func (g *gen) audit() {
	key := detrand.Ed25519("agent-identity")
	pub := identity("agent-identity")
	dev := g.device.DeviceID
	recs := []protocol.AuditRecord{
		{Event: "login.approved", TechID: g.tech.TechID, Username: g.tech.Username, Account: "msp-nik",
			Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon},
		{Event: "account.enabled", TechID: g.tech.TechID, Username: g.tech.Username, Account: "msp-nik", Action: protocol.ActionLogon},
		{Event: "login.denied", TechID: g.tech.TechID, Username: g.tech.Username, Method: protocol.MethodQR, Online: true,
			Action: protocol.ActionElevate, Reason: "denied by the technician"},
		{Event: "policy.applied", Detail: "version 5"},
	}
	var chain []protocol.Signed
	var hashes [][32]byte
	sign := func(r protocol.AuditRecord, k ed25519.PrivateKey) protocol.Signed {
		s, err := protocol.SignEd25519(protocol.DocAudit, &r, k)
		check(err)
		return s
	}
	prev := [32]byte{}
	for i := range recs {
		r := &recs[i]
		r.DeviceID, r.Seq, r.Prev, r.Time = dev, uint64(i+1), prev, (Now+int64(i))*1000+int64(i)*37
		s := sign(*r, key)
		h, err := s.Hash()
		check(err)
		chain = append(chain, s)
		hashes = append(hashes, h)
		prev = h
	}
	enc := func(ss ...protocol.Signed) []string {
		var out []string
		for _, s := range ss {
			b, err := s.Encode()
			check(err)
			out = append(out, hx(b))
		}
		return out
	}
	hexes := func(hs ...[32]byte) []string {
		var out []string
		for _, h := range hs {
			out = append(out, hx(h[:]))
		}
		return out
	}
	// One record on its own, every field set, as a signed document and as
	// a bare body.
	first, err := chain[0].Encode()
	check(err)
	g.add(Vector{Name: "ok-signed-audit-record", Kind: "signed", Description: "audit record 1 (login.approved, every field set), signed by the agent's identity key",
		Input: hx(first), Context: Context{DocType: "audit", Alg: "ed25519", Key: hx(pub[:]), Type: "AuditRecord"}})
	// An end receipt (6.6) in the account.disabled record that ends a
	// session, and forgeries of it.
	rc := protocol.EndReceipt{DeviceID: dev, Account: "msp-nik", TechID: g.tech.TechID, Username: g.tech.Username,
		Started: Now - 3600, Deadline: Now, Ended: Now, Event: "session.expired", Reason: "maximum session length reached",
		Disabled: true, PasswordRotated: true, ProcessesEnded: true}
	copy(rc.Session[:], detrand.Bytes("session", 16))
	g.add(Vector{Name: "ok-signed-end-receipt", Kind: "signed", Description: "end receipt of a session that reached its cap, signed by the agent's identity key",
		Input: hx(g.signEd(protocol.DocEndReceipt, &rc, key)), Context: Context{DocType: "end-receipt", Alg: "ed25519", Key: hx(pub[:]), Type: "EndReceipt"}})
	g.add(Vector{Name: "R08-end-receipt-wrong-key", Rule: "R-08", Kind: "signed", Description: "end receipt signed by a key other than the device's identity key (forged)",
		Input: hx(g.signEd(protocol.DocEndReceipt, &rc, detrand.Ed25519("forger"))), Context: Context{DocType: "end-receipt", Alg: "ed25519", Key: hx(pub[:]), Type: "EndReceipt"},
		Expect: "ErrBadSignature"})
	g.add(Vector{Name: "R09-audit-record-as-end-receipt", Rule: "R-09", Kind: "signed", Description: "an audit record (signed by the same key) presented as an end receipt",
		Input: hx(first), Context: Context{DocType: "end-receipt", Alg: "ed25519", Key: hx(pub[:]), Type: "EndReceipt"}, Expect: "ErrBadSignature"})
	withReceipt := protocol.AuditRecord{DeviceID: dev, Seq: 5, Time: Now * 1000, Event: "account.disabled", TechID: g.tech.TechID, Username: g.tech.Username,
		Account: "msp-nik", Reason: "maximum session length reached", Justification: "printer queue stuck", Ticket: "INC-4711"}
	withReceipt.Receipt = g.signEd(protocol.DocEndReceipt, &rc, key)
	wr, err := protocol.Marshal(&withReceipt)
	check(err)
	g.add(Vector{Name: "ok-cbor-audit-record-receipt", Kind: "cbor", Description: "audit record with the fields 14..16 (justification, ticket, end receipt)",
		Input: hx(wr), Context: Context{Type: "AuditRecord"}})
	g.add(Vector{Name: "ok-cbor-audit-record", Kind: "cbor", Description: "body of audit record 4 (policy.applied): the omitempty fields 6..12 omitted",
		Input: hx(chain[3].Body), Context: Context{Type: "AuditRecord"}})

	ch := func(name, rule, desc string, afterSeq uint64, afterHash [32]byte, recs []protocol.Signed, hs []string, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "audit-chain", Description: desc,
			Context: Context{Key: hx(pub[:]), DeviceID: hx(dev[:]), AfterSeq: afterSeq, AfterHash: hx(afterHash[:]),
				Messages: enc(recs...), Hashes: hs}, Expect: expect})
	}
	ch("ok-audit-chain", "", "records 1..4 from the start of the log (after seq 0 and a zero hash)", 0, [32]byte{}, chain, hexes(hashes...), "ok")
	ch("ok-audit-chain-continued", "", "records 3 and 4 after the acknowledged record 2", 2, hashes[1], chain[2:], hexes(hashes[2:]...), "ok")
	ch("R42-audit-chain-gap", "R-42", "records 1, 2 and 4: record 3 missing", 0, [32]byte{}, []protocol.Signed{chain[0], chain[1], chain[3]}, nil, "ErrBrokenChain")
	ch("R42-audit-chain-wrong-start", "R-42", "records 3 and 4 after the acknowledged record 1", 1, hashes[0], chain[2:], nil, "ErrBrokenChain")
	ch("R42-audit-chain-after-wrong-hash", "R-42", "records 3 and 4 after record 2, with record 1's hash given as record 2's", 2, hashes[0], chain[2:], nil, "ErrBrokenChain")
	bad := recs[1]
	bad.Prev = hashes[1] // its own successor's predecessor: not record 1's hash
	ch("R42-audit-chain-broken-prev", "R-42", "record 2 correctly signed but whose Prev is not the hash of record 1", 0, [32]byte{},
		[]protocol.Signed{chain[0], sign(bad, key), chain[2]}, nil, "ErrBrokenChain")
	firstBad := recs[0]
	firstBad.Prev = hashes[3]
	ch("R42-audit-chain-first-prev-nonzero", "R-42", "record 1 whose Prev is not zero", 0, [32]byte{}, []protocol.Signed{sign(firstBad, key)}, nil, "ErrBrokenChain")
	other := recs[1]
	other.DeviceID[0] ^= 1
	ch("R42-audit-chain-wrong-device", "R-42", "record 2 naming another device, signed by this device's key", 0, [32]byte{},
		[]protocol.Signed{chain[0], sign(other, key)}, nil, "ErrBrokenChain")
	ch("R42-audit-chain-bad-signature", "R-42", "record 2 signed by another key", 0, [32]byte{},
		[]protocol.Signed{chain[0], sign(recs[1], detrand.Ed25519("rogue"))}, nil, "ErrBadSignature")
	relabel := chain[1]
	relabel.Type = protocol.DocPolicy
	ch("R42-audit-chain-not-audit", "R-42", "record 2 whose envelope says DocPolicy", 0, [32]byte{},
		[]protocol.Signed{chain[0], relabel}, nil, "ErrBadSignature")
}

// relay builds relay frames (SPEC.md 12.2), push ticket plaintexts
// (12.6), the Hello signing input (12.3) and a relay pin (12.1).
func (g *gen) relay() {
	enc := func(f protocol.RelayFrame) []byte {
		b, err := protocol.EncodeRelayFrame(f)
		check(err)
		return b
	}
	rf := func(name, rule, desc string, in []byte, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "relay-frame", Description: desc, Input: hx(in), Expect: expect})
	}
	frame := func(t byte, body []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{t}, uint32(len(body))), body...)
	}
	ident := identity("phone-identity")
	mbox := protocol.MailboxFor(ident.Public())
	to := protocol.MailboxFor(identity("agent-identity").Public())
	var sig [64]byte
	copy(sig[:], detrand.Bytes("relay-hello-sig", 64))
	pushKey := detrand.Bytes("relay-push-key", 32)
	ticket := detrand.Bytes("relay-sealed-ticket", 96)
	payload := detrand.Bytes("relay-payload", 300)
	ping := [8]byte(detrand.Bytes("relay-ping", 8))

	hello := enc(&protocol.RelayHello{Identity: ident, Signature: sig})
	welcome := enc(&protocol.RelayWelcome{Mailbox: mbox, MaxPayload: protocol.MaxRelayPayload, PushKey: pushKey})
	send := enc(&protocol.RelaySend{Seq: 7, To: to, Ticket: ticket, Payload: payload})
	rf("ok-relay-frame-hello", "", "Hello: version 1, identity key, signature (97-byte body)", hello, "ok")
	rf("ok-relay-frame-welcome", "", "Welcome: version 1, mailbox, max payload 65536, a 32-byte push key", welcome, "ok")
	rf("ok-relay-frame-welcome-no-push", "", "Welcome without a push key (k = 0)",
		enc(&protocol.RelayWelcome{Mailbox: mbox, MaxPayload: 4096}), "ok")
	rf("ok-relay-frame-send", "", "Send seq 7 with a 96-byte sealed ticket and a 300-byte payload", send, "ok")
	rf("ok-relay-frame-send-empty", "", "Send without ticket and with an empty payload (38-byte body)",
		enc(&protocol.RelaySend{Seq: 8, To: to}), "ok")
	rf("ok-relay-frame-send-max-payload", "", "Send without ticket and with a payload of MaxRelayPayload (65536) bytes",
		enc(&protocol.RelaySend{Seq: 9, To: to, Payload: bytes.Repeat([]byte{0x5a}, protocol.MaxRelayPayload)}), "ok")
	rf("ok-relay-frame-ack", "", "Ack seq 7", enc(&protocol.RelayAck{Seq: 7}), "ok")
	rf("ok-relay-frame-nack", "", "Nack seq 7, reason 7 (push-failed, the highest)", enc(&protocol.RelayNack{Seq: 7, Reason: protocol.NackPushFailed}), "ok")
	rf("ok-relay-frame-deliver", "", "Deliver from a mailbox with a 300-byte payload", enc(&protocol.RelayDeliver{From: mbox, Payload: payload}), "ok")
	rf("ok-relay-frame-deliver-empty", "", "Deliver with an empty payload (32-byte body)", enc(&protocol.RelayDeliver{From: mbox}), "ok")
	rf("ok-relay-frame-goaway", "", "GoAway reason 1 (shutdown), retry after 1000 ms",
		enc(&protocol.RelayGoAway{Reason: protocol.GoAwayShutdown, RetryAfterMs: 1000}), "ok")
	rf("ok-relay-frame-replaced", "", "Replaced (empty body)", enc(&protocol.RelayReplaced{}), "ok")
	rf("ok-relay-frame-ping", "", "Ping with 8 bytes", enc(&protocol.RelayPing{Data: ping}), "ok")
	rf("ok-relay-frame-pong", "", "Pong echoing them", enc(&protocol.RelayPong{Data: ping}), "ok")

	rl := func(rule, name, desc string, in []byte, expect string) {
		rf(strings.ReplaceAll(rule, "-", "")+"-relay-frame-"+name, rule, desc, in, expect)
	}
	malformed, tooLarge := "ErrRelayFrame", "ErrFrameTooLarge"
	rl("RL-7", "unknown-type", "type 0x0b", frame(0x0b, []byte{0, 0, 0, 1}), malformed)
	rl("RL-7", "type-zero", "type 0x00 with an empty body", frame(0x00, nil), malformed)
	rl("RL-6", "hello-version-2", "Hello with version 2", append([]byte{0x01, 0, 0, 0, 97, 2}, hello[6:]...), malformed)
	rl("RL-6", "hello-short", "Hello with a 96-byte body", frame(0x01, hello[5:101]), malformed)
	rl("RL-9", "header-only", "4 bytes: a truncated header", hello[:4], malformed)
	rl("RL-9", "trailing-byte", "Hello followed by one byte", append(bytes.Clone(hello), 0), malformed)
	rl("RL-9", "body-truncated", "Send whose header announces one byte more than follows", func() []byte {
		b := bytes.Clone(send)
		binary.BigEndian.PutUint32(b[1:], uint32(len(send)-5+1))
		return b
	}(), malformed)
	rl("RL-9", "welcome-version-2", "Welcome with version 2", func() []byte { b := bytes.Clone(welcome); b[5] = 2; return b }(), malformed)
	rl("RL-9", "welcome-max-payload", "Welcome announcing a max payload of 65537", func() []byte {
		b := bytes.Clone(welcome)
		binary.BigEndian.PutUint32(b[5+33:], protocol.MaxRelayPayload+1)
		return b
	}(), malformed)
	rl("RL-9", "welcome-push-key-overrun", "Welcome whose push key length (33) overruns the body", func() []byte {
		b := bytes.Clone(welcome)
		binary.BigEndian.PutUint16(b[5+37:], 33)
		return b
	}(), malformed)
	rl("RL-9", "welcome-push-key-short", "Welcome whose push key length (31) leaves a byte over", func() []byte {
		b := bytes.Clone(welcome)
		binary.BigEndian.PutUint16(b[5+37:], 31)
		return b
	}(), malformed)
	rl("RL-9", "send-short", "Send with a 37-byte body", frame(0x03, send[5:42]), malformed)
	rl("RL-9", "send-ticket-overrun", "Send whose ticket length (97) overruns a body with 96 ticket bytes and no payload",
		func() []byte {
			b := frame(0x03, send[5:5+38+96])
			binary.BigEndian.PutUint16(b[5+36:], 97)
			return b
		}(), malformed)
	rl("RL-9", "send-ticket-too-long", "Send with a ticket of 1025 bytes", frame(0x03, append(append(append(
		binary.BigEndian.AppendUint32(nil, 1), to[:]...), 0x04, 0x01), make([]byte, 1025)...)), malformed)
	rl("RL-9", "ack-long", "Ack with a 5-byte body (over the type's maximum: too large)", frame(0x04, []byte{0, 0, 0, 7, 0}), tooLarge)
	rl("RL-9", "nack-reason-zero", "Nack with reason 0", frame(0x05, []byte{0, 0, 0, 7, 0}), malformed)
	rl("RL-9", "nack-reason-8", "Nack with reason 8", frame(0x05, []byte{0, 0, 0, 7, 8}), malformed)
	rl("RL-9", "deliver-short", "Deliver with a 31-byte body", frame(0x06, mbox[:31]), malformed)
	rl("RL-9", "goaway-reason-2", "GoAway with reason 2", frame(0x07, []byte{2, 0, 0, 3, 0xe8}), malformed)
	rl("RL-9", "replaced-body", "Replaced with a 1-byte body (over the type's maximum: too large)", frame(0x08, []byte{0}), tooLarge)
	rl("RL-9", "ping-long", "Ping with 9 bytes (over the maximum: too large)", frame(0x09, make([]byte, 9)), tooLarge)
	rl("RL-9", "pong-short", "Pong with 7 bytes", frame(0x0a, make([]byte, 7)), malformed)
	over := frame(0x03, append(append(binary.BigEndian.AppendUint32(nil, 10), to[:]...), 0, 0))
	over = append(over, bytes.Repeat([]byte{0x5a}, protocol.MaxRelayPayload+1)...)
	binary.BigEndian.PutUint32(over[1:], uint32(len(over)-5))
	rl("RL-10", "send-payload-too-large", "Send without ticket and a payload of 65537 bytes: the body (65575) is within the Send bound, "+
		"the payload is not; a relay answers Nack too-large and keeps the connection", over, tooLarge)
	rl("RL-10", "send-over-protocol-bound", "a Send header declaring a body of 66599 bytes (one over the bound), body absent: "+
		"rejected from the header alone", []byte{0x03, 0, 1, 0x04, 0x27}, tooLarge)

	// Push ticket plaintexts (before HPKE sealing).
	tk := func(name, rule, desc string, in []byte, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "relay-ticket", Description: desc, Input: hx(in), Expect: expect})
	}
	tok := []byte("fcm-token-0123456789")
	good, err := protocol.AppendRelayPushTicket(nil, &protocol.RelayPushTicket{Mailbox: mbox, Expiry: Now + 86400, Token: tok})
	check(err)
	tk("ok-relay-ticket", "", "ticket for the phone's mailbox, expiring a day after Now, a 20-byte token", good, "ok")
	longTok, err := protocol.AppendRelayPushTicket(nil, &protocol.RelayPushTicket{Mailbox: mbox, Expiry: Now, Token: bytes.Repeat([]byte{'t'}, protocol.MaxRelayPushToken)})
	check(err)
	tk("ok-relay-ticket-longest-token", "", "a token of 512 bytes", longTok, "ok")
	tk("RL20-relay-ticket-trailing-byte", "RL-20", "one byte after the token", append(bytes.Clone(good), 0), malformed)
	tk("RL20-relay-ticket-version-2", "RL-20", "version 2", func() []byte { b := bytes.Clone(good); b[0] = 2; return b }(), malformed)
	tk("RL20-relay-ticket-empty-token", "RL-20", "token length 0", append(bytes.Clone(good[:41]), 0, 0), malformed)
	tk("RL20-relay-ticket-token-too-long", "RL-20", "a token of 513 bytes",
		append(append(bytes.Clone(good[:41]), 0x02, 0x01), bytes.Repeat([]byte{'t'}, 513)...), malformed)

	// Hello's signing input over a given TLS exporter output, and a pin.
	key := detrand.Ed25519("phone-identity")
	exporter := detrand.Bytes("tls-exporter", 32)
	msg := protocol.RelayAuthMessage(exporter)
	g.add(Vector{Name: "kat-relay-auth", Kind: "relay-auth",
		Description: "the Hello signature of the phone's identity key over \"jitkey/v1/relay-auth\" || 0x00 || exporter",
		Input:       hx(ed25519.Sign(key, msg)), Context: Context{Secret: hx(exporter), Key: hx(ident[:]), Output: hx(msg)}})
	spki, err := x509.MarshalPKIXPublicKey(detrand.Ed25519("relay-tls").Public())
	check(err)
	pin := protocol.RelayPin(spki)
	g.add(Vector{Name: "kat-relay-pin", Kind: "relay-pin", Description: "pin (SHA-256) of the DER SubjectPublicKeyInfo of a relay's Ed25519 key",
		Input: hx(spki), Context: Context{Output: hx(pin[:])}})
}

// loginChain links the pieces of a QR login (SPEC.md 11.3) in one vector:
// the QR's secret gives the PSK and the session id, the e2e hello names the
// session and carries message 1 of a handshake keyed with that PSK, and
// the approval is bound to the session, the QR's device and action and the
// handshake hash.
func (g *gen) loginChain() {
	secret := detrand.Bytes("qr-secret", 16)
	bin := g.qrBinary(protocol.QRLogin, protocol.ActionLogon, Now, g.device.DeviceID, g.agent.Public, relayA)
	if !bytes.Equal(bin[87:103], secret) {
		panic("QR secret is not the chain's secret")
	}
	qrText := "JK:" + base45(bin)
	psk, err := protocol.Derive(secret, protocol.LabelQRPSK, nil, 32)
	check(err)
	sid, err := protocol.DeriveSessionID(secret, protocol.LabelQRSession)
	check(err)
	ini := g.party(protocol.FlowQRLogin, g.phone, g.agent.Public, psk, "chain-ini-ephemeral")
	resp := g.party(protocol.FlowQRLogin, g.agent, nil, bytes.Clone(psk), "chain-resp-ephemeral")
	r := runHandshake(ini.cfg, resp.cfg, noTamper)
	check(r.ierr)
	check(r.rerr)
	h := r.is.HandshakeHash()
	ini.side.PSK, resp.side.PSK = "", "" // derived by the checker
	hs := &Handshake{Initiator: ini.side, Responder: resp.side, Msg1: hx(r.msg1), Msg2: hx(r.msg2), Hash: hx(h)}
	hello, err := protocol.AppendE2EFrame(nil, protocol.E2EFrame{Session: sid, Kind: protocol.E2EHello, Flow: protocol.FlowQRLogin,
		Relay: relayB, Body: r.msg1})
	check(err)
	chain := func(name, rule, desc string, mod func(*protocol.Approval), expect string) {
		a := g.approvalFor(func(a *protocol.Approval) {
			a.Session, a.HandshakeHash, a.DeviceID, a.Action = sid, bytes.Clone(h), g.device.DeviceID, protocol.ActionLogon
			a.Nonce = [16]byte(detrand.Bytes("chain-nonce", 16))
			mod(a)
		})
		g.add(Vector{Name: name, Rule: rule, Kind: "login-chain", Description: desc, Input: hx(g.signP256(&a, g.approval)),
			Context: Context{QR: qrText, Now: Now + 5, Handshake: hs, Messages: []string{hx(hello)}, Key: hx(g.approvalPK[:]),
				ApprovalExpect: &ApprovalExpect{Serial: g.tech.Serial}}, Expect: expect})
	}
	chain("ok-login-chain", "", "QR -> PSK and session id -> e2e hello -> IKpsk1 handshake -> h -> approval bound to all of them",
		func(*protocol.Approval) {}, "ok")
	other, err := protocol.DeriveSessionID(detrand.Bytes("other-qr-secret", 16), protocol.LabelQRSession)
	check(err)
	chain("R18-login-chain-session-of-another-code", "R-18", "the approval names the session id of another QR code",
		func(a *protocol.Approval) { a.Session = other }, "ErrApprovalMismatch")
	pairSID, err := protocol.DeriveSessionID(secret, protocol.LabelPairSession)
	check(err)
	chain("R18-login-chain-session-wrong-label", "R-18", "the approval's session id derived from the QR secret with the pair/session-id label",
		func(a *protocol.Approval) { a.Session = pairSID }, "ErrApprovalMismatch")
}

// proofs builds enrollment and pairing requests with their possession
// proofs over ProofInput(kind, h) (SPEC.md 8.2, R-40).
func (g *gen) proofs() {
	h := detrand.Bytes("proof-handshake-hash", 32)
	other := detrand.Bytes("proof-other-handshake-hash", 32)
	edSig := func(seed, kind string, hash []byte) []byte {
		return ed25519.Sign(detrand.Ed25519(seed), protocol.ProofInput(kind, hash))
	}
	p256Sig := func(kind string, hash []byte) []byte {
		d := sha256.Sum256(protocol.ProofInput(kind, hash))
		der, err := g.approval.Sign(nil, d[:], crypto.SHA256)
		check(err)
		sig, err := protocol.ApprovalSigFromASN1(der)
		check(err)
		return sig
	}
	msg := func(t protocol.MsgType, body any) string {
		b, err := protocol.EncodeMsg(t, body)
		check(err)
		return hx(b)
	}
	pair := func(idSig, apSig []byte) string {
		return msg(protocol.MsgPairRequest, &protocol.PairRequest{IdentityKey: identity("phone-identity"), ApprovalKey: g.approvalPK,
			Relay: relayB, IdentitySig: idSig, ApprovalSig: apSig, Label: "Pixel 9"})
	}
	enroll := func(idSig []byte) string {
		return msg(protocol.MsgEnrollRequest, &protocol.EnrollRequest{Name: g.device.Name, OS: g.device.OS,
			IdentityKey: identity("agent-identity"), Relay: relayA, IdentitySig: idSig})
	}
	pv := func(name, rule, desc string, t protocol.MsgType, in string, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "proof", Description: desc, Input: in,
			Context: Context{MsgType: uint8(t), HandshakeHash: hx(h)}, Expect: expect})
	}
	pv("ok-proof-pair-request", "", "PairRequest whose identity and approval proofs sign ProofInput over the session's h",
		protocol.MsgPairRequest, pair(edSig("phone-identity", "identity", h), p256Sig("approval", h)), "ok")
	pv("ok-proof-enroll-request", "", "EnrollRequest whose identity proof signs ProofInput(identity, h)",
		protocol.MsgEnrollRequest, enroll(edSig("agent-identity", "identity", h)), "ok")
	pv("R40-proof-pair-identity-other-session", "R-40", "the identity proof signs the h of another session",
		protocol.MsgPairRequest, pair(edSig("phone-identity", "identity", other), p256Sig("approval", h)), "ErrBadSignature")
	pv("R40-proof-pair-approval-other-session", "R-40", "the approval proof signs the h of another session",
		protocol.MsgPairRequest, pair(edSig("phone-identity", "identity", h), p256Sig("approval", other)), "ErrBadSignature")
	pv("R40-proof-pair-approval-wrong-kind", "R-40", "the approval key signs ProofInput(identity, h) instead of ProofInput(approval, h)",
		protocol.MsgPairRequest, pair(edSig("phone-identity", "identity", h), p256Sig("identity", h)), "ErrBadSignature")
	pv("R40-proof-enroll-wrong-key", "R-40", "the identity proof is made by another key than the one to be certified",
		protocol.MsgEnrollRequest, enroll(edSig("rogue", "identity", h)), "ErrBadSignature")
}

// consoleLogin builds the vectors of the web console sign-in (SPEC.md
// 11.12): its QR, handshake, request and approval.
func (g *gen) consoleLogin() {
	q := func(name, rule, desc string, b []byte, at int64, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "qr", Description: desc, Input: "JK:" + base45(b), Context: Context{Now: at}, Expect: expect})
	}
	qr := g.qrBinary(protocol.QRLogin, protocol.ActionConsole, Now, protocol.DeviceID{}, g.console.Public, relayA)
	p, err := protocol.ParseQR("JK:" + base45(qr))
	check(err)
	var secret [protocol.QRSecretLen]byte
	copy(secret[:], detrand.Bytes("qr-secret", 16))
	want := protocol.ConsoleQR(p.Static, p.Mailbox, relayA, secret, time.Unix(Now, 0))
	if enc, _ := want.Encode(); enc != "JK:"+base45(qr) {
		panic("ConsoleQR disagrees with the SPEC layout")
	}
	q("ok-qr-console", "", "web console sign-in QR: a login QR with action 5 (console) and a zero device id, 80 s old", qr, Now+80, "ok")
	q("R21-qr-console-with-device", "R-21", "console sign-in QR carrying a device id",
		func() []byte { b := bytes.Clone(qr); b[7] = 1; return b }(), Now, "ErrMalformed")
	q("R21-qr-action-6", "R-21", "login QR with action 6 (unknown)",
		func() []byte { b := bytes.Clone(qr); b[2] = 6; return b }(), Now, "ErrMalformed")
	q("R21-qr-pair-console-action", "R-21", "pairing QR (kind 2) with action 5",
		func() []byte { b := bytes.Clone(qr); b[1] = protocol.QRPair; return b }(), Now, "ErrMalformed")
	q("R20-qr-console-stale", "R-20", "console sign-in QR scanned 91 s after its time", qr, Now+91, "ErrQRStale")

	// The handshake: its own flow name in the prologue.
	hs := func(name, rule, desc string, iniFlow protocol.Flow, expect string) {
		ini, resp := g.hsPair(protocol.FlowConsoleLogin)
		ini.side.Flow, ini.cfg.Flow = iniFlow.Name(), iniFlow
		r := runHandshake(ini.cfg, resp.cfg, noTamper)
		err := r.rerr
		if err == nil {
			err = r.ierr
		}
		h := &Handshake{Initiator: ini.side, Responder: resp.side}
		switch {
		case expect == "ok" && err != nil:
			panic(fmt.Sprintf("%s: %v", name, err))
		case expect == "ok":
			h.Msg1, h.Msg2, h.Hash = hx(r.msg1), hx(r.msg2), hx(r.is.HandshakeHash())
		case !errors.Is(err, protocol.ErrHandshake):
			panic(fmt.Sprintf("%s: got %v", name, err))
		}
		g.add(Vector{Name: name, Rule: rule, Kind: "handshake", Description: desc, Context: Context{Handshake: h}, Expect: expect})
	}
	hs("ok-handshake-ikpsk1-console-login", "", "Noise_IKpsk1 web console sign-in, phone -> console", protocol.FlowConsoleLogin, "ok")
	hs("R26-handshake-qr-login-to-console", "R-26", "initiator runs the qr-login flow against a console-login responder (same keys, same PSK)",
		protocol.FlowQRLogin, "ErrHandshake")

	// The request the phone shows.
	var session protocol.SessionID
	copy(session[:], detrand.Bytes("session", 16))
	base := protocol.ConsoleRequest{Session: session, Action: protocol.ActionConsole, Org: "Example MSP",
		Origin: "https://console.example:8443", Client: "127.0.0.1 Chrome/156 Linux", Time: Now}
	cr := func(name, rule, desc string, mod func(*protocol.ConsoleRequest), at int64, expect string) {
		r := base
		mod(&r)
		b, err := protocol.EncodeMsg(protocol.MsgConsoleRequest, &r)
		check(err)
		g.add(Vector{Name: name, Rule: rule, Kind: "sign-in", Description: desc, Input: hx(b),
			Context: Context{Session: hx(session[:]), Now: at}, Expect: expect})
	}
	same := func(*protocol.ConsoleRequest) {}
	cr("ok-console-request", "", "a console sign-in request for this session, 60 s old", same, Now+60, "ok")
	cr("R60-console-request-wrong-session", "R-60", "request naming another session",
		func(r *protocol.ConsoleRequest) { r.Session[0] ^= 1 }, Now, "ErrApprovalMismatch")
	cr("R60-console-request-login-action", "R-60", "request with action 1 (logon) in the console flow",
		func(r *protocol.ConsoleRequest) { r.Action = protocol.ActionLogon }, Now, "ErrApprovalMismatch")
	cr("R60-console-request-stale", "R-60", "request time MaxApprovalSkew+1 s in the past", same, Now+121, "ErrStale")
	cr("R60-console-request-control-origin", "R-60", "origin with a carriage return (could redraw the approval screen)",
		func(r *protocol.ConsoleRequest) { r.Origin = "https://console.example\rhttps://ok.example" }, Now, "ErrMalformed")
	cr("R60-console-request-long-client", "R-60", "client text of MaxConsoleText+1 bytes",
		func(r *protocol.ConsoleRequest) { r.Client = strings.Repeat("c", protocol.MaxConsoleText+1) }, Now, "ErrMalformed")
	cr("R60-console-request-no-origin", "R-60", "empty origin", func(r *protocol.ConsoleRequest) { r.Origin = "" }, Now, "ErrMalformed")

	// The approval that answers it.
	exp := &ApprovalExpect{Serial: g.tech.Serial, DeviceID: hx(make([]byte, 16)), Session: hx(session[:]),
		HandshakeHash: hx(detrand.Bytes("handshake-hash", 32)), Action: protocol.ActionConsole}
	ap := func(name, rule, desc string, mod func(*protocol.Approval), expect string) {
		a := g.approvalFor(func(a *protocol.Approval) { a.DeviceID = protocol.DeviceID{}; a.Action = protocol.ActionConsole })
		mod(&a)
		g.add(Vector{Name: name, Rule: rule, Kind: "approval", Description: desc, Input: hx(g.signP256(&a, g.approval)),
			Context: Context{Key: hx(g.approvalPK[:]), Now: Now, ApprovalExpect: exp}, Expect: expect})
	}
	ap("ok-approval-console", "", "console sign-in approval: action 5, zero device id", func(*protocol.Approval) {}, "ok")
	ap("R18-approval-login-for-console", "R-18", "a logon approval (action 1) offered to a console sign-in",
		func(a *protocol.Approval) { a.Action = protocol.ActionLogon }, "ErrApprovalMismatch")
	ap("R18-approval-console-with-device", "R-18", "console approval naming a device",
		func(a *protocol.Approval) { a.DeviceID = g.device.DeviceID }, "ErrApprovalMismatch")
}
