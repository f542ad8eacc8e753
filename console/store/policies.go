package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jitkey/jitkey/protocol"
)

// PolicyRow is a published, signed tenant policy.
type PolicyRow struct {
	Tenant  string
	Version uint64
	Signed  protocol.Signed
	Created int64
}

// InsertPolicy publishes a signed policy. Its version must be higher than
// every version published for the tenant (ErrPolicyVersion); the schema
// enforces the same rule with a trigger.
func (t *Tx) InsertPolicy(p *PolicyRow) error {
	cur, err := t.PolicyVersion(p.Tenant)
	if err != nil {
		return err
	}
	if p.Version <= cur {
		return fmt.Errorf("%w: tenant %s version %d after %d", ErrPolicyVersion, p.Tenant, p.Version, cur)
	}
	enc, err := p.Signed.Encode()
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO policies(tenant, version, signed, created) VALUES (?,?,?,?)`,
		p.Tenant, p.Version, enc, p.Created)
	if err != nil && strings.Contains(err.Error(), "policy version must increase") {
		return fmt.Errorf("%w: %v", ErrPolicyVersion, err)
	}
	if err != nil {
		return fmt.Errorf("store: insert policy: %w", err)
	}
	return nil
}

// PolicyVersion returns the tenant's latest published version (0 if none).
func (t *Tx) PolicyVersion(tenant string) (uint64, error) {
	var v sql.NullInt64
	if err := t.row(`SELECT MAX(version) FROM policies WHERE tenant = ?`, tenant).Scan(&v); err != nil {
		return 0, err
	}
	return uint64(v.Int64), nil
}

// LatestPolicy returns the tenant's latest published policy.
func (t *Tx) LatestPolicy(tenant string) (*PolicyRow, error) {
	p := PolicyRow{Tenant: tenant}
	var enc []byte
	err := t.row(`SELECT version, signed, created FROM policies WHERE tenant = ? ORDER BY version DESC LIMIT 1`, tenant).
		Scan(&p.Version, &enc, &p.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: policy of tenant %s", ErrNotFound, tenant)
	}
	if err != nil {
		return nil, err
	}
	if p.Signed, err = protocol.DecodeSigned(enc); err != nil {
		return nil, err
	}
	return &p, nil
}

// PolicyAt returns the tenant's policy of one version.
func (t *Tx) PolicyAt(tenant string, version uint64) (*PolicyRow, error) {
	p := PolicyRow{Tenant: tenant, Version: version}
	var enc []byte
	err := t.row(`SELECT signed, created FROM policies WHERE tenant = ? AND version = ?`, tenant, version).Scan(&enc, &p.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: policy of tenant %s version %d", ErrNotFound, tenant, version)
	}
	if err != nil {
		return nil, err
	}
	if p.Signed, err = protocol.DecodeSigned(enc); err != nil {
		return nil, err
	}
	return &p, nil
}
