package store

import (
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// Device is an enrolled computer.
type Device struct {
	ID           protocol.DeviceID
	Tenant       string
	Name         string
	OS           string
	DomainJoined bool
	DC           bool
	Serial       uint64
	Cert         protocol.Signed
	NoiseKey     protocol.NoiseKey
	IdentityKey  protocol.IdentityKey
	Mailbox      protocol.MailboxID
	Relay        string
	Enrolled     int64
	LastSeen     int64
	AckedVersion uint64 // policy version the agent reported holding
	CustomShare  bool   // false: the default list [all-admins, all-users]
	Shares       []string
	// Removed is when the MSP removed the device (Unix seconds; 0 while
	// it is enrolled) and RemovedVersion the tenant policy version that
	// revoked its certificate (SPEC.md 11.10).
	Removed        int64
	RemovedVersion uint64
}

// Addr is where the agent can be reached.
func (d *Device) Addr() protocol.PeerAddr {
	return protocol.PeerAddr{Relay: d.Relay, Mailbox: d.Mailbox}
}

// InsertDevice records an enrolled device.
func (t *Tx) InsertDevice(d *Device) error {
	enc, err := d.Cert.Encode()
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO devices(id, tenant, name, os, domain_joined, dc, serial, cert, noise_key,
		identity_key, mailbox, relay, enrolled, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.ID[:], d.Tenant, d.Name, d.OS, b2i(d.DomainJoined), b2i(d.DC), d.Serial, enc, d.NoiseKey[:],
		d.IdentityKey[:], d.Mailbox[:], d.Relay, d.Enrolled, d.LastSeen)
	if isUnique(err) {
		return fmt.Errorf("%w: device with this identity key", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: insert device: %w", err)
	}
	return nil
}

const deviceCols = `id, tenant, name, os, domain_joined, dc, serial, cert, noise_key, identity_key,
	mailbox, relay, enrolled, last_seen, acked_version, custom_share, removed, removed_version`

func (t *Tx) devices(where string, args ...any) ([]*Device, error) {
	rows, err := t.query(`SELECT `+deviceCols+` FROM devices WHERE `+where+` ORDER BY tenant, name, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*Device
	for rows.Next() {
		var d Device
		var id, enc, nk, ik, mb []byte
		if err := rows.Scan(&id, &d.Tenant, &d.Name, &d.OS, &d.DomainJoined, &d.DC, &d.Serial, &enc, &nk,
			&ik, &mb, &d.Relay, &d.Enrolled, &d.LastSeen, &d.AckedVersion, &d.CustomShare, &d.Removed, &d.RemovedVersion); err != nil {
			rows.Close()
			return nil, err
		}
		copy(d.ID[:], id)
		copy(d.NoiseKey[:], nk)
		copy(d.IdentityKey[:], ik)
		copy(d.Mailbox[:], mb)
		if d.Cert, err = protocol.DecodeSigned(enc); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, &d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range out {
		if err := t.loadShares(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *Tx) loadShares(d *Device) error {
	d.Shares = nil
	if !d.CustomShare {
		d.Shares = []string{protocol.ShareAllAdmins, protocol.ShareAllUsers}
		return nil
	}
	rows, err := t.query(`SELECT entry FROM shares WHERE device_id = ? ORDER BY entry`, d.ID[:])
	if err != nil {
		return err
	}
	defer rows.Close()
	d.Shares = []string{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return err
		}
		d.Shares = append(d.Shares, e)
	}
	return rows.Err()
}

func one(ds []*Device, err error, what string) (*Device, error) {
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: device %s", ErrNotFound, what)
	}
	return ds[0], nil
}

// Device returns a device by id, removed or not.
func (t *Tx) Device(id protocol.DeviceID) (*Device, error) {
	ds, err := t.devices("id = ?", id[:])
	return one(ds, err, fmt.Sprintf("%x", id))
}

// DeviceByMailbox returns the device whose agent has that relay mailbox,
// removed or not.
func (t *Tx) DeviceByMailbox(mb protocol.MailboxID) (*Device, error) {
	ds, err := t.devices("mailbox = ?", mb[:])
	return one(ds, err, mb.String())
}

// Devices returns the enrolled (not removed) devices of a tenant, or of
// all tenants when tenant is "".
func (t *Tx) Devices(tenant string) ([]*Device, error) {
	if tenant == "" {
		return t.devices("removed = 0")
	}
	return t.devices("removed = 0 AND tenant = ?", tenant)
}

// AllDevices returns the devices of a tenant (every tenant when tenant is
// ""), removed ones included.
func (t *Tx) AllDevices(tenant string) ([]*Device, error) {
	if tenant == "" {
		return t.devices("1 = 1")
	}
	return t.devices("tenant = ?", tenant)
}

// MarkDeviceRemoved records that the device was removed at now and that
// policy version revoked it. The row stays for the audit trail.
func (t *Tx) MarkDeviceRemoved(id protocol.DeviceID, now int64, version uint64) error {
	res, err := t.exec(`UPDATE devices SET removed = ?, removed_version = ? WHERE id = ? AND removed = 0`, now, version, id[:])
	if err != nil {
		return fmt.Errorf("store: remove device: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: enrolled device %x", ErrNotFound, id)
	}
	return nil
}

// TouchDevice records that the agent was seen, with what it reports.
func (t *Tx) TouchDevice(id protocol.DeviceID, name, os string, now int64, acked uint64) error {
	_, err := t.exec(`UPDATE devices SET last_seen = MAX(last_seen, ?), acked_version = MAX(acked_version, ?),
		name = CASE WHEN ? = '' THEN name ELSE ? END, os = CASE WHEN ? = '' THEN os ELSE ? END WHERE id = ?`,
		now, acked, name, name, os, os, id[:])
	return err
}

// SetDeviceAck records the policy version a device acknowledged.
func (t *Tx) SetDeviceAck(id protocol.DeviceID, version uint64, now int64) error {
	_, err := t.exec(`UPDATE devices SET acked_version = MAX(acked_version, ?), last_seen = MAX(last_seen, ?) WHERE id = ?`,
		version, now, id[:])
	return err
}

// SetShares replaces a device's share list; nil restores the default.
func (t *Tx) SetShares(id protocol.DeviceID, entries []string) error {
	if _, err := t.exec(`DELETE FROM shares WHERE device_id = ?`, id[:]); err != nil {
		return err
	}
	if _, err := t.exec(`UPDATE devices SET custom_share = ? WHERE id = ?`, b2i(entries != nil), id[:]); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := t.exec(`INSERT INTO shares(device_id, entry) VALUES (?, ?)`, id[:], e); err != nil {
			return fmt.Errorf("store: share entry %s: %w", e, err)
		}
	}
	return nil
}
