package protocol

import (
	"context"
	"errors"
	"fmt"
)

// Paged transfers (SPEC.md 8.3). The console sends a phone its whole view
// — the policies of the tenants the technician may see, those tenants'
// device certificates (the directory) and the technician's offline keys —
// as one transfer of pages, each a message within MaxMessageSize:
//
//	pairing:     PairResponse (page 0) [PolicyPush page 1 ... PolicyPush page n]
//	sync, push:  PolicyPush page 0 [PolicyPush page 1 ... PolicyPush page n]
//
// Every page but the last has More set; the receiver answers each such
// page with PageAck{Page}, and the sender never has more than PageWindow
// pages sent and unacknowledged. The receiver takes the transfer as a
// whole once its last page arrived and every page checked out, and
// otherwise keeps what it held.

// Bounds of a transfer.
const (
	// PageBudget bounds the documents of one page: the sum of the encoded
	// sizes of its policies, device certificates and offline keys. It is
	// 4 KiB below MaxMessageSize (and below MaxTransportPlain less the
	// message type byte), which leaves room for the rest of the message:
	// list headers, page fields and, in a PairResponse, the technician
	// certificate, MSP key, organisation name and console key. A signed
	// policy larger than PageBudget cannot be sent; the console refuses to
	// sign one.
	PageBudget = MaxMessageSize - 4<<10
	// MaxPages bounds the pages of one transfer (MaxPages × PageBudget is
	// 56 MiB, about 240 000 device certificates).
	MaxPages = 1024
	// PageWindow is the most pages a sender may have sent without having
	// received their PageAck. Four pages (under 256 KiB on the wire) stay
	// within a relay's per-recipient queue and a channel's receive queue.
	PageWindow = 4
)

// ErrPageSequence is returned for a page that does not continue its
// transfer (missing, repeated or reordered; a first page other than 0; a
// page after the last; more than MaxPages), for a PageAck that does not
// name the oldest unacknowledged page, and for a transfer that ended
// before its last page.
var ErrPageSequence = errors.New("protocol: transfer page out of sequence")

// ErrDuplicateDoc is returned for a transfer that carries two policies of
// one tenant, two device certificates with one device id, or two offline
// keys of one tenant, on one page or across pages.
var ErrDuplicateDoc = errors.New("protocol: document repeated in a transfer")

// Paginate cuts a phone's view into the pages of one transfer: policies
// first, then device certificates, then offline keys, in the order given,
// each page taking documents until the next would bring the sum of their
// encoded sizes above budget. budget is PageBudget when zero, negative or
// larger. There is always at least one page; Page and More are set. A
// single document larger than budget is an error wrapping
// ErrFrameTooLarge.
func Paginate(policies, directory []Signed, secrets []TenantSecret, budget int) ([]PolicyPush, error) {
	if budget <= 0 || budget > PageBudget {
		budget = PageBudget
	}
	pages := []PolicyPush{{Policies: []Signed{}, Directory: []Signed{}}}
	used := 0
	room := func(v any) (*PolicyPush, error) {
		b, err := Marshal(v)
		if err != nil {
			return nil, err
		}
		if len(b) > budget {
			return nil, fmt.Errorf("%w: %T of %d bytes does not fit in a page of %d", ErrFrameTooLarge, v, len(b), budget)
		}
		if used+len(b) > budget {
			pages = append(pages, PolicyPush{Policies: []Signed{}, Directory: []Signed{}})
			used = 0
		}
		used += len(b)
		return &pages[len(pages)-1], nil
	}
	for i := range policies {
		p, err := room(&policies[i])
		if err != nil {
			return nil, fmt.Errorf("protocol: paginate policy %d: %w", i, err)
		}
		p.Policies = append(p.Policies, policies[i])
	}
	for i := range directory {
		p, err := room(&directory[i])
		if err != nil {
			return nil, fmt.Errorf("protocol: paginate device certificate %d: %w", i, err)
		}
		p.Directory = append(p.Directory, directory[i])
	}
	for i := range secrets {
		p, err := room(&secrets[i])
		if err != nil {
			return nil, fmt.Errorf("protocol: paginate offline key %d: %w", i, err)
		}
		p.OfflineSecrets = append(p.OfflineSecrets, secrets[i])
	}
	if len(pages) > MaxPages {
		return nil, fmt.Errorf("protocol: paginate: %d pages, at most %d", len(pages), MaxPages)
	}
	for i := range pages {
		pages[i].Page, pages[i].More = uint32(i), i < len(pages)-1
	}
	return pages, nil
}

