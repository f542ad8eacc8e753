package protocol

import (
	"testing"
	"time"
)

func TestCertValidity(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"inside", testNow, nil},
		{"at not-before", time.Unix(f.tech.NotBefore, 0), nil},
		{"at not-after", time.Unix(f.tech.NotAfter, 0), nil},
		{"before", time.Unix(f.tech.NotBefore-1, 0), ErrExpired},
		{"after", time.Unix(f.tech.NotAfter+1, 0), ErrExpired},
	}
	for _, tt := range tests {
		t.Run("tech/"+tt.name, func(t *testing.T) { wantErr(t, f.tech.Valid(tt.now), tt.want) })
		d := f.device
		d.NotBefore, d.NotAfter = f.tech.NotBefore, f.tech.NotAfter
		t.Run("device/"+tt.name, func(t *testing.T) { wantErr(t, d.Valid(tt.now), tt.want) })
	}
}

func TestRoleIn(t *testing.T) {
	tests := []struct {
		name   string
		grants []Grant
		want   string
	}{
		{"none", nil, ""},
		{"admin", []Grant{{Tenant: "acme", Role: RoleAdmin}}, RoleAdmin},
		{"read-only", []Grant{{Tenant: "acme", Role: RoleReadOnly}}, RoleReadOnly},
		{"admin wins after read-only", []Grant{{Tenant: "acme", Role: RoleReadOnly}, {Tenant: "acme", Role: RoleAdmin}}, RoleAdmin},
		{"admin wins before read-only", []Grant{{Tenant: "acme", Role: RoleAdmin}, {Tenant: "acme", Role: RoleReadOnly}}, RoleAdmin},
		{"other tenant", []Grant{{Tenant: "globex", Role: RoleAdmin}}, ""},
		{"global admin", []Grant{{Role: RoleGlobalAdmin}}, RoleGlobalAdmin},
		{"unknown role delegates nothing", []Grant{{Tenant: "acme", Role: "owner"}}, ""},
		{"empty role delegates nothing", []Grant{{Tenant: "acme"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := TechCert{Grants: tt.grants}
			if got := c.RoleIn("acme"); got != tt.want {
				t.Fatalf("RoleIn = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAuthorize covers every branch of the access rule.
func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	admin := []Grant{{Tenant: testTenant, Role: RoleAdmin}}
	readOnly := []Grant{{Tenant: testTenant, Role: RoleReadOnly}}
	share := func(entries ...string) []DeviceShare {
		return []DeviceShare{{DeviceID: f.device.DeviceID, Entries: entries}}
	}
	otherDevice := []DeviceShare{{DeviceID: DeviceID{0xff}, Entries: []string{"bob"}}}
	tests := []struct {
		name     string
		grants   []Grant
		username string
		serial   uint64
		shares   []DeviceShare
		devTen   string
		want     error
	}{
		{"admin, default list", admin, "nik", 42, nil, "", nil},
		{"read-only, default list", readOnly, "nik", 42, nil, "", nil},
		{"default list when only other devices listed", readOnly, "nik", 42, otherDevice, "", nil},
		{"revoked", admin, "nik", 9, nil, "", ErrRevoked},
		{"revoked global admin", []Grant{{Role: RoleGlobalAdmin}}, "nik", 3, nil, "", ErrRevoked},
		{"global admin, empty share list", []Grant{{Role: RoleGlobalAdmin}}, "nik", 42, share(), "", nil},
		{"global admin, other user named", []Grant{{Role: RoleGlobalAdmin}}, "nik", 42, share("bob"), "", nil},
		{"not delegated", []Grant{{Tenant: "globex", Role: RoleAdmin}}, "nik", 42, nil, "", ErrNotDelegated},
		{"no grants", nil, "nik", 42, nil, "", ErrNotDelegated},
		{"unknown role", []Grant{{Tenant: testTenant, Role: "owner"}}, "nik", 42, nil, "", ErrNotDelegated},
		{"all-admins admits admin", admin, "nik", 42, share(ShareAllAdmins), "", nil},
		{"all-admins refuses read-only", readOnly, "nik", 42, share(ShareAllAdmins), "", ErrNotShared},
		{"all-users admits read-only", readOnly, "nik", 42, share(ShareAllUsers), "", nil},
		{"named username", readOnly, "nik", 42, share("bob", "nik"), "", nil},
		{"other username", admin, "nik", 42, share("bob"), "", ErrNotShared},
		{"empty share list", admin, "nik", 42, share(), "", ErrNotShared},
		{"username all-admins is not named by the all-admins entry", readOnly, ShareAllAdmins, 42, share(ShareAllAdmins), "", ErrNotShared},
		{"empty username is not named by an empty entry", readOnly, "", 42, share(""), "", ErrNotShared},
		{"wrong tenant", admin, "nik", 42, nil, "globex", ErrWrongTenant},
		{"wrong tenant beats global admin", []Grant{{Role: RoleGlobalAdmin}}, "nik", 42, nil, "globex", ErrWrongTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.tech
			c.Grants, c.Username, c.Serial = tt.grants, tt.username, tt.serial
			d := f.device
			if tt.devTen != "" {
				d.Tenant = tt.devTen
			}
			p := f.policy
			p.Shares = tt.shares
			wantErr(t, p.Authorize(&c, &d), tt.want)
		})
	}
}

// TestAuthorizeRemovedDevice: nobody, not even a global admin, has
// access to a device whose certificate the policy revokes; the
// fixture's device has serial 7.
func TestAuthorizeRemovedDevice(t *testing.T) {
	f := newFixture(t)
	admin := []Grant{{Tenant: testTenant, Role: RoleAdmin}}
	tests := []struct {
		name    string
		grants  []Grant
		serial  uint64
		revoked []uint64
		shares  []DeviceShare
		tenant  string
		want    error
	}{
		{"other devices revoked", admin, 42, []uint64{5, 11}, nil, "", nil},
		{"device revoked", admin, 42, []uint64{7}, nil, "", ErrDeviceRevoked},
		{"device revoked beats global admin", []Grant{{Role: RoleGlobalAdmin}}, 42, []uint64{1, 7, 9}, nil, "", ErrDeviceRevoked},
		{"device revoked beats the share list", admin, 42, []uint64{7},
			[]DeviceShare{{DeviceID: f.device.DeviceID, Entries: []string{"nik"}}}, "", ErrDeviceRevoked},
		{"device revoked before technician revoked", admin, 9, []uint64{7}, nil, "", ErrDeviceRevoked},
		{"wrong tenant before device revoked", admin, 42, []uint64{7}, nil, "globex", ErrWrongTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, d, p := f.tech, f.device, f.policy
			c.Grants, c.Serial = tt.grants, tt.serial
			p.RevokedDevices, p.Shares = tt.revoked, tt.shares
			if tt.tenant != "" {
				d.Tenant = tt.tenant
			}
			wantErr(t, p.Authorize(&c, &d), tt.want)
		})
	}
}

func TestShareList(t *testing.T) {
	p := validPolicy()
	got := p.ShareList(DeviceID{1})
	if len(got) != 2 || got[0] != ShareAllAdmins || got[1] != ShareAllUsers {
		t.Fatalf("default share list %v", got)
	}
	if p.IsRevoked(4) || !p.IsRevoked(9) || !p.IsRevoked(3) {
		t.Fatal("IsRevoked")
	}
	p.RevokedDevices = []uint64{3, 7}
	if p.IsDeviceRevoked(4) || p.IsDeviceRevoked(9) || !p.IsDeviceRevoked(7) || !p.IsDeviceRevoked(3) {
		t.Fatal("IsDeviceRevoked")
	}
}

// TestCheckDevice: what a phone checks of a login request's device
// certificate: the tenant's policy, and the device not removed.
func TestCheckDevice(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		revoked []uint64
		tenant  string
		want    error
	}{
		{"none revoked", nil, "", nil},
		{"others revoked", []uint64{6, 8}, "", nil},
		{"revoked", []uint64{7}, "", ErrDeviceRevoked},
		{"revoked among others", []uint64{1, 7, 100}, "", ErrDeviceRevoked},
		{"other tenant", nil, "globex", ErrWrongTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, d := f.policy, f.device
			p.RevokedDevices = tt.revoked
			if tt.tenant != "" {
				d.Tenant = tt.tenant
			}
			wantErr(t, p.CheckDevice(&d), tt.want)
		})
	}
}

// TestPolicyRevokedDevicesOmitted: a policy without removed devices
// encodes without field 18, byte for byte as before the field existed;
// one with removed devices carries it; an empty list written out is not
// canonical.
func TestPolicyRevokedDevicesOmitted(t *testing.T) {
	p := validPolicy()
	p.RevokedDevices = []uint64{}
	empty, err := Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	p.RevokedDevices = nil
	none, err := Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if string(empty) != string(none) {
		t.Fatal("an empty RevokedDevices is encoded")
	}
	if none[0] != 0xb1 { // map of 17 fields
		t.Fatalf("policy map header %#x, want 0xb1 (17 fields)", none[0])
	}
	p.RevokedDevices = []uint64{7}
	with, err := Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if with[0] != 0xb2 || string(with[len(with)-3:]) != "\x12\x81\x07" {
		t.Fatalf("policy with a revoked device ends %x", with[len(with)-3:])
	}
	var back Policy
	if err := Unmarshal(with, &back); err != nil || !back.IsDeviceRevoked(7) {
		t.Fatalf("decode: %v %v", err, back.RevokedDevices)
	}
	explicit := append([]byte{0xb2}, none[1:]...)
	explicit = append(explicit, 0x12, 0x80) // 18: []
	wantErr(t, Unmarshal(explicit, &back), ErrNonCanonical)
}

func TestPolicyCheck(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Policy)
		ok   bool
	}{
		{"valid", func(*Policy) {}, true},
		{"valid shared", func(p *Policy) { p.LoginMode, p.SharedAccount = ModeShared, "msp-0001" }, true},
		{"no tenant", func(p *Policy) { p.Tenant = "" }, false},
		{"long tenant", func(p *Policy) { p.Tenant = string(make([]byte, MaxNameLen+1)) }, false},
		{"version 0", func(p *Policy) { p.Version = 0 }, false},
		{"bad mode", func(p *Policy) { p.LoginMode = "open" }, false},
		{"shared without account", func(p *Policy) { p.LoginMode = ModeShared }, false},
		{"max session 0", func(p *Policy) { p.MaxSession = 0 }, false},
		{"digits 7", func(p *Policy) { p.Offline.Digits = 7 }, false},
		{"period 45", func(p *Policy) { p.Offline.Period = 45 }, false},
		{"skew 2", func(p *Policy) { p.Offline.Skew = 2 }, false},
		{"skew -1", func(p *Policy) { p.Offline.Skew = -1 }, false},
		{"max failures 0", func(p *Policy) { p.Offline.MaxFailures = 0 }, false},
		{"max failures 11", func(p *Policy) { p.Offline.MaxFailures = 11 }, false},
		{"revoked unsorted", func(p *Policy) { p.Revoked = []uint64{9, 3} }, false},
		{"revoked duplicate", func(p *Policy) { p.Revoked = []uint64{3, 3} }, false},
		{"revoked devices", func(p *Policy) { p.RevokedDevices = []uint64{3, 9} }, true},
		{"revoked devices unsorted", func(p *Policy) { p.RevokedDevices = []uint64{9, 3} }, false},
		{"revoked devices duplicate", func(p *Policy) { p.RevokedDevices = []uint64{3, 3} }, false},
		{"shares unsorted", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{2}}, {DeviceID: DeviceID{1}}} }, false},
		{"shares duplicate", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}}, {DeviceID: DeviceID{1}}} }, false},
		{"roster unsorted", func(p *Policy) { p.Roster = []RosterEntry{{Username: "b"}, {Username: "a"}} }, false},
		{"roster duplicate", func(p *Policy) { p.Roster = []RosterEntry{{Username: "a"}, {Username: "a"}} }, false},
		{"shared account in named mode", func(p *Policy) { p.SharedAccount = "msp-0001" }, false},
		{"max session 7 days", func(p *Policy) { p.MaxSession = MaxSessionLimit }, true},
		{"max session over 7 days", func(p *Policy) { p.MaxSession = MaxSessionLimit + 1 }, false},
		{"inactivity 0 (never)", func(p *Policy) { p.InactivityDays = 0 }, true},
		{"inactivity negative", func(p *Policy) { p.InactivityDays = -1 }, false},
		{"inactivity too long", func(p *Policy) { p.InactivityDays = MaxInactivityDays + 1 }, false},
		{"lockout zero", func(p *Policy) { p.Offline.LockoutBase, p.Offline.LockoutLimit = 0, 0 }, true},
		{"lockout base negative", func(p *Policy) { p.Offline.LockoutBase = -1 }, false},
		{"lockout base too long", func(p *Policy) { p.Offline.LockoutBase, p.Offline.LockoutLimit = MaxLockoutBase+1, MaxLockoutLimit }, false},
		{"lockout limit below base", func(p *Policy) { p.Offline.LockoutBase, p.Offline.LockoutLimit = 60, 30 }, false},
		{"lockout limit too long", func(p *Policy) { p.Offline.LockoutLimit = MaxLockoutLimit + 1 }, false},
		{"no console", func(p *Policy) { p.Console = "" }, true},
		{"console without mailbox", func(p *Policy) { p.Console = "relay.example:4433" }, false},
		{"share entries", func(p *Policy) {
			p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{ShareAllAdmins, "bob", "nik"}}}
		}, true},
		{"share entries unsorted", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{"nik", "bob"}}} }, false},
		{"share entries duplicate", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{"bob", "bob"}}} }, false},
		{"share entry empty", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{""}}} }, false},
		{"share entry upper case", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{"Bob"}}} }, false},
		{"share list empty", func(p *Policy) { p.Shares = []DeviceShare{{DeviceID: DeviceID{1}, Entries: []string{}}} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.mod(&p)
			err := p.Check()
			if tt.ok {
				wantErr(t, err, nil)
			} else {
				wantErr(t, err, ErrInvalidDoc)
			}
		})
	}
}

func TestCheckPolicyUpgrade(t *testing.T) {
	tests := []struct {
		held, next uint64
		want       error
	}{
		{0, 1, nil},
		{4, 5, nil},
		{4, 100, nil},
		{5, 5, ErrPolicyDowngrade},
		{5, 4, ErrPolicyDowngrade},
		{0, 0, ErrPolicyDowngrade},
		{^uint64(0), ^uint64(0), ErrPolicyDowngrade},
	}
	for _, tt := range tests {
		wantErr(t, CheckPolicyUpgrade(tt.held, tt.next), tt.want)
	}
}
