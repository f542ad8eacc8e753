package store

import (
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// Token is an agent enrollment token as the console keeps it: derived id,
// session id and PSK, never the secret itself.
type Token struct {
	ID       []byte
	Session  protocol.SessionID
	PSK      []byte
	Tenant   string
	Expires  int64
	Uses     int
	UsesLeft int
	Created  int64
}

// InsertToken stores a new enrollment token.
func (t *Tx) InsertToken(k *Token) error {
	_, err := t.exec(`INSERT INTO tokens(token_id, session_id, psk, tenant, expires, uses, uses_left, created)
		VALUES (?,?,?,?,?,?,?,?)`, k.ID, k.Session[:], k.PSK, k.Tenant, k.Expires, k.Uses, k.UsesLeft, k.Created)
	if err != nil {
		return fmt.Errorf("store: insert token: %w", err)
	}
	return nil
}

const tokenCols = `token_id, session_id, psk, tenant, expires, uses, uses_left, created`

func scanToken(s scanner) (*Token, error) {
	var k Token
	var sid []byte
	if err := s.Scan(&k.ID, &sid, &k.PSK, &k.Tenant, &k.Expires, &k.Uses, &k.UsesLeft, &k.Created); err != nil {
		return nil, err
	}
	copy(k.Session[:], sid)
	return &k, nil
}

// TokenBySession returns the token with that enrollment session id.
func (t *Tx) TokenBySession(id protocol.SessionID) (*Token, error) {
	k, err := scanToken(t.row(`SELECT `+tokenCols+` FROM tokens WHERE session_id = ?`, id[:]))
	if err != nil {
		return nil, notFound(err, "enrollment token")
	}
	return k, nil
}

// Tokens returns every token, newest first.
func (t *Tx) Tokens() ([]*Token, error) {
	rows, err := t.query(`SELECT ` + tokenCols + ` FROM tokens ORDER BY created DESC, token_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// UseToken consumes one use of a token.
func (t *Tx) UseToken(id []byte) error {
	res, err := t.exec(`UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id = ? AND uses_left > 0`, id)
	if err != nil {
		return fmt.Errorf("store: use token: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: usable token", ErrNotFound)
	}
	return nil
}

// Pairing is a pending phone pairing code (derived values only).
type Pairing struct {
	CodeID  []byte
	Session protocol.SessionID
	PSK     []byte
	TechID  string
	Expires int64
	Used    bool
	Created int64
}

// InsertPairing stores a new pairing code.
func (t *Tx) InsertPairing(p *Pairing) error {
	_, err := t.exec(`INSERT INTO pairings(code_id, session_id, psk, tech_id, expires, created) VALUES (?,?,?,?,?,?)`,
		p.CodeID, p.Session[:], p.PSK, p.TechID, p.Expires, p.Created)
	if err != nil {
		return fmt.Errorf("store: insert pairing: %w", err)
	}
	return nil
}

// PairingBySession returns the pairing code with that session id.
func (t *Tx) PairingBySession(id protocol.SessionID) (*Pairing, error) {
	var p Pairing
	var sid []byte
	err := t.row(`SELECT code_id, session_id, psk, tech_id, expires, used, created FROM pairings WHERE session_id = ?`, id[:]).
		Scan(&p.CodeID, &sid, &p.PSK, &p.TechID, &p.Expires, &p.Used, &p.Created)
	if err != nil {
		return nil, notFound(err, "pairing code")
	}
	copy(p.Session[:], sid)
	return &p, nil
}

// UsePairing marks a pairing code used; it fails if it already was.
func (t *Tx) UsePairing(codeID []byte) error {
	res, err := t.exec(`UPDATE pairings SET used = 1 WHERE code_id = ? AND used = 0`, codeID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: unused pairing code", ErrNotFound)
	}
	return nil
}
