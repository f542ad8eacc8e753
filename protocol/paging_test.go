package protocol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// view is a phone's view for the paging tests: policies of tenants t000,
// t001, ..., devices spread over them, and one offline key per tenant.
type view struct {
	policies, directory []Signed
	secrets             []TenantSecret
}

func (f *fixture) view(t testing.TB, tenants, devices int) view {
	t.Helper()
	var v view
	for i := range tenants {
		p := f.policy
		p.Tenant = fmt.Sprintf("t%03d", i)
		s, err := SignEd25519(DocPolicy, &p, f.msp)
		if err != nil {
			t.Fatal(err)
		}
		v.policies = append(v.policies, s)
		v.secrets = append(v.secrets, TenantSecret{Tenant: p.Tenant, Secret: detrand.Bytes("secret-"+p.Tenant, 32)})
	}
	for i := range devices {
		d := f.device
		d.Serial = uint64(100 + i)
		d.Name = fmt.Sprintf("PC-%05d", i)
		d.Tenant = fmt.Sprintf("t%03d", i%max(tenants, 1))
		copy(d.DeviceID[:], detrand.Bytes(fmt.Sprintf("device-%d", i), 16))
		s, err := SignEd25519(DocDeviceCert, &d, f.msp)
		if err != nil {
			t.Fatal(err)
		}
		v.directory = append(v.directory, s)
	}
	return v
}

func (v view) pages(t testing.TB, budget int) []PolicyPush {
	t.Helper()
	pages, err := Paginate(v.policies, v.directory, v.secrets, budget)
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

func encodedLen(t testing.TB, v any) int {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestPaginate(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name              string
		tenants, devices  int
		budget, wantPages int
	}{
		{"empty view", 0, 0, 0, 1},
		{"one of each", 1, 1, 0, 1},
		{"1000 devices", 3, 1000, 0, 4},
		{"small budget", 10, 40, 2000, 0},
		{"budget of one document", 2, 5, 300, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.view(t, tc.tenants, tc.devices)
			pages := v.pages(t, tc.budget)
			if tc.wantPages > 0 && len(pages) != tc.wantPages {
				t.Errorf("%d pages, want %d", len(pages), tc.wantPages)
			}
			budget := tc.budget
			if budget == 0 {
				budget = PageBudget
			}
			var got view
			for i, p := range pages {
				if p.Page != uint32(i) || p.More != (i < len(pages)-1) {
					t.Fatalf("page %d: Page %d More %v", i, p.Page, p.More)
				}
				if p.Policies == nil || p.Directory == nil {
					t.Fatalf("page %d: nil list encodes as null", i)
				}
				sum := 0
				for _, s := range p.Policies {
					sum += encodedLen(t, &s)
				}
				for _, s := range p.Directory {
					sum += encodedLen(t, &s)
				}
				for _, s := range p.OfflineSecrets {
					sum += encodedLen(t, &s)
				}
				if sum > budget {
					t.Fatalf("page %d carries %d bytes of documents, budget %d", i, sum, budget)
				}
				if i < len(pages)-1 && sum == 0 {
					t.Fatalf("page %d is empty", i)
				}
				got.policies = append(got.policies, p.Policies...)
				got.directory = append(got.directory, p.Directory...)
				got.secrets = append(got.secrets, p.OfflineSecrets...)
			}
			if len(got.policies) != len(v.policies) || len(got.directory) != len(v.directory) || len(got.secrets) != len(v.secrets) {
				t.Fatalf("pages carry %d/%d/%d documents, want %d/%d/%d", len(got.policies), len(got.directory), len(got.secrets),
					len(v.policies), len(v.directory), len(v.secrets))
			}
			for i := range v.directory {
				if !slices.Equal(got.directory[i].Body, v.directory[i].Body) {
					t.Fatalf("device certificate %d out of order", i)
				}
			}
		})
	}
}

