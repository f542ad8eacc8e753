package protocol

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// SessionID names one end-to-end session (a login, a pairing, an enrollment
// or a KK exchange) in relay frames and in approvals.
type SessionID [16]byte

// DeviceID names an enrolled computer; the console assigns it at random.
type DeviceID [16]byte

// Roles a technician certificate can carry.
const (
	RoleGlobalAdmin = "global-admin" // every tenant, every device
	RoleAdmin       = "admin"        // per tenant
	RoleReadOnly    = "read-only"    // per tenant
)

// Share list entries with a special meaning; any other entry is a technician
// username.
const (
	ShareAllAdmins = "all-admins" // every technician with role admin in the tenant
	ShareAllUsers  = "all-users"  // every technician delegated to the tenant
)

// Login modes of a tenant policy.
const (
	ModeNamed  = "named"  // one account per technician: msp-<username>
	ModeShared = "shared" // one account per tenant: msp-NNNN
)

// Sizes bounding free-text fields in documents.
const (
	MaxNameLen  = 64
	MaxEmailLen = 254
)

// Bounds of policy fields that Policy.Check enforces (SPEC.md 6.3).
const (
	MaxSessionLimit   = 7 * 24 * 3600 // seconds: Policy.MaxSession is 1..MaxSessionLimit
	MaxInactivityDays = 3650          // Policy.InactivityDays is 0 (never) ..MaxInactivityDays
	MaxLockoutBase    = 3600          // seconds: OfflineParams.LockoutBase is 0..MaxLockoutBase
	MaxLockoutLimit   = 24 * 3600     // seconds: OfflineParams.LockoutLimit is LockoutBase..MaxLockoutLimit
	MaxUsernameLen    = 32            // a technician username is 1..32 of [a-z0-9._-]
)

