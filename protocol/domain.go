package protocol

import (
	"errors"
	"time"
)

// Domain flow message types (SPEC.md 8.1, 11.7).
const (
	MsgDomainRequest MsgType = 16 // workstation agent -> DC agent
	MsgDomainResult  MsgType = 17 // DC agent -> workstation agent
	MsgDomainEnd     MsgType = 23 // workstation agent -> DC agent: the session ended
)

// DomainRequest asks the DC agent for a JIT domain account session on the
// technician's behalf (FlowDomain, KK). The DC agent checks everything
// itself (VerifyDomainRequest); the workstation is not trusted.
type DomainRequest struct {
	TechCert   Signed    `cbor:"1,keyasint"`
	Approval   Signed    `cbor:"2,keyasint"`
	DeviceCert Signed    `cbor:"3,keyasint"` // the requesting workstation's
	Session    SessionID `cbor:"4,keyasint"`
	// Target is the device certificate of the RDP target for a remote
	// logon (the approval's Target names it); omitted for a logon at the
	// workstation itself.
	Target Signed `cbor:"5,keyasint,omitzero"`
}

// DomainResult answers a DomainRequest or DomainEnd. Password is the
// account's one-time password (only in an OK answer to a DomainRequest);
// it travels only inside the Noise session and is never logged or stored.
type DomainResult struct {
	OK       bool   `cbor:"1,keyasint"`
	Account  string `cbor:"2,keyasint"` // sAMAccountName
	Password string `cbor:"3,keyasint"`
	Code     uint8  `cbor:"4,keyasint"` // error code when !OK
	// Expires is when the DC ends the session by itself (Unix seconds):
	// the approval's MaxSession, extended while the workstation renews.
	Expires int64 `cbor:"5,keyasint,omitempty"`
}

// DomainEnd tells the DC agent that the domain session Session (of the
// workstation that opened it: the KK peer) ended, so the account is
// disabled, its password re-randomised and its membership removed.
type DomainEnd struct {
	Session SessionID `cbor:"1,keyasint"`
	Account string    `cbor:"2,keyasint"`
}

// Errors of VerifyDomainRequest besides the shared sentinels.
var (
	// ErrDomainOff: the tenant policy does not allow domain accounts.
	ErrDomainOff = errors.New("protocol: domain accounts are off in the policy")
	// ErrPeerMismatch: the workstation certificate's NoiseKey is not the
	// KK peer's static key.
	ErrPeerMismatch = errors.New("protocol: certificate does not belong to the session's peer")
	// ErrNotDomainJoined: the workstation (or RDP target) certificate
	// does not say DomainJoined.
	ErrNotDomainJoined = errors.New("protocol: device is not domain-joined")
)

// DomainCheck is what the DC agent knows when a DomainRequest arrives.
type DomainCheck struct {
	MSPKey IdentityKey
	// Policy is the DC's tenant policy (verified, Check passed).
	Policy *Policy
	// Peer is the static key the KK handshake authenticated.
	Peer NoiseKey
	Now  time.Time
}

// DomainGrant is a DomainRequest that passed VerifyDomainRequest.
type DomainGrant struct {
	Tech        TechCert
	Workstation DeviceCert
	Target      *DeviceCert // RDP target, nil for a logon at the workstation
	Approval    Approval
}

// VerifyDomainRequest runs the DC agent's checks of SPEC.md 11.7 step 2,
// in this order: policy.DomainAccounts (ErrDomainOff); the workstation
// certificate signed by the MSP key, valid, its
// NoiseKey the KK peer's (ErrPeerMismatch), DomainJoined; the technician
// certificate signed and valid; the approval signed by its
// ApprovalKey; the approval's Serial, DeviceID (the workstation),
// Session, Decision approve, Account domain, Action logon and Target
// and its Time within ±120 s; for RDP the target's
// certificate (signed, valid, DomainJoined, the approval's Target); then
// the access rule for the workstation and for the target (section 7:
// R-12..R-15, R-46). Single use is the caller's, after this.
func VerifyDomainRequest(r *DomainRequest, c DomainCheck) (DomainGrant, error) {
	var g DomainGrant
	p := c.Policy
	if !p.DomainAccounts {
		return g, ErrDomainOff
	}
	if err := r.DeviceCert.VerifyEd25519(DocDeviceCert, c.MSPKey, &g.Workstation); err != nil {
		return g, err
	}
	if err := g.Workstation.Valid(c.Now); err != nil {
		return g, err
	}
	if g.Workstation.NoiseKey != c.Peer {
		return g, ErrPeerMismatch
	}
	if !g.Workstation.DomainJoined {
		return g, ErrNotDomainJoined
	}
	if err := r.TechCert.VerifyEd25519(DocTechCert, c.MSPKey, &g.Tech); err != nil {
		return g, err
	}
	if err := g.Tech.Valid(c.Now); err != nil {
		return g, err
	}
	if err := r.Approval.VerifyP256(DocApproval, g.Tech.ApprovalKey, &g.Approval); err != nil {
		return g, err
	}
	a := &g.Approval
	if a.Serial != g.Tech.Serial || a.DeviceID != g.Workstation.DeviceID || a.Session != r.Session ||
		a.Decision != DecisionApprove || a.Account != AccountDomain || a.Action != ActionLogon ||
		len(a.HandshakeHash) != 32 ||
		(a.Target == DeviceID{}) != (r.Target.Body == nil) || (a.Target != DeviceID{} && a.Target == a.DeviceID) {
		return g, ErrApprovalMismatch
	}
	if d := c.Now.Sub(time.Unix(a.Time, 0)); d > MaxApprovalSkew || d < -MaxApprovalSkew {
		return g, ErrStale
	}
	if r.Target.Body != nil {
		var t DeviceCert
		if err := r.Target.VerifyEd25519(DocDeviceCert, c.MSPKey, &t); err != nil {
			return g, err
		}
		if err := t.Valid(c.Now); err != nil {
			return g, err
		}
		if t.DeviceID != a.Target {
			return g, ErrApprovalMismatch
		}
		if !t.DomainJoined {
			return g, ErrNotDomainJoined
		}
		g.Target = &t
	}
	if err := p.Authorize(&g.Tech, &g.Workstation); err != nil {
		return g, err
	}
	if g.Target != nil {
		if err := p.Authorize(&g.Tech, g.Target); err != nil {
			return g, err
		}
	}
	return g, nil
}
