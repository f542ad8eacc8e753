package app

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// Offline codes (SPEC.md 11.6). The phone shows the code of the current
// time step for one device; the technician types it, with their username,
// on the device's login screen when it cannot reach the relay.

// Errors of OfflineCode callers branch on; the message of a refusal is one
// sentence for the screen.
var (
	ErrUnknownDevice = errors.New("unknown device")
	ErrNoOfflineKey  = errors.New("no offline key for the device")
)

// refusal is an error whose message is the screen text and which wraps a
// sentinel.
type refusal struct {
	msg  string
	kind error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// OfflineCode is what the phone shows for an offline login.
type OfflineCode struct {
	Device      protocol.DeviceCert
	Username    string // what the technician types with the code
	Code        string
	SecondsLeft int    // until the code's time step ends
	Mode        string // protocol.ModeNamed or protocol.ModeShared
}

// FindDevice resolves what a technician typed to a device of the
// directory: its name (case-insensitive), TENANT/NAME, or at least 8 hex
// digits of its id. A device the MSP removed is refused by name.
func (v *View) FindDevice(ref string) (protocol.DeviceCert, error) {
	tenant, name, scoped := strings.Cut(ref, "/")
	if !scoped {
		name = ref
	}
	match := func(d protocol.DeviceCert) bool {
		id := hex.EncodeToString(d.DeviceID[:])
		return scoped && strings.EqualFold(d.Tenant, tenant) && strings.EqualFold(d.Name, name) ||
			!scoped && strings.EqualFold(d.Name, ref) ||
			!scoped && len(ref) >= 8 && strings.HasPrefix(id, strings.ToLower(ref))
	}
	var hits []protocol.DeviceCert
	for _, d := range v.Devices {
		if match(d) {
			hits = append(hits, d)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		for _, d := range v.Removed {
			if match(d) {
				return d, removedErr(&d)
			}
		}
		return protocol.DeviceCert{}, &refusal{fmt.Sprintf("no device %q in the directory of %s (see: devices, or sync)", ref, v.Org.Name), ErrUnknownDevice}
	}
	var names []string
	for _, d := range hits {
		names = append(names, fmt.Sprintf("%s/%s (id %x)", d.Tenant, d.Name, d.DeviceID[:4]))
	}
	return protocol.DeviceCert{}, &refusal{fmt.Sprintf("%q names %d devices: %s; name one as TENANT/NAME or by its id", ref, len(hits), strings.Join(names, ", ")), ErrUnknownDevice}
}

// HasOfflineCodes reports whether the phone can show offline codes for d:
// the policy held for its tenant lets the technician log in to it, and
// the device's agent sent its own key, or, in a shared-mode tenant, the
// console sent the technician's key.
func (v *View) HasOfflineCodes(d protocol.DeviceCert) bool {
	p, ok := v.Policies[d.Tenant]
	if !ok || p.Authorize(&v.Tech, &d) != nil {
		return false
	}
	key, err := codeKey(v.Org, p.LoginMode, d)
	clear(key)
	return err == nil
}

// codeKey returns a copy of the key the phone computes d's codes with
// (the caller wipes it): the device's own key if its agent gave one
// (named mode; in shared mode after the derived key was used offline
// there), else in a shared-mode tenant the code key derived from the
// technician's key; or a refusal saying how to get one.
func codeKey(o *wallet.Org, mode string, d protocol.DeviceCert) ([]byte, error) {
	if dk, ok := o.DeviceKey(d.Tenant, d.DeviceID); ok {
		return bytes.Clone(dk.Secret), nil
	}
	if mode != protocol.ModeShared {
		return nil, &refusal{fmt.Sprintf("log in online on %s once with the QR code to get offline codes for it", d.Name), ErrNoOfflineKey}
	}
	tk, ok := o.TechKey(d.Tenant)
	if !ok {
		return nil, &refusal{fmt.Sprintf("this phone holds no offline key of tenant %s; sync with the console to get it", d.Tenant), ErrNoOfflineKey}
	}
	return otpcode.CodeKey(tk.Secret, d.DeviceID)
}

// OfflineCode returns the current offline code of the device ref names
// (see View.FindDevice), with the tenant policy's parameters and the
// phone's clock. It needs no network.
func (a *App) OfflineCode(ref string) (*OfflineCode, error) {
	o, err := a.cfg.Wallet.Current()
	if err != nil {
		return nil, err
	}
	v, err := Load(o)
	if err != nil {
		return nil, err
	}
	dev, err := v.FindDevice(ref)
	if err != nil {
		return nil, err
	}
	if err := a.policyCheck(v, &dev, false); err != nil {
		return nil, err
	}
	p, ok := v.Policies[dev.Tenant]
	if !ok {
		return nil, &refusal{fmt.Sprintf("this phone holds no policy of tenant %s; sync with the console first", dev.Tenant), ErrNoOfflineKey}
	}
	key, err := codeKey(o, p.LoginMode, dev)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	now := a.cfg.Now()
	step := otpcode.Step(now, p.Offline.Period)
	code, err := otpcode.Code(key, step, p.Offline)
	if err != nil {
		return nil, err
	}
	return &OfflineCode{
		Device: dev, Username: v.Tech.Username, Code: code, Mode: p.LoginMode,
		SecondsLeft: int(otpcode.StepEnd(step, p.Offline.Period).Unix() - now.Unix()),
	}, nil
}