// TestPageFitsMessage: a page filled up to PageBudget with the largest
// documents, sent as a PolicyPush or inside a PairResponse with the
// largest envelope, stays within MaxMessageSize and the transport bound.
func TestPageFitsMessage(t *testing.T) {
	f := newFixture(t)
	big := func(seed int) DeviceCert {
		d := f.device
		d.Serial = 1<<64 - 1 - uint64(seed)
		d.Name = strings.Repeat("N", MaxNameLen)
		d.Tenant = strings.Repeat("T", MaxNameLen)
		d.Relay = strings.Repeat("r", 90) + ":65535"
		copy(d.DeviceID[:], detrand.Bytes(fmt.Sprint("big-", seed), 16))
		return d
	}
	var dir []Signed
	for i := range 400 {
		d := big(i)
		s, err := SignEd25519(DocDeviceCert, &d, f.msp)
		if err != nil {
			t.Fatal(err)
		}
		dir = append(dir, s)
	}
	var secrets []TenantSecret
	for i := range 2000 { // the smallest documents: the most list items
		secrets = append(secrets, TenantSecret{Tenant: fmt.Sprint(i % 10), Secret: make([]byte, 32)})
	}
	tc := f.tech
	tc.Username, tc.Email = strings.Repeat("u", 32), strings.Repeat("e", MaxEmailLen)
	tc.TechID = strings.Repeat("i", MaxNameLen)
	for i := range 20 {
		tc.Grants = append(tc.Grants, Grant{Tenant: fmt.Sprintf("%064d", i), Role: RoleReadOnly})
	}
	tcs, err := SignEd25519(DocTechCert, &tc, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	for _, pages := range [][]PolicyPush{mustPaginate(t, nil, dir, nil), mustPaginate(t, nil, nil, secrets)} {
		if len(pages) < 2 {
			t.Fatalf("%d pages: the test wants full pages", len(pages))
		}
		for _, p := range pages {
			p.Page, p.More = 1<<32-1, true
			push, err := EncodeMsg(MsgPolicyPush, &p)
			if err != nil {
				t.Fatal(err)
			}
			r := PairResponse{TechCert: tcs, Org: strings.Repeat("O", MaxNameLen)}
			r.SetPage(&p)
			pair, err := EncodeMsg(MsgPairResponse, &r)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range [][]byte{push, pair} {
				if len(m) > MaxTransportPlain || len(m)-1 > MaxMessageSize {
					t.Fatalf("message of %d bytes", len(m))
				}
			}
			var back PolicyPush
			if err := DecodeMsg(push, MsgPolicyPush, &back); err != nil {
				t.Fatalf("full page does not decode: %v", err)
			}
		}
	}
}

func mustPaginate(t *testing.T, p, d []Signed, s []TenantSecret) []PolicyPush {
	t.Helper()
	pages, err := Paginate(p, d, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

func TestPaginateDocumentTooLarge(t *testing.T) {
	f := newFixture(t)
	v := f.view(t, 1, 1)
	_, err := Paginate(v.policies, v.directory, nil, encodedLen(t, &v.directory[0])-1)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("device certificate over the budget: %v", err)
	}
	// Exactly the budget fits.
	if _, err := Paginate(nil, v.directory, nil, encodedLen(t, &v.directory[0])); err != nil {
		t.Fatal(err)
	}
}

func TestTransferSequence(t *testing.T) {
	f := newFixture(t)
	v := f.view(t, 4, 30)
	pages := v.pages(t, 1500)
	if len(pages) < 4 {
		t.Fatalf("%d pages, want at least 4", len(pages))
	}
	roguePage := func() PolicyPush {
		p := pages[1]
		d := f.device
		s, err := SignEd25519(DocDeviceCert, &d, detrand.Ed25519("rogue"))
		if err != nil {
			t.Fatal(err)
		}
		p.Directory = append(slices.Clone(p.Directory), s)
		return p
	}
	dupDevice := func() PolicyPush {
		p := pages[1]
		p.Directory = append(slices.Clone(p.Directory), pages[0].Directory[0])
		return p
	}
	for _, tc := range []struct {
		name  string
		pages []PolicyPush
		want  error
	}{
		{"in order", pages, nil},
		{"single page", []PolicyPush{{Policies: v.policies[:1]}}, nil},
		{"first page not 0", pages[1:], ErrPageSequence},
		{"page skipped", append([]PolicyPush{pages[0]}, pages[2:]...), ErrPageSequence},
		{"page repeated", append([]PolicyPush{pages[0], pages[1]}, pages[1:]...), ErrPageSequence},
		{"pages swapped", append([]PolicyPush{pages[0], pages[2], pages[1]}, pages[3:]...), ErrPageSequence},
		{"last page missing", pages[:len(pages)-1], ErrPageSequence},
		{"page after the last", append(slices.Clone(pages), PolicyPush{Page: uint32(len(pages))}), ErrPageSequence},
		{"device on two pages", append([]PolicyPush{pages[0], dupDevice()}, pages[2:]...), ErrDuplicateDoc},
		{"device of another MSP", append([]PolicyPush{pages[0], roguePage()}, pages[2:]...), ErrBadSignature},
		{"two policies of one tenant", []PolicyPush{{Policies: []Signed{v.policies[0]}, More: true}, {Page: 1, Policies: []Signed{v.policies[0]}}}, ErrDuplicateDoc},
		{"two keys of one tenant", []PolicyPush{{OfflineSecrets: v.secrets[:1], More: true}, {Page: 1, OfflineSecrets: v.secrets[:1]}}, ErrDuplicateDoc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewTransfer(f.mspPub)
			var err error
			for i := range tc.pages {
				if err = x.Add(&tc.pages[i]); err != nil {
					break
				}
			}
			if err == nil {
				err = x.Finish()
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				if x.Done() || x.Finish() == nil {
					t.Fatal("a failed transfer reports done")
				}
				if again := x.Add(&pages[0]); again != x.Finish() {
					t.Fatalf("failure not sticky: %v", again)
				}
				return
			}
			if !x.Done() || len(x.PolicyDocs) != len(x.Policies) {
				t.Fatal("transfer not done")
			}
		})
	}
}

func TestTransferMaxPages(t *testing.T) {
	f := newFixture(t)
	x := NewTransfer(f.mspPub)
	for i := range MaxPages - 1 {
		if err := x.Add(&PolicyPush{Page: uint32(i), More: true}); err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
	}
	if err := x.Add(&PolicyPush{Page: MaxPages - 1, More: true}); !errors.Is(err, ErrPageSequence) {
		t.Fatalf("page %d announcing another: %v", MaxPages-1, err)
	}
	x = NewTransfer(f.mspPub)
	for i := range MaxPages {
		if err := x.Add(&PolicyPush{Page: uint32(i), More: i < MaxPages-1}); err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
	}
	if err := x.Finish(); err != nil {
		t.Fatalf("%d pages: %v", MaxPages, err)
	}
}

// msgPipe is one end of an in-memory MsgConn pair; it counts what is in
// flight from the sender.
type msgPipe struct {
	in, out chan []byte
	sent    *int
	mu      *sync.Mutex
}

func msgPipes() (a, b *msgPipe) {
	x, y := make(chan []byte, 64), make(chan []byte, 64)
	n, mu := new(int), new(sync.Mutex)
	return &msgPipe{in: x, out: y, sent: n, mu: mu}, &msgPipe{in: y, out: x, sent: n, mu: mu}
}

func (p *msgPipe) Send(ctx context.Context, t MsgType, body any) error {
	b, err := EncodeMsg(t, body)
	if err != nil {
		return err
	}
	p.mu.Lock()
	*p.sent++
	p.mu.Unlock()
	select {
	case p.out <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *msgPipe) Recv(ctx context.Context, want MsgType, body any) error {
	select {
	case b := <-p.in:
		return DecodeMsg(b, want, body)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSendReceiveTransfer(t *testing.T) {
	f := newFixture(t)
	v := f.view(t, 5, 60)
	pages := v.pages(t, 1000)
	if len(pages) < 3*PageWindow {
		t.Fatalf("%d pages", len(pages))
	}
	tcs, err := SignEd25519(DocTechCert, &f.tech, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range []bool{false, true} {
		t.Run(fmt.Sprint("pair=", pair), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			send, recv := msgPipes()
			errc := make(chan error, 1)
			go func() {
				var r *PairResponse
				if pair {
					r = &PairResponse{TechCert: tcs, MSPKey: f.mspPub, Org: "MSP"}
				}
				errc <- SendTransfer(ctx, send, r, pages)
			}()
			x := NewTransfer(f.mspPub)
			if pair {
				var r PairResponse
				if err := recv.Recv(ctx, MsgPairResponse, &r); err != nil {
					t.Fatal(err)
				}
				if r.Org != "MSP" || !r.More {
					t.Fatalf("pair response %+v", r)
				}
				if err := x.Add(r.Page()); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.Receive(ctx, recv); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("send: %v", err)
			}
			if len(x.Policies) != 5 || len(x.Directory) != 60 || len(x.OfflineSecrets) != 5 {
				t.Fatalf("received %d policies, %d devices, %d keys", len(x.Policies), len(x.Directory), len(x.OfflineSecrets))
			}
		})
	}

	t.Run("window", func(t *testing.T) {
		// A receiver that never acknowledges gets PageWindow pages, no more.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		send, recv := msgPipes()
		err := SendTransfer(ctx, send, nil, pages)
		if !errors.Is(err, context.DeadlineExceeded) || len(recv.in) != PageWindow {
			t.Fatalf("%v; %d pages sent without an ack, want %d", err, len(recv.in), PageWindow)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// The receiver refuses a bad page: the sender gets the PeerError.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		send, recv := msgPipes()
		bad := slices.Clone(pages)
		bad[2] = bad[3]
		errc := make(chan error, 1)
		go func() { errc <- SendTransfer(ctx, send, nil, bad) }()
		x := NewTransfer(f.mspPub)
		if err := x.Receive(ctx, recv); !errors.Is(err, ErrPageSequence) {
			t.Fatalf("receive: %v", err)
		}
		if err := recv.Send(ctx, MsgError, &ErrorMsg{Code: CodeRefused, Text: "refused"}); err != nil {
			t.Fatal(err)
		}
		var pe *PeerError
		if err := <-errc; !errors.As(err, &pe) {
			t.Fatalf("send: %v", err)
		}
	})

	t.Run("wrong ack", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		send, recv := msgPipes()
		errc := make(chan error, 1)
		go func() { errc <- SendTransfer(ctx, send, nil, pages) }()
		var p PolicyPush
		if err := recv.Recv(ctx, MsgPolicyPush, &p); err != nil {
			t.Fatal(err)
		}
		if err := recv.Send(ctx, MsgPageAck, &PageAck{Page: 1}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrPageSequence) {
			t.Fatalf("send: %v", err)
		}
	})
}

// TestSinglePageEncoding: a one-page push (every push to an agent)
// encodes exactly as the two-field PolicyPush of before paging.
func TestSinglePageEncoding(t *testing.T) {
	f := newFixture(t)
	v := f.view(t, 1, 0)
	pages := mustPaginate(t, v.policies, nil, nil)
	b, err := Marshal(&pages[0])
	if err != nil {
		t.Fatal(err)
	}
	old := struct {
		Policies  []Signed `cbor:"1,keyasint"`
		Directory []Signed `cbor:"2,keyasint"`
	}{v.policies, []Signed{}}
	want, err := Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b, want) {
		t.Fatalf("single page %x, want %x", b, want)
	}
}
