package vectors

import (
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// coApprovals: second approvals (SPEC.md 11.14, R-63, R-64). The
// technician is g.tech (nik); the second approver "ana" has her own
// phone and approval key, unless a vector changes that.
func (g *gen) coApprovals() {
	anaSigner := detrand.P256("ana-approval")
	anaPK, err := protocol.ApprovalKeyOf(&anaSigner.Key.PublicKey)
	check(err)
	ana := protocol.TechCert{
		Serial: 43, TechID: "tech-ana", Username: "ana", Email: "ana@msp.example",
		Grants:   []protocol.Grant{{Tenant: tenant, Role: protocol.RoleAdmin}},
		NoiseKey: noiseKey(keypair("ana-noise")), IdentityKey: identity("ana-identity"), ApprovalKey: anaPK,
		Relay: relayB, NotBefore: Now - 86400, NotAfter: Now + 365*86400,
	}
	first := g.approvalFor(func(a *protocol.Approval) { a.Reason, a.Ticket = "printer queue stuck", "OPS-1234" })
	firstSigned, err := protocol.SignP256(protocol.DocApproval, &first, g.approval, nil)
	check(err)
	firstHash, err := firstSigned.Hash()
	check(err)
	session := detrand.Bytes("co-session", 16)
	hh := detrand.Bytes("co-handshake-hash", 32)
	base := func() protocol.CoApproval {
		c := protocol.CoApproval{Serial: ana.Serial, DeviceID: g.device.DeviceID, HandshakeHash: hh, First: firstHash,
			Action: protocol.ActionLogon, Account: "msp-nik", TechID: g.tech.TechID, Decision: protocol.DecisionApprove, Time: Now}
		copy(c.Session[:], session)
		copy(c.Nonce[:], detrand.Bytes("co-nonce", 16))
		return c
	}
	type setup struct {
		ana    protocol.TechCert
		signer *detrand.Signer
		pol    protocol.Policy
		co     protocol.CoApproval
	}
	co := func(name, rule, desc string, mod func(s *setup), expect string) {
		s := setup{ana: ana, signer: anaSigner, pol: g.policy, co: base()}
		s.ana.Grants = append([]protocol.Grant(nil), ana.Grants...)
		s.pol.SecondApprovers = []string{protocol.ShareAllAdmins}
		mod(&s)
		sig, err := protocol.SignP256(protocol.DocCoApproval, &s.co, s.signer, nil)
		check(err)
		in, err := sig.Encode()
		check(err)
		g.add(Vector{Name: name, Rule: rule, Kind: "co-approval", Description: desc, Input: hx(in),
			Context: Context{MSPKey: hx(g.mspPub[:]), Now: Now,
				TechCert:   hx(g.signEd(protocol.DocTechCert, &s.ana, g.msp)),
				FirstCert:  hx(g.signEd(protocol.DocTechCert, &g.tech, g.msp)),
				DeviceCert: hx(g.signEd(protocol.DocDeviceCert, &g.device, g.msp)),
				Policy:     hx(g.signEd(protocol.DocPolicy, &s.pol, g.msp)),
				CoApprovalExpect: &CoApprovalExpect{Session: hx(session), HandshakeHash: hx(hh), First: hx(firstHash[:]),
					Action: protocol.ActionLogon, Account: "msp-nik"}},
			Expect: expect})
	}
	same := func(*setup) {}
	co("ok-co-approval", "", "a tenant admin's second approval where the policy names all-admins", same, "ok")
	co("ok-co-approval-deny", "", "a matching deny (the agent then refuses the login)",
		func(s *setup) { s.co.Decision = protocol.DecisionDeny }, "ok")
	co("ok-co-approval-device-list", "", "the device's own list names the approver by username; the tenant list names nobody",
		func(s *setup) {
			s.pol.SecondApprovers = nil
			s.pol.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: g.device.DeviceID, Entries: []string{"ana", "bob"}}}
		}, "ok")
	co("ok-co-approval-read-only-all-users", "", "a read-only technician where the list is all-users",
		func(s *setup) {
			s.ana.Grants[0].Role = protocol.RoleReadOnly
			s.pol.SecondApprovers = []string{protocol.ShareAllUsers}
		}, "ok")
	co("R63-co-approval-other-first", "R-63", "a co-approval of another approval of the technician (another First hash)",
		func(s *setup) { s.co.First[0] ^= 1 }, "ErrApprovalMismatch")
	co("R63-co-approval-other-device", "R-63", "a co-approval for another device",
		func(s *setup) { s.co.DeviceID[0] ^= 1 }, "ErrApprovalMismatch")
	co("R63-co-approval-other-account", "R-63", "a co-approval for another account",
		func(s *setup) { s.co.Account = "msp-bob" }, "ErrApprovalMismatch")
	co("R63-co-approval-other-action", "R-63", "a co-approval for sudo where logon was asked",
		func(s *setup) { s.co.Action = protocol.ActionSudo }, "ErrApprovalMismatch")
	co("R63-co-approval-other-technician", "R-63", "a co-approval naming another technician",
		func(s *setup) { s.co.TechID = "tech-bob" }, "ErrApprovalMismatch")
	co("R63-co-approval-other-session", "R-63", "a co-approval made in another session (relayed)",
		func(s *setup) { s.co.Session[0] ^= 1 }, "ErrApprovalMismatch")
	co("R63-co-approval-other-handshake", "R-63", "a co-approval bound to another Noise handshake",
		func(s *setup) { s.co.HandshakeHash = detrand.Bytes("other-co-handshake", 32) }, "ErrApprovalMismatch")
	co("R63-co-approval-bad-decision", "R-63", "decision value 3", func(s *setup) { s.co.Decision = 3 }, "ErrApprovalMismatch")
	co("R63-co-approval-wrong-serial", "R-63", "a co-approval naming another certificate serial",
		func(s *setup) { s.co.Serial = 44 }, "ErrApprovalMismatch")
	co("R63-co-approval-stale", "R-63", "time MaxApprovalSkew+1 s in the past",
		func(s *setup) { s.co.Time = Now - int64(protocol.MaxApprovalSkew.Seconds()) - 1 }, "ErrStale")
	co("R63-co-approval-signed-by-technician", "R-63", "signed with the technician's approval key, not the approver's",
		func(s *setup) { s.signer = g.approval }, "ErrBadSignature")
	co("R64-co-approval-same-technician", "R-64", "the technician's own second approval (same technician id, another certificate and key)",
		func(s *setup) { s.ana.TechID = g.tech.TechID }, "ErrSelfApproval")
	co("R64-co-approval-same-key", "R-64", "another certificate for the technician's approval key (same person, another name)",
		func(s *setup) { s.ana.ApprovalKey = g.approvalPK; s.signer = g.approval }, "ErrSelfApproval")
	co("R64-co-approval-not-named", "R-64", "the device's list names bob only",
		func(s *setup) {
			s.pol.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: g.device.DeviceID, Entries: []string{"bob"}}}
		}, "ErrNotCoApprover")
	co("R64-co-approval-not-required", "R-64", "the device is exempt (empty list): no second approval is taken",
		func(s *setup) {
			s.pol.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: g.device.DeviceID, Entries: []string{}}}
		}, "ErrNotCoApprover")
	co("R64-co-approval-read-only-all-admins", "R-64", "a read-only technician where the list is all-admins",
		func(s *setup) { s.ana.Grants[0].Role = protocol.RoleReadOnly }, "ErrNotCoApprover")
	co("R64-co-approval-revoked", "R-64", "the approver's certificate is revoked by the policy",
		func(s *setup) { s.pol.Revoked = []uint64{3, 9, 43} }, "ErrRevoked")
	co("R64-co-approval-not-delegated", "R-64", "the approver holds no grant in the tenant",
		func(s *setup) { s.ana.Grants[0].Tenant = "other" }, "ErrNotDelegated")
	co("R64-co-approval-approver-expired", "R-64", "the approver's certificate expired",
		func(s *setup) { s.ana.NotAfter = Now - 1 }, "ErrExpired")

	chk := func(name, desc string, mod func(*protocol.Policy), expect string) {
		p := g.policy
		mod(&p)
		rule := ""
		if expect != "ok" {
			rule = "R-17"
		}
		g.add(Vector{Name: name, Rule: rule, Kind: "policy-check", Description: desc,
			Input: hx(g.signEd(protocol.DocPolicy, &p, g.msp)), Context: Context{MSPKey: hx(g.mspPub[:])}, Expect: expect})
	}
	chk("ok-policy-check-second-approvers", "a tenant list [all-admins, ana] and a device exempt by an empty list",
		func(p *protocol.Policy) {
			p.SecondApprovers = []string{protocol.ShareAllAdmins, "ana"}
			p.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: protocol.DeviceID{1}, Entries: []string{}}}
		}, "ok")
	chk("R17-policy-second-approvers-unsorted", "second approvers [nik, ana]",
		func(p *protocol.Policy) { p.SecondApprovers = []string{"nik", "ana"} }, "ErrInvalidDoc")
	chk("R17-policy-second-approvers-syntax", "a second approver in upper case",
		func(p *protocol.Policy) { p.SecondApprovers = []string{"Ana"} }, "ErrInvalidDoc")
	chk("R17-policy-second-approvers-too-many", "65 second approvers",
		func(p *protocol.Policy) {
			for i := range protocol.MaxSecondApproverEntries + 1 {
				p.SecondApprovers = append(p.SecondApprovers, "u"+string(rune('a'+i/26))+string(rune('a'+i%26)))
			}
		}, "ErrInvalidDoc")
	chk("R17-policy-second-approver-devices-unsorted", "device lists not sorted by device id",
		func(p *protocol.Policy) {
			p.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: protocol.DeviceID{2}}, {DeviceID: protocol.DeviceID{1}}}
		}, "ErrInvalidDoc")
	chk("R17-policy-second-approver-devices-duplicate-entry", "a device list [ana, ana]",
		func(p *protocol.Policy) {
			p.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: protocol.DeviceID{1}, Entries: []string{"ana", "ana"}}}
		}, "ErrInvalidDoc")
}

// coApprovalMsgs: the CoApprovalRequest message (SPEC.md 8.2, 11.14).
func (g *gen) coApprovalMsgs() {
	dc, err := protocol.SignEd25519(protocol.DocDeviceCert, &g.device, g.msp)
	check(err)
	tc, err := protocol.SignEd25519(protocol.DocTechCert, &g.tech, g.msp)
	check(err)
	r := protocol.CoApprovalRequest{DeviceCert: dc, Action: protocol.ActionLogon, Account: "msp-nik", Time: Now,
		TechCert: tc, Method: protocol.MethodQR, Reason: "printer queue stuck", Ticket: "OPS-1234"}
	copy(r.Session[:], detrand.Bytes("co-session", 16))
	copy(r.First[:], detrand.Bytes("co-first", 32))
	b, err := protocol.EncodeMsg(protocol.MsgCoApprovalRequest, &r)
	check(err)
	g.add(Vector{Name: "ok-msg-co-approval-request", Kind: "msg",
		Description: "CoApprovalRequest: nik's QR logon as msp-nik with a reason and a ticket, for a second approver",
		Input:       hx(b), Context: Context{MsgType: uint8(protocol.MsgCoApprovalRequest), Type: "CoApprovalRequest"}})
}