// Page returns the transfer page a PairResponse carries (page 0).
func (r *PairResponse) Page() *PolicyPush {
	return &PolicyPush{Policies: r.Policies, Directory: r.Directory, OfflineSecrets: r.OfflineSecrets, More: r.More}
}

// SetPage puts a transfer's page 0 into r.
func (r *PairResponse) SetPage(p *PolicyPush) {
	r.Policies, r.Directory, r.OfflineSecrets, r.More = p.Policies, p.Directory, p.OfflineSecrets, p.More
}

// MsgConn is a session that sends and receives protocol messages;
// *channel.Conn implements it.
type MsgConn interface {
	Send(ctx context.Context, t MsgType, body any) error
	Recv(ctx context.Context, want MsgType, body any) error
}

// SendTransfer sends the pages of one transfer in order: page 0 inside
// pair when pair is not nil (pairing), as a PolicyPush otherwise, and the
// others as PolicyPush. It reads the PageAck of every page that has More
// set, in order, keeping at most PageWindow pages unacknowledged, and
// returns once all of them arrived (the last page has no PageAck; the
// caller reads what follows it, if anything). A MsgError from the receiver
// is returned as *PeerError.
func SendTransfer(ctx context.Context, c MsgConn, pair *PairResponse, pages []PolicyPush) error {
	if len(pages) == 0 {
		return errors.New("protocol: transfer without pages")
	}
	var unacked []uint32 // pages sent with More set and not yet acknowledged, oldest first
	recvAck := func() error {
		var a PageAck
		if err := c.Recv(ctx, MsgPageAck, &a); err != nil {
			return err
		}
		if a.Page != unacked[0] {
			return fmt.Errorf("%w: PageAck for page %d, want %d", ErrPageSequence, a.Page, unacked[0])
		}
		unacked = unacked[1:]
		return nil
	}
	for i := range pages {
		for len(unacked) >= PageWindow {
			if err := recvAck(); err != nil {
				return err
			}
		}
		p := &pages[i]
		var err error
		if i == 0 && pair != nil {
			r := *pair
			r.SetPage(p)
			err = c.Send(ctx, MsgPairResponse, &r)
		} else {
			err = c.Send(ctx, MsgPolicyPush, p)
		}
		if err != nil {
			return err
		}
		if p.More {
			unacked = append(unacked, p.Page)
		}
	}
	for len(unacked) > 0 {
		if err := recvAck(); err != nil {
			return err
		}
	}
	return nil
}

// Transfer checks and collects the pages of one transfer on the receiving
// side. Each page must be the next one (0, 1, 2, ...; at most MaxPages),
// and each document on it must verify with the MSP key as its type
// (policies must also pass Policy.Check) and must not repeat a tenant's
// policy, a device's certificate or a tenant's offline key already
// received. The first failure is final: every later call returns it, and
// the caller must discard the whole transfer.
type Transfer struct {
	msp  IdentityKey
	next uint32 // index of the page expected next
	done bool   // the last page arrived
	err  error

	// The documents received so far, in order; the whole view once Done
	// reports true.
	Policies       []Signed
	PolicyDocs     []Policy // Policies, decoded
	Directory      []Signed
	OfflineSecrets []TenantSecret

	tenants, secretTenants map[string]bool
	devices                map[DeviceID]bool
}

