package store

import (
	"fmt"
	"strings"

	"github.com/jitkey/jitkey/protocol"
)

// Tenant is a customer tenant and its policy settings.
type Tenant struct {
	Name           string
	LoginMode      string // protocol.ModeNamed or protocol.ModeShared
	SharedAccount  string // msp-NNNN, unique across the MSP's tenants
	PushLogin      bool
	OTPWhileOnline bool
	SelectiveLogin bool
	DomainAccounts bool
	Offline        protocol.OfflineParams
	// Push login limits (SPEC.md 6.3 fields 19-21; 0 means the protocol's
	// defaults): pending pushes per device, pushes per technician and
	// device per hour, and the block (seconds) after a fraud report.
	PushMaxPending int
	PushPerHour    int
	PushBlock      int64
	MaxSession     int64 // seconds
	InactivityDays int
	OfflineSecret  []byte // shared-mode offline secret, 32 bytes
	// OfflineGeneration numbers OfflineSecret: 1 for the first, one more
	// at each rotation (RotateOfflineSecret).
	OfflineGeneration uint64
	Created           int64
	// RequireReason and TicketPattern are the policy's (SPEC.md 6.3).
	RequireReason bool
	TicketPattern string
	WarnBefore    int64 // seconds
	EndUserNotice bool
	// BreakGlassOff turns break-glass off on the tenant's devices
	// (SPEC.md 6.3 field 28, 11.15).
	BreakGlassOff bool
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// InsertTenant adds a tenant.
func (t *Tx) InsertTenant(tn *Tenant) error {
	_, err := t.exec(`INSERT INTO tenants(name, login_mode, shared_account, push_login, otp_online,
		selective_login, domain_accounts, digits, period, skew, max_failures, lockout_base,
		lockout_limit, max_session, inactivity_days, offline_secret, created,
		otp_algorithm, offline_logins, offline_days, offline_generation,
		push_max_pending, push_per_hour, push_block, require_reason, ticket_pattern, warn_before, end_user_notice,
		breakglass_off)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		tn.Name, tn.LoginMode, tn.SharedAccount, b2i(tn.PushLogin), b2i(tn.OTPWhileOnline),
		b2i(tn.SelectiveLogin), b2i(tn.DomainAccounts), tn.Offline.Digits, tn.Offline.Period,
		tn.Offline.Skew, tn.Offline.MaxFailures, tn.Offline.LockoutBase, tn.Offline.LockoutLimit,
		tn.MaxSession, tn.InactivityDays, tn.OfflineSecret, tn.Created,
		tn.Offline.Algorithm, tn.Offline.MaxLogins, tn.Offline.MaxDays, max(tn.OfflineGeneration, 1),
		tn.PushMaxPending, tn.PushPerHour, tn.PushBlock,
		b2i(tn.RequireReason), tn.TicketPattern, tn.WarnBefore, b2i(tn.EndUserNotice),
		b2i(tn.BreakGlassOff))
	if isUnique(err) {
		return fmt.Errorf("%w: tenant %s or shared account %s", ErrExists, tn.Name, tn.SharedAccount)
	}
	if err != nil {
		return fmt.Errorf("store: insert tenant: %w", err)
	}
	return nil
}

// UpdateTenant stores a tenant's settings (not its name, secret,
// generation or creation time).
func (t *Tx) UpdateTenant(tn *Tenant) error {
	res, err := t.exec(`UPDATE tenants SET login_mode=?, shared_account=?, push_login=?, otp_online=?,
		selective_login=?, domain_accounts=?, digits=?, period=?, skew=?, max_failures=?,
		lockout_base=?, lockout_limit=?, max_session=?, inactivity_days=?,
		otp_algorithm=?, offline_logins=?, offline_days=?,
		push_max_pending=?, push_per_hour=?, push_block=?,
		require_reason=?, ticket_pattern=?, warn_before=?, end_user_notice=?,
		breakglass_off=? WHERE name=?`,
		tn.LoginMode, tn.SharedAccount, b2i(tn.PushLogin), b2i(tn.OTPWhileOnline),
		b2i(tn.SelectiveLogin), b2i(tn.DomainAccounts), tn.Offline.Digits, tn.Offline.Period,
		tn.Offline.Skew, tn.Offline.MaxFailures, tn.Offline.LockoutBase, tn.Offline.LockoutLimit,
		tn.MaxSession, tn.InactivityDays, tn.Offline.Algorithm, tn.Offline.MaxLogins, tn.Offline.MaxDays,
		tn.PushMaxPending, tn.PushPerHour, tn.PushBlock,
		b2i(tn.RequireReason), tn.TicketPattern, tn.WarnBefore, b2i(tn.EndUserNotice),
		b2i(tn.BreakGlassOff), tn.Name)
	if err != nil {
		return fmt.Errorf("store: update tenant: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: tenant %s", ErrNotFound, tn.Name)
	}
	return nil
}

const tenantCols = `name, login_mode, shared_account, push_login, otp_online, selective_login,
	domain_accounts, digits, period, skew, max_failures, lockout_base, lockout_limit,
	max_session, inactivity_days, offline_secret, created, otp_algorithm, offline_logins,
	offline_days, offline_generation, push_max_pending, push_per_hour, push_block,
	require_reason, ticket_pattern, warn_before, end_user_notice, breakglass_off`

type scanner interface{ Scan(...any) error }

func scanTenant(s scanner) (*Tenant, error) {
	var tn Tenant
	err := s.Scan(&tn.Name, &tn.LoginMode, &tn.SharedAccount, &tn.PushLogin, &tn.OTPWhileOnline,
		&tn.SelectiveLogin, &tn.DomainAccounts, &tn.Offline.Digits, &tn.Offline.Period,
		&tn.Offline.Skew, &tn.Offline.MaxFailures, &tn.Offline.LockoutBase, &tn.Offline.LockoutLimit,
		&tn.MaxSession, &tn.InactivityDays, &tn.OfflineSecret, &tn.Created, &tn.Offline.Algorithm,
		&tn.Offline.MaxLogins, &tn.Offline.MaxDays, &tn.OfflineGeneration,
		&tn.PushMaxPending, &tn.PushPerHour, &tn.PushBlock,
		&tn.RequireReason, &tn.TicketPattern, &tn.WarnBefore, &tn.EndUserNotice,
		&tn.BreakGlassOff)
	return &tn, err
}

// Tenant returns the named tenant.
func (t *Tx) Tenant(name string) (*Tenant, error) {
	tn, err := scanTenant(t.row(`SELECT `+tenantCols+` FROM tenants WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "tenant "+name)
	}
	return tn, nil
}

// Tenants returns every tenant, by name.
func (t *Tx) Tenants() ([]*Tenant, error) {
	rows, err := t.query(`SELECT ` + tenantCols + ` FROM tenants ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Tenant
	for rows.Next() {
		tn, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, tn)
	}
	return out, rows.Err()
}

// SharedAccountTaken reports whether a tenant already uses the account name.
func (t *Tx) SharedAccountTaken(account string) (bool, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM tenants WHERE shared_account = ?`, account).Scan(&n)
	return n > 0, err
}

// RotateOfflineSecret replaces a tenant's shared-mode offline secret with
// secret (32 bytes) and returns its generation, one more than before.
func (t *Tx) RotateOfflineSecret(name string, secret []byte) (uint64, error) {
	if len(secret) != 32 {
		return 0, fmt.Errorf("store: offline secret of %d bytes", len(secret))
	}
	var gen uint64
	err := t.row(`UPDATE tenants SET offline_secret = ?, offline_generation = offline_generation + 1
		WHERE name = ? RETURNING offline_generation`, secret, name).Scan(&gen)
	if err != nil {
		return 0, notFound(err, "tenant "+name)
	}
	return gen, nil
}
