package vectors

import (
	"time"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// domain builds DomainRequest vectors (SPEC.md 11.7): what the DC agent
// checks of a workstation's request, and the DomainResult / DomainEnd
// bodies.
func (g *gen) domain() {
	ws := g.device
	ws.DomainJoined = true
	target := protocol.DeviceCert{
		Serial: 8, Name: "SRV-FILE01", Tenant: tenant, OS: "windows", DomainJoined: true,
		NoiseKey: noiseKey(keypair("target-noise")), IdentityKey: identity("target-identity"),
		Relay: relayA, NotBefore: Now - 86400, NotAfter: Now + 365*86400,
	}
	copy(target.DeviceID[:], detrand.Bytes("target-device-id", 16))
	pol := g.policy
	pol.SelectiveLogin, pol.DomainAccounts = true, true
	var session protocol.SessionID
	copy(session[:], detrand.Bytes("domain-session", 16))
	other := detrand.P256("other-approval")

	type req struct {
		tech     protocol.TechCert
		ws       protocol.DeviceCert
		target   *protocol.DeviceCert
		approval protocol.Approval
		signer   *detrand.Signer
		policy   protocol.Policy
		peer     protocol.NoiseKey
		session  protocol.SessionID
		now      int64
	}
	base := func(rdp bool) req {
		r := req{tech: g.tech, ws: ws, policy: pol, peer: ws.NoiseKey, session: session, signer: g.approval, now: Now,
			approval: g.approvalFor(func(a *protocol.Approval) {
				a.Account = protocol.AccountDomain
				a.Session = session
			})}
		if rdp {
			t := target
			r.target = &t
			r.approval.Target = t.DeviceID
		}
		return r
	}
	add := func(name, rule, desc string, rdp bool, mod func(*req), expect string) {
		r := base(rdp)
		r.tech.Grants = append([]protocol.Grant(nil), r.tech.Grants...)
		mod(&r)
		a, err := protocol.SignP256(protocol.DocApproval, &r.approval, r.signer, nil)
		check(err)
		tc, err := protocol.SignEd25519(protocol.DocTechCert, &r.tech, g.msp)
		check(err)
		dc, err := protocol.SignEd25519(protocol.DocDeviceCert, &r.ws, g.msp)
		check(err)
		m := protocol.DomainRequest{TechCert: tc, Approval: a, DeviceCert: dc, Session: r.session}
		if r.target != nil {
			m.Target, err = protocol.SignEd25519(protocol.DocDeviceCert, r.target, g.msp)
			check(err)
		}
		b, err := protocol.EncodeMsg(protocol.MsgDomainRequest, &m)
		check(err)
		g.add(Vector{Name: name, Rule: rule, Kind: "domain-request", Description: desc, Input: hx(b),
			Context: Context{MSPKey: hx(g.mspPub[:]), Now: r.now, PeerStatic: hx(r.peer[:]),
				Policy: hx(g.signEd(protocol.DocPolicy, &r.policy, g.msp))},
			Expect: expect})
	}
	same := func(*req) {}
	skew := int64(protocol.MaxApprovalSkew / time.Second)
	add("ok-domain-request", "", "domain logon at the workstation, approved for it and the domain account", false, same, "ok")
	add("ok-domain-request-rdp", "", "RDP from the workstation to SRV-FILE01, approved for both", true, same, "ok")
	add("ok-domain-request-edge-of-skew", "", "approval exactly MaxApprovalSkew old", false,
		func(r *req) { r.now = Now + skew }, "ok")
	add("R51-domain-accounts-off", "R-51", "the DC's tenant policy has DomainAccounts off", false,
		func(r *req) { r.policy.DomainAccounts = false }, "ErrDomainOff")
	add("R51-domain-peer-not-workstation", "R-51", "the workstation certificate's NoiseKey is not the KK peer's static key", false,
		func(r *req) { r.peer = noiseKey(keypair("other-agent-noise")) }, "ErrPeerMismatch")
	add("R51-domain-workstation-not-joined", "R-51", "the workstation certificate does not say DomainJoined", false,
		func(r *req) { r.ws.DomainJoined = false }, "ErrNotDomainJoined")
	add("R51-domain-rdp-target-not-joined", "R-51", "the RDP target's certificate does not say DomainJoined", true,
		func(r *req) { r.target.DomainJoined = false }, "ErrNotDomainJoined")
	add("R09-domain-approval-other-key", "R-09", "approval signed by a key other than the TechCert's ApprovalKey", false,
		func(r *req) { r.signer = other }, "ErrBadSignature")
	add("R11-domain-workstation-expired", "R-11", "workstation certificate one second past NotAfter", false,
		func(r *req) { r.ws.NotAfter = Now - 1 }, "ErrExpired")
	add("R10-domain-tech-expired", "R-10", "technician certificate one second past NotAfter", false,
		func(r *req) { r.tech.NotAfter = Now - 1 }, "ErrExpired")
	add("R18-domain-approval-other-device", "R-18", "approval for another workstation", false,
		func(r *req) { r.approval.DeviceID[0] ^= 1 }, "ErrApprovalMismatch")
	add("R18-domain-approval-other-session", "R-18", "request under another session than the approval's", false,
		func(r *req) { r.session[0] ^= 1 }, "ErrApprovalMismatch")
	add("R18-domain-approval-other-serial", "R-18", "approval naming another technician serial", false,
		func(r *req) { r.approval.Serial = 43 }, "ErrApprovalMismatch")
	add("R18-domain-approval-local-account", "R-18", "approval for the local account, not the domain account", false,
		func(r *req) { r.approval.Account = protocol.AccountLocal }, "ErrApprovalMismatch")
	add("R18-domain-approval-deny", "R-18", "a deny presented as a request", false,
		func(r *req) { r.approval.Decision = protocol.DecisionDeny }, "ErrApprovalMismatch")
	add("R18-domain-approval-sudo", "R-18", "approval for sudo, not a logon", false,
		func(r *req) { r.approval.Action = protocol.ActionSudo }, "ErrApprovalMismatch")
	add("R18-domain-rdp-other-target", "R-18", "RDP approval for SRV-FILE01 with another target's certificate", true,
		func(r *req) { r.approval.Target[0] ^= 1 }, "ErrApprovalMismatch")
	add("R18-domain-rdp-target-missing", "R-18", "RDP approval presented without the target's certificate", true,
		func(r *req) { r.target = nil }, "ErrApprovalMismatch")
	add("R18-domain-target-not-approved", "R-18", "a target certificate added to an approval for a local logon", true,
		func(r *req) { r.approval.Target = protocol.DeviceID{} }, "ErrApprovalMismatch")
	add("R19-domain-approval-stale", "R-19", "approval MaxApprovalSkew + 1 s old", false,
		func(r *req) { r.now = Now + skew + 1 }, "ErrStale")
	add("R12-domain-tech-revoked", "R-12", "the DC's policy revokes the technician", false,
		func(r *req) { r.policy.Revoked = []uint64{3, 9, 42} }, "ErrRevoked")
	add("R46-domain-workstation-removed", "R-46", "the DC's policy revokes the workstation's certificate", false,
		func(r *req) { r.policy.RevokedDevices = []uint64{7} }, "ErrDeviceRevoked")
	add("R46-domain-rdp-target-removed", "R-46", "the DC's policy revokes the RDP target's certificate", true,
		func(r *req) { r.policy.RevokedDevices = []uint64{8} }, "ErrDeviceRevoked")
	add("R14-domain-workstation-not-shared", "R-14", "the workstation's share list names only bob", false,
		func(r *req) {
			r.policy.Shares = []protocol.DeviceShare{{DeviceID: ws.DeviceID, Entries: []string{"bob"}}}
		}, "ErrNotShared")
	add("R14-domain-rdp-target-not-shared", "R-14", "the RDP target's share list names only bob", true,
		func(r *req) {
			r.policy.Shares = []protocol.DeviceShare{{DeviceID: target.DeviceID, Entries: []string{"bob"}}}
		}, "ErrNotShared")
	add("R15-domain-workstation-other-tenant", "R-15", "a workstation of tenant globex asks acme's DC", false,
		func(r *req) { r.ws.Tenant = "globex" }, "ErrWrongTenant")

	res, err := protocol.EncodeMsg(protocol.MsgDomainResult, &protocol.DomainResult{OK: true, Account: "msp-nik",
		Password: "Xq7-vN2pL.kR9mT4wZ8sB3hF6jD5cG2a", Expires: Now + 8*3600})
	check(err)
	g.add(Vector{Name: "ok-msg-domain-result", Kind: "msg", Description: "DomainResult carrying a one-time password (SPEC.md 8.2)",
		Input: hx(res), Context: Context{MsgType: uint8(protocol.MsgDomainResult), Type: "DomainResult"}})
	end, err := protocol.EncodeMsg(protocol.MsgDomainEnd, &protocol.DomainEnd{Session: session, Account: "msp-nik"})
	check(err)
	g.add(Vector{Name: "ok-msg-domain-end", Kind: "msg", Description: "DomainEnd for the session",
		Input: hx(end), Context: Context{MsgType: uint8(protocol.MsgDomainEnd), Type: "DomainEnd"}})
	g.add(Vector{Name: "R36-msg-domain-end-for-request", Rule: "R-36", Kind: "msg", Description: "DomainEnd where a DomainRequest is expected",
		Input: hx(end), Context: Context{MsgType: uint8(protocol.MsgDomainRequest), Type: "DomainRequest"}, Expect: "ErrMalformed"})
}