// NewTransfer starts receiving a transfer whose documents are signed by
// msp.
func NewTransfer(msp IdentityKey) *Transfer {
	return &Transfer{msp: msp, tenants: map[string]bool{}, secretTenants: map[string]bool{}, devices: map[DeviceID]bool{}}
}

// Pages returns how many pages were added.
func (t *Transfer) Pages() int { return int(t.next) }

// Done reports whether the last page arrived and every page checked out.
func (t *Transfer) Done() bool { return t.done && t.err == nil }

// Add checks and takes the next page.
func (t *Transfer) Add(p *PolicyPush) error {
	if t.err == nil {
		t.err = t.add(p)
	}
	return t.err
}

func (t *Transfer) add(p *PolicyPush) error {
	switch {
	case t.done:
		return fmt.Errorf("%w: page %d after the last page", ErrPageSequence, p.Page)
	case p.Page != t.next:
		return fmt.Errorf("%w: page %d, want page %d", ErrPageSequence, p.Page, t.next)
	case p.More && p.Page+1 >= MaxPages:
		return fmt.Errorf("%w: more than %d pages", ErrPageSequence, MaxPages)
	}
	docs := make([]Policy, len(p.Policies))
	for i, s := range p.Policies {
		if err := s.VerifyEd25519(DocPolicy, t.msp, &docs[i]); err != nil {
			return fmt.Errorf("page %d: policy: %w", p.Page, err)
		}
		if err := docs[i].Check(); err != nil {
			return fmt.Errorf("page %d: %w", p.Page, err)
		}
		if t.tenants[docs[i].Tenant] {
			return fmt.Errorf("%w: second policy of tenant %q", ErrDuplicateDoc, docs[i].Tenant)
		}
		t.tenants[docs[i].Tenant] = true
	}
	for _, s := range p.Directory {
		var d DeviceCert
		if err := s.VerifyEd25519(DocDeviceCert, t.msp, &d); err != nil {
			return fmt.Errorf("page %d: device certificate: %w", p.Page, err)
		}
		if t.devices[d.DeviceID] {
			return fmt.Errorf("%w: second certificate of device %x", ErrDuplicateDoc, d.DeviceID[:])
		}
		t.devices[d.DeviceID] = true
	}
	for _, s := range p.OfflineSecrets {
		if t.secretTenants[s.Tenant] {
			return fmt.Errorf("%w: second offline key of tenant %q", ErrDuplicateDoc, s.Tenant)
		}
		t.secretTenants[s.Tenant] = true
	}
	t.Policies = append(t.Policies, p.Policies...)
	t.PolicyDocs = append(t.PolicyDocs, docs...)
	t.Directory = append(t.Directory, p.Directory...)
	t.OfflineSecrets = append(t.OfflineSecrets, p.OfflineSecrets...)
	t.next++
	t.done = !p.More
	return nil
}

// Finish returns nil if the transfer is complete: its last page arrived
// and every page checked out. Otherwise it returns the first failure, or
// ErrPageSequence if the transfer stopped before its last page.
func (t *Transfer) Finish() error {
	switch {
	case t.err != nil:
		return t.err
	case !t.done:
		return fmt.Errorf("%w: transfer ended after %d pages, before its last", ErrPageSequence, t.next)
	}
	return nil
}

// Receive reads the transfer's pages from c until the last one: it
// acknowledges each page added so far that has More set with a PageAck,
// then receives and adds the next PolicyPush. Call it after adding page 0
// when that came in a PairResponse, or on a fresh Transfer when page 0 is
// a PolicyPush. It returns Finish's result, or the session's error (a
// MsgError from the sender as *PeerError).
func (t *Transfer) Receive(ctx context.Context, c MsgConn) error {
	for t.err == nil && !t.done {
		if t.next > 0 {
			if err := c.Send(ctx, MsgPageAck, &PageAck{Page: t.next - 1}); err != nil {
				return err
			}
		}
		var p PolicyPush
		if err := c.Recv(ctx, MsgPolicyPush, &p); err != nil {
			return err
		}
		t.Add(&p)
	}
	return t.Finish()
}
