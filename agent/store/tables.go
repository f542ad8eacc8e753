package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// Meta returns the value stored under key, or ErrNotFound.
func (t *Tx) Meta(key string) ([]byte, error) {
	var v []byte
	err := t.tx.QueryRow("SELECT v FROM meta WHERE k = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: meta %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta stores value under key.
func (t *Tx) SetMeta(key string, value []byte) error {
	return t.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", key, value)
}

// PolicyRow is the applied policy of a tenant.
type PolicyRow struct {
	Tenant  string
	Version uint64
	Signed  []byte // canonical CBOR of the protocol.Signed document
	Applied time.Time
}

// Policy returns the policy held for tenant, or ErrNotFound.
func (t *Tx) Policy(tenant string) (PolicyRow, error) {
	r := PolicyRow{Tenant: tenant}
	var v, at int64
	err := t.tx.QueryRow("SELECT version, signed, applied FROM policy WHERE tenant = ?", tenant).Scan(&v, &r.Signed, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: policy of %s", ErrNotFound, tenant)
	}
	if err != nil {
		return r, fmt.Errorf("store: policy: %w", err)
	}
	r.Version, r.Applied = uint64(v), time.UnixMilli(at)
	return r, nil
}

// PutPolicy replaces the policy held for r.Tenant.
func (t *Tx) PutPolicy(r PolicyRow) error {
	return t.exec(`INSERT INTO policy (tenant, version, signed, applied) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET version = excluded.version, signed = excluded.signed, applied = excluded.applied`,
		r.Tenant, int64(r.Version), r.Signed, r.Applied.UnixMilli())
}

// Account states.
const (
	// StateReserved: the name is set aside for an owner; no account of
	// jitkey's exists under it (SystemID is empty). A reservation does not
	// make an account that has the name jitkey's.
	StateReserved = "reserved"
	// StateCreated: jitkey's Create succeeded; the account exists,
	// disabled, with a random password nobody knows, and SystemID
	// identifies it.
	StateCreated = "created"
	// StateActivating: a session is being started; the OS account may
	// already be enabled. Recovery disables it.
	StateActivating = "activating"
	// StateActive: enabled, bound to Session until Deadline.
	StateActive = "active"
	// StateEnded: disabled, password re-randomised.
	StateEnded = "ended"
	// StateDeleted: removed from the OS after the inactivity period
	// (SystemID is empty).
	StateDeleted = "deleted"
)

// Account is one JIT account name jitkey holds for an owner, and the
// account it created under it, if any.
type Account struct {
	Name  string
	Owner string // "tech:<technician id>" or "shared"
	State string
	// SystemID is the operating system's id (accounts.Info.ID) of the
	// account jitkey created under Name, recorded with the creation; ""
	// while jitkey has created none (reserved, or before the create of an
	// activating row) and after the account is gone. An account with
	// Name but another id is not jitkey's.
	SystemID string
	Session  protocol.SessionID
	TechID   string
	Username string
	Action   uint8
	Started  time.Time
	Deadline time.Time
	Updated  time.Time
	// TechCert is the CBOR body of the technician certificate (verified
	// at login) that the session was granted under; nil outside a
	// session. A new policy decides the access rule again on it
	// (SPEC.md 4, R-47).
	TechCert []byte
}

const accountCols = "name, owner, state, session, tech_id, username, action, started, deadline, updated, system_id, tech_cert"

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var session []byte
	var started, deadline, updated int64
	if err := sc.Scan(&a.Name, &a.Owner, &a.State, &session, &a.TechID, &a.Username, &a.Action, &started, &deadline, &updated, &a.SystemID, &a.TechCert); err != nil {
		return a, err
	}
	copy(a.Session[:], session)
	a.Started, a.Deadline, a.Updated = msTime(started), msTime(deadline), msTime(updated)
	return a, nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func msInt(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (t *Tx) accountWhere(where string, arg any) (Account, error) {
	a, err := scanAccount(t.tx.QueryRow("SELECT "+accountCols+" FROM accounts WHERE "+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: account", ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: account: %w", err)
	}
	return a, nil
}

// Account returns the account named name, or ErrNotFound.
func (t *Tx) Account(name string) (Account, error) { return t.accountWhere("name = ?", name) }

// AccountByOwner returns the account owned by owner, or ErrNotFound.
func (t *Tx) AccountByOwner(owner string) (Account, error) {
	return t.accountWhere("owner = ?", owner)
}

// AccountBySession returns the account bound to session, or ErrNotFound.
func (t *Tx) AccountBySession(s protocol.SessionID) (Account, error) {
	return t.accountWhere("session = ?", s[:])
}

// Accounts returns every account, by name.
func (t *Tx) Accounts() ([]Account, error) {
	rows, err := t.tx.Query("SELECT " + accountCols + " FROM accounts ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// PutAccount inserts or replaces the account a.Name.
func (t *Tx) PutAccount(a Account) error {
	var session any
	if a.Session != (protocol.SessionID{}) {
		session = a.Session[:]
	}
	return t.exec(`INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, state = excluded.state, session = excluded.session,
		tech_id = excluded.tech_id, username = excluded.username, action = excluded.action,
		started = excluded.started, deadline = excluded.deadline, updated = excluded.updated, system_id = excluded.system_id,
		tech_cert = excluded.tech_cert`,
		a.Name, a.Owner, a.State, session, a.TechID, a.Username, a.Action, msInt(a.Started), msInt(a.Deadline), msInt(a.Updated), a.SystemID, a.TechCert)
}

// UseApproval records an approval id (a digest of the signed approval) as
// used until expires. It returns ErrReplay if the id was recorded before.
// Expired ids are pruned.
func (t *Tx) UseApproval(id []byte, now, expires time.Time) error {
	if err := t.exec("DELETE FROM used_approvals WHERE expires < ?", now.UnixMilli()); err != nil {
		return err
	}
	res, err := t.tx.Exec("INSERT INTO used_approvals (id, expires) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", id, expires.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: use approval: %w", classify(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrReplay
	}
	return nil
}

// AuditRow is one stored audit record.
type AuditRow struct {
	Seq    uint64
	Hash   [32]byte
	Record []byte // canonical CBOR of the protocol.Signed record
	Acked  bool
}

// LastAudit returns the sequence number and hash of the newest audit
// record (0 and zero for an empty log).
func (t *Tx) LastAudit() (uint64, [32]byte, error) {
	var seq int64
	var h []byte
	var out [32]byte
	err := t.tx.QueryRow("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, out, nil
	}
	if err != nil {
		return 0, out, fmt.Errorf("store: last audit: %w", err)
	}
	copy(out[:], h)
	return uint64(seq), out, nil
}

// AppendAudit stores one audit record.
func (t *Tx) AppendAudit(r AuditRow) error {
	return t.exec("INSERT INTO audit (seq, hash, record, acked) VALUES (?, ?, ?, 0)", int64(r.Seq), r.Hash[:], r.Record)
}

// Audit returns up to limit records with seq > after, oldest first;
// unackedOnly skips acknowledged ones.
func (t *Tx) Audit(after uint64, limit int, unackedOnly bool) ([]AuditRow, error) {
	q := "SELECT seq, hash, record, acked FROM audit WHERE seq > ?"
	if unackedOnly {
		q += " AND acked = 0"
	}
	rows, err := t.tx.Query(q+" ORDER BY seq LIMIT ?", int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	var out []AuditRow
	for rows.Next() {
		var r AuditRow
		var seq int64
		var h []byte
		if err := rows.Scan(&seq, &h, &r.Record, &r.Acked); err != nil {
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		r.Seq = uint64(seq)
		copy(r.Hash[:], h)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AckAudit marks every record up to and including upTo as acknowledged.
// Acknowledged records stay in the chain (their hashes link the next
// ones); only their shipping is done.
func (t *Tx) AckAudit(upTo uint64) error {
	return t.exec("UPDATE audit SET acked = 1 WHERE seq <= ? AND acked = 0", int64(upTo))
}