// ValidUsername reports whether s has the syntax of a technician
// username: 1..MaxUsernameLen bytes of a-z, 0-9, '.', '_' and '-'.
func ValidUsername(s string) bool {
	if s == "" || len(s) > MaxUsernameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Grant delegates a technician to a tenant with a role. Tenant is empty for
// RoleGlobalAdmin.
//
//	map { 1: tenant (text), 2: role (text) }
type Grant struct {
	Tenant string `cbor:"1,keyasint,omitempty"`
	Role   string `cbor:"2,keyasint"`
}

// TechCert is a technician certificate, signed by the MSP authority
// (DocTechCert).
type TechCert struct {
	Serial      uint64      `cbor:"1,keyasint"`  // unique per MSP, never reused; revocation names it
	TechID      string      `cbor:"2,keyasint"`  // stable technician id
	Username    string      `cbor:"3,keyasint"`  // [a-z0-9._-], 1..32
	Email       string      `cbor:"4,keyasint"`  // for push login look-up
	Grants      []Grant     `cbor:"5,keyasint"`  // roles
	NoiseKey    NoiseKey    `cbor:"6,keyasint"`  // phone's Noise static key
	IdentityKey IdentityKey `cbor:"7,keyasint"`  // phone's relay identity
	ApprovalKey ApprovalKey `cbor:"8,keyasint"`  // phone's biometric-gated approval key
	Relay       string      `cbor:"9,keyasint"`  // phone's home relay
	NotBefore   int64       `cbor:"10,keyasint"` // Unix seconds
	NotAfter    int64       `cbor:"11,keyasint"` // Unix seconds
}

// DeviceCert is a device certificate, signed by the MSP authority
// (DocDeviceCert).
type DeviceCert struct {
	Serial       uint64      `cbor:"1,keyasint"`
	DeviceID     DeviceID    `cbor:"2,keyasint"`
	Name         string      `cbor:"3,keyasint"` // shown on the phone
	Tenant       string      `cbor:"4,keyasint"`
	OS           string      `cbor:"5,keyasint"` // "linux", "windows", "darwin"
	DomainJoined bool        `cbor:"6,keyasint"`
	NoiseKey     NoiseKey    `cbor:"7,keyasint"`
	IdentityKey  IdentityKey `cbor:"8,keyasint"`
	Relay        string      `cbor:"9,keyasint"` // agent's home relay
	NotBefore    int64       `cbor:"10,keyasint"`
	NotAfter     int64       `cbor:"11,keyasint"`
	DC           bool        `cbor:"12,keyasint"` // the device is a domain controller
}

// OfflineParams are the TOTP parameters for offline login.
type OfflineParams struct {
	Digits       int   `cbor:"1,keyasint"` // 6 or 8
	Period       int   `cbor:"2,keyasint"` // seconds, 30 or 60
	Skew         int   `cbor:"3,keyasint"` // steps accepted either side, 0 or 1
	MaxFailures  int   `cbor:"4,keyasint"` // failures before lockout, 1..10
	LockoutBase  int64 `cbor:"5,keyasint"` // seconds; doubles with each further failure
	LockoutLimit int64 `cbor:"6,keyasint"` // seconds; cap of the back-off
	// Algorithm is the TOTP hash: "" (HMAC-SHA1, RFC 6238's default) or
	// OTPSHA256. Omitted when empty.
	Algorithm string `cbor:"7,keyasint,omitempty"`
	// MaxLogins bounds the offline logins an agent accepts since its last
	// contact with the console (0: DefaultMaxOfflineLogins), 0..1000.
	MaxLogins int `cbor:"8,keyasint,omitempty"`
	// MaxDays bounds the days since the agent's last contact with the
	// console during which it accepts offline logins (0:
	// DefaultMaxOfflineDays), 0..365.
	MaxDays int `cbor:"9,keyasint,omitempty"`
}

// Offline login limits and algorithms (OfflineParams).
const (
	OTPSHA256               = "SHA256"
	DefaultMaxOfflineLogins = 10
	DefaultMaxOfflineDays   = 14
)

// Logins returns MaxLogins, or its default.
func (o OfflineParams) Logins() int {
	if o.MaxLogins == 0 {
		return DefaultMaxOfflineLogins
	}
	return o.MaxLogins
}

// Days returns MaxDays, or its default.
func (o OfflineParams) Days() int {
	if o.MaxDays == 0 {
		return DefaultMaxOfflineDays
	}
	return o.MaxDays
}

// DeviceShare is a device's share list. A device absent from Policy.Shares
// has the default list [all-admins, all-users].
type DeviceShare struct {
	DeviceID DeviceID `cbor:"1,keyasint"`
	Entries  []string `cbor:"2,keyasint"` // sorted; ShareAllAdmins, ShareAllUsers or usernames
}

// RosterEntry names a technician delegated to the tenant, so an agent can
// find the technician typed at the login screen and reach the phone (push).
type RosterEntry struct {
	Serial      uint64      `cbor:"1,keyasint"`
	TechID      string      `cbor:"2,keyasint"`
	Username    string      `cbor:"3,keyasint"`
	Email       string      `cbor:"4,keyasint"`
	NoiseKey    NoiseKey    `cbor:"5,keyasint"`
	IdentityKey IdentityKey `cbor:"6,keyasint"`
	Relay       string      `cbor:"7,keyasint"`
	// Role is the technician's role in the tenant (RoleGlobalAdmin,
	// RoleAdmin or RoleReadOnly), so an agent can decide the access rule
	// for an offline login from the roster alone. Omitted when empty.
	Role string `cbor:"8,keyasint,omitempty"`
}

// Cert returns the certificate fields the access rule reads (serial,
// technician, username, role in tenant), for an offline login where the
// agent has only the roster: Authorize on it decides as on the
// technician's real certificate.
func (r *RosterEntry) Cert(tenant string) TechCert {
	return TechCert{Serial: r.Serial, TechID: r.TechID, Username: r.Username, Email: r.Email,
		NoiseKey: r.NoiseKey, IdentityKey: r.IdentityKey, Relay: r.Relay,
		Grants: []Grant{{Tenant: tenant, Role: r.Role}}}
}

// Policy is a tenant policy, signed by the MSP authority (DocPolicy). An
// agent applies a policy only if its Version is higher than the one it
// holds.
type Policy struct {
	Tenant         string        `cbor:"1,keyasint"`
	Version        uint64        `cbor:"2,keyasint"` // strictly increasing per tenant
	IssuedAt       int64         `cbor:"3,keyasint"`
	LoginMode      string        `cbor:"4,keyasint"` // ModeNamed or ModeShared
	SharedAccount  string        `cbor:"5,keyasint"` // msp-NNNN; required in shared mode
	PushLogin      bool          `cbor:"6,keyasint"`
	OTPWhileOnline bool          `cbor:"7,keyasint"`
	SelectiveLogin bool          `cbor:"8,keyasint"`
	DomainAccounts bool          `cbor:"9,keyasint"`
	Offline        OfflineParams `cbor:"10,keyasint"`
	MaxSession     int64         `cbor:"11,keyasint"` // seconds
	InactivityDays int           `cbor:"12,keyasint"`
	Shares         []DeviceShare `cbor:"13,keyasint"` // sorted by device id
	Revoked        []uint64      `cbor:"14,keyasint"` // sorted technician serials
	Roster         []RosterEntry `cbor:"15,keyasint"` // sorted by username
	Console        string        `cbor:"16,keyasint"` // console's PeerAddr text
	ConsoleNoise   NoiseKey      `cbor:"17,keyasint"`
	// RevokedDevices lists the certificate serials of devices the MSP
	// removed, sorted. It is omitted when empty, so a policy without
	// removed devices encodes exactly as before the field existed.
	RevokedDevices []uint64 `cbor:"18,keyasint,omitempty"`
	// PushMaxPending bounds the push logins pending at a time on one
	// device, PushPerHour the push logins of one technician on one device
	// within an hour, PushBlock (seconds) how long a technician's "this was
	// not me" report blocks push logins (SPEC.md 6.3, 11.5). Omitted when
	// zero, which means the defaults (PushDefaults).
	PushMaxPending int   `cbor:"19,keyasint,omitempty"`
	PushPerHour    int   `cbor:"20,keyasint,omitempty"`
	PushBlock      int64 `cbor:"21,keyasint,omitempty"`
	// RequireReason makes a login approval without a free-text reason
	// invalid; TicketPattern, when not empty, makes one without a ticket
	// reference matching it invalid (CompileTicketPattern; SPEC.md 6.3).
	RequireReason bool   `cbor:"22,keyasint,omitempty"`
	TicketPattern string `cbor:"23,keyasint,omitempty"`
	// WarnBefore (seconds) is how long before a session's hard cap
	// (MaxSession) the agent warns the account's user that it will be
	// logged off; 0 (omitted): no warning (SPEC.md 6.3).
	WarnBefore int64 `cbor:"24,keyasint,omitempty"`
	// EndUserNotice makes the agent tell the computer's users when a
	// technician session starts (SPEC.md 11.13).
	EndUserNotice bool `cbor:"25,keyasint,omitempty"`
	// SecondApprovers, when not empty, makes every login on the tenant's
	// devices need a second approval, by a technician it names (share
	// list entries: ShareAllAdmins, ShareAllUsers or usernames; sorted,
	// no duplicates). SecondApproverDevices overrides it per device: a
	// device listed there needs a second approver named by its entries,
	// or none when they are empty (SPEC.md 6.3, 11.14). Both are omitted
	// when empty.
	SecondApprovers       []string      `cbor:"26,keyasint,omitempty"`
	SecondApproverDevices []DeviceShare `cbor:"27,keyasint,omitempty"`
	// BreakGlassOff turns break-glass off on the tenant's devices: the
	// agent refuses a recovery code without checking it, and keeps its
	// codes and escrow, so turning it back on works at once (SPEC.md
	// 6.3, 11.15). Omitted when false: break-glass on, as before the
	// field existed.
	BreakGlassOff bool `cbor:"28,keyasint,omitempty"`
}

// MaxWarnBefore bounds Policy.WarnBefore (seconds).
const MaxWarnBefore = 24 * 3600

// Push login limits (SPEC.md 6.3): the defaults of a zero field and the
// largest value a policy may state.
const (
	DefaultPushMaxPending = 3
	DefaultPushPerHour    = 10
	DefaultPushBlock      = 3600 // seconds
	MaxPushMaxPending     = 16
	MaxPushPerHour        = 100
	MaxPushBlock          = 7 * 24 * 3600 // seconds
)

// PushLimits returns the push limits in force: the policy's, or the
// defaults for zero fields.
func (p *Policy) PushLimits() (maxPending, perHour int, block time.Duration) {
	maxPending, perHour, b := p.PushMaxPending, p.PushPerHour, p.PushBlock
	if maxPending == 0 {
		maxPending = DefaultPushMaxPending
	}
	if perHour == 0 {
		perHour = DefaultPushPerHour
	}
	if b == 0 {
		b = DefaultPushBlock
	}
	return maxPending, perHour, time.Duration(b) * time.Second
}

// Errors of document validation. They are for local logs and audit; peers
// see only a generic refusal.
var (
	ErrExpired       = errors.New("protocol: certificate outside its validity")
	ErrRevoked       = errors.New("protocol: technician certificate revoked")
	ErrDeviceRevoked = errors.New("protocol: device certificate revoked") // the MSP removed the device (RevokedDevices)
	ErrNotDelegated  = errors.New("protocol: technician not delegated to the tenant")
	ErrNotShared     = errors.New("protocol: device not shared with the technician")
	ErrWrongTenant   = errors.New("protocol: document of another tenant")
	ErrInvalidDoc    = errors.New("protocol: invalid document")
)

// Valid checks the certificate's validity window at now.
func (c *TechCert) Valid(now time.Time) error {
	t := now.Unix()
	if t < c.NotBefore || t > c.NotAfter {
		return ErrExpired
	}
	return nil
}

// Valid checks the certificate's validity window at now.
func (c *DeviceCert) Valid(now time.Time) error {
	t := now.Unix()
	if t < c.NotBefore || t > c.NotAfter {
		return ErrExpired
	}
	return nil
}

// RoleIn returns the technician's role in tenant: RoleGlobalAdmin, RoleAdmin,
// RoleReadOnly, or "" when not delegated.
func (c *TechCert) RoleIn(tenant string) string {
	role := ""
	for _, g := range c.Grants {
		switch {
		case g.Role == RoleGlobalAdmin:
			return RoleGlobalAdmin
		case g.Tenant == tenant && g.Role == RoleAdmin,
			g.Tenant == tenant && g.Role == RoleReadOnly && role == "":
			// Unknown roles delegate nothing (fail closed).
			role = g.Role
		}
	}
	return role
}

// ShareList returns the device's share list (the default when absent).
func (p *Policy) ShareList(id DeviceID) []string {
	for _, s := range p.Shares {
		if s.DeviceID == id {
			return s.Entries
		}
	}
	return []string{ShareAllAdmins, ShareAllUsers}
}

// IsRevoked reports whether serial is in the policy's revocation list.
func (p *Policy) IsRevoked(serial uint64) bool {
	_, found := slices.BinarySearch(p.Revoked, serial)
	return found
}

// IsDeviceRevoked reports whether serial is in the policy's list of
// revoked device certificates.
func (p *Policy) IsDeviceRevoked(serial uint64) bool {
	_, found := slices.BinarySearch(p.RevokedDevices, serial)
	return found
}

// CheckDevice checks a device certificate against the policy of its
// tenant: the tenants must match (ErrWrongTenant) and the certificate
// must not be revoked (ErrDeviceRevoked). A phone checks the device
// certificate of every login request with it (SPEC.md R-46); Authorize
// starts with it.
func (p *Policy) CheckDevice(d *DeviceCert) error {
	if d.Tenant != p.Tenant {
		return ErrWrongTenant
	}
	if p.IsDeviceRevoked(d.Serial) {
		return ErrDeviceRevoked
	}
	return nil
}

// Authorize is the access rule of jitkey, decided locally by the agent from
// its cached policy: nobody has access to a removed device; a revoked
// certificate never has access; a global admin always has; otherwise the
// technician must be delegated to the device's tenant and named by the
// device's share list (all-admins covers the tenant's admins, all-users
// every delegated technician, or the username).
func (p *Policy) Authorize(c *TechCert, d *DeviceCert) error {
	if err := p.CheckDevice(d); err != nil {
		return err
	}
	if p.IsRevoked(c.Serial) {
		return ErrRevoked
	}
	role := c.RoleIn(d.Tenant)
	switch role {
	case RoleGlobalAdmin:
		return nil
	case "":
		return ErrNotDelegated
	}
	for _, e := range p.ShareList(d.DeviceID) {
		switch {
		case e == ShareAllUsers,
			e == ShareAllAdmins && role == RoleAdmin:
			return nil
		case e == ShareAllAdmins || e == "":
			// The special entries are reserved: a technician whose username
			// happens to be "all-admins" (or empty) is not named by them.
		case e == c.Username:
			return nil
		}
	}
	return ErrNotShared
}

// ErrPolicyDowngrade is returned when a policy's version is not higher than
// the version already held.
var ErrPolicyDowngrade = errors.New("protocol: policy version not higher than the one held")

// CheckPolicyUpgrade reports whether a policy with version next may replace
// one with version held: next must be strictly higher. An agent that holds
// no policy yet passes held = 0 (every valid policy has Version >= 1).
func CheckPolicyUpgrade(held, next uint64) error {
	if next <= held {
		return fmt.Errorf("%w: held %d, offered %d", ErrPolicyDowngrade, held, next)
	}
	return nil
}

// Check validates a policy's internal consistency: fields within bounds and
// lists sorted without duplicates (so that the encoding is unique).
func (p *Policy) Check() error {
	bad := func(what string) error { return fmt.Errorf("%w: policy %s", ErrInvalidDoc, what) }
	switch {
	case p.Tenant == "" || len(p.Tenant) > MaxNameLen:
		return bad("tenant")
	case p.Version == 0:
		return bad("version")
	case p.LoginMode != ModeNamed && p.LoginMode != ModeShared:
		return bad("login mode")
	case p.LoginMode == ModeShared && p.SharedAccount == "":
		return bad("shared account")
	case p.LoginMode == ModeNamed && p.SharedAccount != "", len(p.SharedAccount) > MaxNameLen:
		return bad("shared account")
	case p.MaxSession <= 0 || p.MaxSession > MaxSessionLimit:
		return bad("max session")
	case p.InactivityDays < 0 || p.InactivityDays > MaxInactivityDays:
		return bad("inactivity days")
	case p.Offline.Digits != 6 && p.Offline.Digits != 8:
		return bad("offline digits")
	case p.Offline.Period != 30 && p.Offline.Period != 60:
		return bad("offline period")
	case p.Offline.Skew < 0 || p.Offline.Skew > 1:
		return bad("offline skew")
	case p.Offline.MaxFailures < 1 || p.Offline.MaxFailures > 10:
		return bad("offline max failures")
	case p.Offline.LockoutBase < 0 || p.Offline.LockoutBase > MaxLockoutBase:
		return bad("offline lockout base")
	case p.Offline.LockoutLimit < p.Offline.LockoutBase || p.Offline.LockoutLimit > MaxLockoutLimit:
		return bad("offline lockout limit")
	case p.Console != "" && !validPeerAddr(p.Console):
		return bad("console address")
	case p.Offline.Algorithm != "" && p.Offline.Algorithm != OTPSHA256:
		return bad("offline algorithm")
	case p.Offline.MaxLogins < 0 || p.Offline.MaxLogins > 1000:
		return bad("offline max logins")
	case p.Offline.MaxDays < 0 || p.Offline.MaxDays > 365:
		return bad("offline max days")
	case p.PushMaxPending < 0 || p.PushMaxPending > MaxPushMaxPending:
		return bad("push max pending")
	case p.PushPerHour < 0 || p.PushPerHour > MaxPushPerHour:
		return bad("push per hour")
	case p.PushBlock < 0 || p.PushBlock > MaxPushBlock:
		return bad("push block")
	case p.WarnBefore < 0 || p.WarnBefore > MaxWarnBefore:
		return bad("warn before")
	case !validTicketPattern(p.TicketPattern):
		return bad("ticket pattern")
	case !sortedUnique(p.Revoked):
		return bad("revoked list")
	case !sortedUnique(p.RevokedDevices):
		return bad("revoked devices list")
	}
	for i := 1; i < len(p.Shares); i++ {
		if string(p.Shares[i-1].DeviceID[:]) >= string(p.Shares[i].DeviceID[:]) {
			return bad("share lists order")
		}
	}
	for _, sh := range p.Shares {
		for i, e := range sh.Entries {
			if e != ShareAllAdmins && e != ShareAllUsers && !ValidUsername(e) {
				return bad("share list entry")
			}
			if i > 0 && sh.Entries[i-1] >= e {
				return bad("share list order")
			}
		}
	}
	if !validEntries(p.SecondApprovers) {
		return bad("second approvers")
	}
	for i, sh := range p.SecondApproverDevices {
		if i > 0 && string(p.SecondApproverDevices[i-1].DeviceID[:]) >= string(sh.DeviceID[:]) {
			return bad("second approver devices order")
		}
		if !validEntries(sh.Entries) {
			return bad("second approver device entries")
		}
	}
	for i := 1; i < len(p.Roster); i++ {
		if p.Roster[i-1].Username >= p.Roster[i].Username {
			return bad("roster order")
		}
	}
	return nil
}

// sortedUnique reports whether s is sorted without duplicates.
func sortedUnique(s []uint64) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func validTicketPattern(s string) bool {
	_, err := CompileTicketPattern(s)
	return err == nil
}

func validPeerAddr(s string) bool {
	_, err := ParsePeerAddr(s)
	return err == nil
}
