package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// DomainAccount is a DC agent's record of one JIT domain account
// (SPEC.md 11.7).
type DomainAccount struct {
	Name   string
	TechID string
	// LastUse is when the agent last granted a session on the account, or
	// first saw it in the directory: jitkey's own "last use", from which
	// InactivityDays counts.
	LastUse time.Time
	// Session is the live session's id; zero outside a session.
	Session protocol.SessionID
	// Workstation is the KK static key of the workstation that opened the
	// live session (only it may end it).
	Workstation protocol.NoiseKey
	// Expires is when the live session ends by itself.
	Expires time.Time
}

// Live reports whether the record holds a live session.
func (a DomainAccount) Live() bool { return a.Session != (protocol.SessionID{}) }

const domainCols = "name, tech_id, last_use, session, workstation, expires"

func scanDomain(sc interface{ Scan(...any) error }) (DomainAccount, error) {
	var a DomainAccount
	var session, ws []byte
	var last, exp int64
	if err := sc.Scan(&a.Name, &a.TechID, &last, &session, &ws, &exp); err != nil {
		return a, err
	}
	copy(a.Session[:], session)
	copy(a.Workstation[:], ws)
	a.LastUse, a.Expires = msTime(last), msTime(exp)
	return a, nil
}

// DomainAccount returns the record of name, or ErrNotFound.
func (t *Tx) DomainAccount(name string) (DomainAccount, error) {
	a, err := scanDomain(t.tx.QueryRow("SELECT "+domainCols+" FROM domain_accounts WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("store: domain account: %w", classify(err))
	}
	return a, nil
}

// DomainAccounts returns every record, by name.
func (t *Tx) DomainAccounts() ([]DomainAccount, error) {
	rows, err := t.tx.Query("SELECT " + domainCols + " FROM domain_accounts ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: domain accounts: %w", classify(err))
	}
	defer rows.Close()
	var out []DomainAccount
	for rows.Next() {
		a, err := scanDomain(rows)
		if err != nil {
			return nil, fmt.Errorf("store: domain accounts: %w", classify(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: domain accounts: %w", classify(err))
	}
	return out, nil
}

// PutDomainAccount inserts or replaces the record of a.Name.
func (t *Tx) PutDomainAccount(a DomainAccount) error {
	var session, ws any
	if a.Live() {
		session, ws = a.Session[:], a.Workstation[:]
	}
	return t.exec(`INSERT INTO domain_accounts (`+domainCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET tech_id = excluded.tech_id, last_use = excluded.last_use,
		session = excluded.session, workstation = excluded.workstation, expires = excluded.expires`,
		a.Name, a.TechID, msInt(a.LastUse), session, ws, msInt(a.Expires))
}

// DeleteDomainAccount removes the record of name.
func (t *Tx) DeleteDomainAccount(name string) error {
	return t.exec("DELETE FROM domain_accounts WHERE name = ?", name)
}

// DomainWorkstation is a device certificate a DC agent accepts FlowDomain
// from: its mailbox (from the identity key) and its Noise static key.
type DomainWorkstation struct {
	Mailbox protocol.MailboxID
	Noise   protocol.NoiseKey
	Cert    []byte // the encoded Signed DeviceCert
}

// SetDomainWorkstations replaces the list of workstations.
func (t *Tx) SetDomainWorkstations(ws []DomainWorkstation) error {
	if err := t.exec("DELETE FROM domain_workstations"); err != nil {
		return err
	}
	for _, w := range ws {
		if err := t.exec("INSERT OR REPLACE INTO domain_workstations (mailbox, noise, cert) VALUES (?, ?, ?)", w.Mailbox[:], w.Noise[:], w.Cert); err != nil {
			return err
		}
	}
	return nil
}

// DomainWorkstation returns the workstation with that mailbox, or
// ErrNotFound.
func (t *Tx) DomainWorkstation(m protocol.MailboxID) (DomainWorkstation, error) {
	w := DomainWorkstation{Mailbox: m}
	var noise []byte
	err := t.tx.QueryRow("SELECT noise, cert FROM domain_workstations WHERE mailbox = ?", m[:]).Scan(&noise, &w.Cert)
	if errors.Is(err, sql.ErrNoRows) {
		return w, ErrNotFound
	}
	if err != nil {
		return w, fmt.Errorf("store: domain workstation: %w", classify(err))
	}
	copy(w.Noise[:], noise)
	return w, nil
}

// DomainWorkstations lists the FlowDomain peers SetDomainWorkstations
// stored, by mailbox. On a DC agent they are the workstations; a
// workstation agent keeps its tenant's DC agents in the same table.
func (t *Tx) DomainWorkstations() ([]DomainWorkstation, error) {
	rows, err := t.tx.Query("SELECT mailbox, noise, cert FROM domain_workstations ORDER BY mailbox")
	if err != nil {
		return nil, fmt.Errorf("store: domain workstations: %w", classify(err))
	}
	defer rows.Close()
	var out []DomainWorkstation
	for rows.Next() {
		var w DomainWorkstation
		var mb, noise []byte
		if err := rows.Scan(&mb, &noise, &w.Cert); err != nil {
			return nil, fmt.Errorf("store: domain workstations: %w", classify(err))
		}
		copy(w.Mailbox[:], mb)
		copy(w.Noise[:], noise)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: domain workstations: %w", classify(err))
	}
	return out, nil
}
