package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// Tech is a technician. Grants hold per-tenant roles; a global admin has
// none (GlobalAdmin covers every tenant).
type Tech struct {
	ID          string
	Username    string
	Email       string
	GlobalAdmin bool
	Grants      []protocol.Grant // sorted by tenant
	Removed     bool
	Created     int64
}

// RoleIn returns the technician's role in a tenant ("" when not delegated).
func (t *Tech) RoleIn(tenant string) string {
	if t.GlobalAdmin {
		return protocol.RoleGlobalAdmin
	}
	for _, g := range t.Grants {
		if g.Tenant == tenant {
			return g.Role
		}
	}
	return ""
}

// TechCert is a technician certificate the console signed at pairing.
type TechCert struct {
	Serial   uint64
	TechID   string
	Cert     protocol.Signed
	Mailbox  protocol.MailboxID // the phone's relay mailbox
	NoiseKey protocol.NoiseKey
	Label    string
	NotAfter int64
	Revoked  bool
	Created  int64
}

// InsertTech adds a technician with its grants.
func (t *Tx) InsertTech(tc *Tech) error {
	_, err := t.exec(`INSERT INTO techs(id, username, email, global_admin, created) VALUES (?,?,?,?,?)`,
		tc.ID, tc.Username, tc.Email, b2i(tc.GlobalAdmin), tc.Created)
	if isUnique(err) {
		return fmt.Errorf("%w: technician %s", ErrExists, tc.Username)
	}
	if err != nil {
		return fmt.Errorf("store: insert technician: %w", err)
	}
	for _, g := range tc.Grants {
		if _, err := t.exec(`INSERT INTO grants(tech_id, tenant, role) VALUES (?,?,?)`, tc.ID, g.Tenant, g.Role); err != nil {
			return fmt.Errorf("store: grant %s in %s: %w", g.Role, g.Tenant, err)
		}
	}
	return nil
}

// MarkTechRemoved marks a technician removed; the row stays for the audit trail.
func (t *Tx) MarkTechRemoved(id string) error {
	_, err := t.exec(`UPDATE techs SET removed = 1 WHERE id = ?`, id)
	return err
}

func (t *Tx) loadGrants(tc *Tech) error {
	rows, err := t.query(`SELECT tenant, role FROM grants WHERE tech_id = ? ORDER BY tenant`, tc.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var g protocol.Grant
		if err := rows.Scan(&g.Tenant, &g.Role); err != nil {
			return err
		}
		tc.Grants = append(tc.Grants, g)
	}
	return rows.Err()
}

const techCols = `id, username, email, global_admin, removed, created`

func (t *Tx) techWhere(where string, arg any) (*Tech, error) {
	var tc Tech
	err := t.row(`SELECT `+techCols+` FROM techs WHERE `+where, arg).
		Scan(&tc.ID, &tc.Username, &tc.Email, &tc.GlobalAdmin, &tc.Removed, &tc.Created)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("technician %v", arg))
	}
	return &tc, t.loadGrants(&tc)
}

// TechByUsername returns a technician by username (removed ones included).
func (t *Tx) TechByUsername(u string) (*Tech, error) { return t.techWhere("username = ?", u) }

// TechByID returns a technician by id.
func (t *Tx) TechByID(id string) (*Tech, error) { return t.techWhere("id = ?", id) }

// Techs returns every technician, by username.
func (t *Tx) Techs() ([]*Tech, error) {
	rows, err := t.query(`SELECT ` + techCols + ` FROM techs ORDER BY username`)
	if err != nil {
		return nil, err
	}
	var out []*Tech
	for rows.Next() {
		var tc Tech
		if err := rows.Scan(&tc.ID, &tc.Username, &tc.Email, &tc.GlobalAdmin, &tc.Removed, &tc.Created); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, &tc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, tc := range out {
		if err := t.loadGrants(tc); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InsertTechCert records a signed technician certificate.
func (t *Tx) InsertTechCert(c *TechCert) error {
	enc, err := c.Cert.Encode()
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO tech_certs(serial, tech_id, cert, mailbox, noise_key, label, not_after, created)
		VALUES (?,?,?,?,?,?,?,?)`, c.Serial, c.TechID, enc, c.Mailbox[:], c.NoiseKey[:], c.Label, c.NotAfter, c.Created)
	if err != nil {
		return fmt.Errorf("store: insert technician certificate: %w", err)
	}
	return nil
}

// RevokeTechCert marks a certificate revoked.
func (t *Tx) RevokeTechCert(serial uint64) error {
	_, err := t.exec(`UPDATE tech_certs SET revoked = 1 WHERE serial = ?`, serial)
	return err
}

const certCols = `serial, tech_id, cert, mailbox, noise_key, label, not_after, revoked, created`

func scanCert(s scanner) (*TechCert, error) {
	var c TechCert
	var enc, mb, nk []byte
	if err := s.Scan(&c.Serial, &c.TechID, &enc, &mb, &nk, &c.Label, &c.NotAfter, &c.Revoked, &c.Created); err != nil {
		return nil, err
	}
	var err error
	if c.Cert, err = protocol.DecodeSigned(enc); err != nil {
		return nil, err
	}
	copy(c.Mailbox[:], mb)
	copy(c.NoiseKey[:], nk)
	return &c, nil
}

func (t *Tx) certs(where string, args ...any) ([]*TechCert, error) {
	rows, err := t.query(`SELECT `+certCols+` FROM tech_certs WHERE `+where+` ORDER BY serial`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*TechCert
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// TechCerts returns a technician's certificates, oldest first.
func (t *Tx) TechCerts(techID string) ([]*TechCert, error) { return t.certs("tech_id = ?", techID) }

// ActiveCerts returns every unrevoked certificate valid at now, oldest first.
func (t *Tx) ActiveCerts(now int64) ([]*TechCert, error) {
	return t.certs("revoked = 0 AND not_after >= ?", now)
}

// RevokedCerts returns revoked certificates still within their validity.
func (t *Tx) RevokedCerts(now int64) ([]*TechCert, error) {
	return t.certs("revoked = 1 AND not_after >= ?", now)
}

// ActiveCertByMailbox returns the unrevoked certificate of the phone with
// that relay mailbox.
func (t *Tx) ActiveCertByMailbox(mb protocol.MailboxID, now int64) (*TechCert, error) {
	cs, err := t.certs("revoked = 0 AND not_after >= ? AND mailbox = ?", now, mb[:])
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%w: phone %s", ErrNotFound, mb)
	}
	return cs[len(cs)-1], nil
}

// PhoneAck returns the policy version a phone acknowledged for a tenant.
func (t *Tx) PhoneAck(serial uint64, tenant string) (uint64, error) {
	var v uint64
	err := t.row(`SELECT version FROM phone_acks WHERE serial = ? AND tenant = ?`, serial, tenant).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// SetPhoneAck records the policy version a phone acknowledged; it never
// moves backwards.
func (t *Tx) SetPhoneAck(serial uint64, tenant string, version uint64) error {
	_, err := t.exec(`INSERT INTO phone_acks(serial, tenant, version) VALUES (?,?,?)
		ON CONFLICT(serial, tenant) DO UPDATE SET version = MAX(version, excluded.version)`, serial, tenant, version)
	return err
}
