package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// pagedWorld is a fake console whose transfers come in pages of at most
// 600 bytes of documents (two device certificates), with 13 devices in
// tenant acme: a transfer of the view takes 8 pages.
func pagedWorld(t *testing.T) (*channeltest.Network, *peertest.Console) {
	t.Helper()
	n := channeltest.NewNetwork()
	console, err := peertest.NewConsole(peertest.Memory{Net: n}, "Acme MSP", "relay:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(console.Close)
	console.SetPolicy(peertest.DefaultPolicy("acme", 1))
	for i := range 13 {
		console.AddDevice(fmt.Sprintf("PC-%02d", i), "acme")
	}
	console.SetPaging(600, nil)
	return n, console
}

// newPhone starts a phone (wallet and app) listening on n.
func newPhone(t *testing.T, n *channeltest.Network) (*wallet.Wallet, *app.App, *channel.Mux) {
	t.Helper()
	key, _ := biometric.Generate(context.Background(), &biometric.Fixed{}, rand.Reader)
	w, err := wallet.Create(filepath.Join(t.TempDir(), "p"), "relay:1", [][32]byte{{1}}, key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := app.New(app.Config{Wallet: w, Gate: &biometric.Fixed{}})
	mux, stop := peertest.JoinMemory(n, w.Phone().Addr(), w.Phone().Noise(), a.Accept, a.Handle)
	t.Cleanup(stop)
	return w, a, mux
}

var nikAdmin = []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}}

// stored returns the current organisation as the wallet holds it.
func stored(t *testing.T, w *wallet.Wallet) string {
	t.Helper()
	o, err := w.Current()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPagedTransfer: pairing, sync and push bring the whole view in
// several pages, and a push acknowledges the versions of the complete
// transfer.
func TestPagedTransfer(t *testing.T) {
	n, console := pagedWorld(t)
	w, a, mux := newPhone(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := a.Pair(ctx, mux, console.PairingQR("nik", nikAdmin, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Devices) != 13 || len(v.Policies) != 1 {
		t.Fatalf("paired with %d devices, %d policies", len(v.Devices), len(v.Policies))
	}
	console.AddDevice("PC-13", "acme")
	console.SetPolicy(peertest.DefaultPolicy("acme", 2))
	u, err := a.Sync(ctx, mux)
	if err != nil {
		t.Fatal(err)
	}
	if u.Devices != 14 || u.Pages != 8 || !slices.Equal(u.Versions, []protocol.TenantVersion{{Tenant: "acme", Version: 2}}) {
		t.Fatalf("sync: %+v", u)
	}
	console.AddDevice("PC-14", "acme")
	console.SetPolicy(peertest.DefaultPolicy("acme", 3))
	ack, err := console.PushTo(ctx, console.Phones()[0])
	if err != nil || len(ack.Versions) != 1 || ack.Versions[0].Version != 3 {
		t.Fatalf("push: %+v %v", ack, err)
	}
	o, err := w.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Directory) != 15 {
		t.Fatalf("%d devices after the push", len(o.Directory))
	}
}

// badPages are console mistakes a phone must refuse whole (R-43, R-44,
// R-08); cut is a transfer that stops before its last page.
var badPages = []struct {
	name   string
	tamper func([]protocol.PolicyPush) []protocol.PolicyPush
	cut    bool
}{
	{"page skipped", func(p []protocol.PolicyPush) []protocol.PolicyPush { return slices.Delete(slices.Clone(p), 2, 3) }, false},
	{"page repeated", func(p []protocol.PolicyPush) []protocol.PolicyPush { return slices.Insert(slices.Clone(p), 2, p[1]) }, false},
	{"pages swapped", func(p []protocol.PolicyPush) []protocol.PolicyPush {
		q := slices.Clone(p)
		q[1], q[2] = q[2], q[1]
		return q
	}, false},
	{"first page not 0", func(p []protocol.PolicyPush) []protocol.PolicyPush { return p[1:] }, false},
	{"device on two pages", func(p []protocol.PolicyPush) []protocol.PolicyPush {
		q := slices.Clone(p)
		q[3].Directory = append(slices.Clone(q[3].Directory), p[1].Directory[0])
		return q
	}, false},
	{"document signed by another key", func(p []protocol.PolicyPush) []protocol.PolicyPush {
		q := slices.Clone(p)
		s := q[4].Directory[0]
		s.Sig = slices.Clone(s.Sig)
		s.Sig[0] ^= 1
		q[4].Directory = append([]protocol.Signed{s}, q[4].Directory[1:]...)
		return q
	}, false},
	{"last page missing", func(p []protocol.PolicyPush) []protocol.PolicyPush { return p[:len(p)-1] }, true},
}

// TestPagedTransferRefused: whatever goes wrong with the pages of a sync
// or a push, the phone refuses the transfer and keeps exactly what it
// held; the next correct transfer is applied.
func TestPagedTransferRefused(t *testing.T) {
	n, console := pagedWorld(t)
	w, a, mux := newPhone(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Pair(ctx, mux, console.PairingQR("nik", nikAdmin, time.Now())); err != nil {
		t.Fatal(err)
	}
	before := stored(t, w)
	// The console has news the phone must not take in part.
	console.AddDevice("PC-13", "acme")
	console.SetPolicy(peertest.DefaultPolicy("acme", 2))
	tech := console.Phones()[0]
	for _, bad := range badPages {
		for _, flow := range []string{"sync", "push"} {
			t.Run(bad.name+"/"+flow, func(t *testing.T) {
				refusals := len(console.Refusals())
				console.SetPaging(600, bad.tamper)
				timeout := 5 * time.Second
				if bad.cut {
					timeout = 300 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				var err error
				if flow == "sync" {
					_, err = a.Sync(ctx, mux)
				} else {
					_, err = console.PushTo(ctx, tech)
				}
				if err == nil {
					t.Fatal("transfer accepted")
				}
				if flow == "sync" && !bad.cut && !errors.Is(err, app.ErrBadPeer) {
					t.Fatalf("sync: %v, want ErrBadPeer", err)
				}
				if !bad.cut {
					// The console sees the refusal in its own time after a sync.
					for i := 0; len(console.Refusals()) == refusals && i < 200; i++ {
						time.Sleep(10 * time.Millisecond)
					}
					if got := len(console.Refusals()); got != refusals+1 {
						t.Fatalf("console got %d refusals, want %d", got, refusals+1)
					}
				}
				if after := stored(t, w); after != before {
					t.Fatalf("stored state changed:\n%s\n%s", before, after)
				}
			})
		}
	}
	console.SetPaging(600, nil)
	u, err := a.Sync(ctx, mux)
	if err != nil || u.Devices != 14 || u.Versions[0].Version != 2 {
		t.Fatalf("good sync after refused ones: %+v %v", u, err)
	}
}

// TestPagedPairingRefused: a pairing whose pages go wrong stores no
// organisation at all.
func TestPagedPairingRefused(t *testing.T) {
	n, console := pagedWorld(t)
	for _, bad := range badPages {
		t.Run(bad.name, func(t *testing.T) {
			w, a, mux := newPhone(t, n)
			console.SetPaging(600, bad.tamper)
			timeout := 5 * time.Second
			if bad.cut {
				timeout = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := a.Pair(ctx, mux, console.PairingQR("nik", nikAdmin, time.Now()))
			if err == nil {
				t.Fatal("pairing accepted")
			}
			if orgs, err := w.Orgs(); err != nil || len(orgs) != 0 {
				t.Fatalf("%d organisations stored after a failed pairing (%v)", len(orgs), err)
			}
		})
	}
}
