package enroll_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// pins stands in for the relay pins of a token; the in-memory network
// has no TLS to check them against.
var pins = [][32]byte{{1}}

// relay is an agent's connection to the in-memory network.
type relay struct{ *channeltest.Peer }

func (relay) Run(ctx context.Context) error { <-ctx.Done(); return nil }

type env struct {
	net     *channeltest.Network
	console *agenttest.Console
	state   string
	dials   atomic.Int32
}

// newEnv starts a console of msp's tenant handing out policy p.
func newEnv(t *testing.T, msp *agenttest.MSP, p protocol.Policy) *env {
	e := &env{net: channeltest.NewNetwork(), state: filepath.Join(t.TempDir(), "state")}
	id, nk := agenttest.NewConsoleKeys(t)
	peer := e.net.Join(protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: protocol.MailboxFor(id.Public().(ed25519.PublicKey))})
	e.console = agenttest.NewConsole(t, msp, id, nk, peer, p)
	return e
}

func (e *env) enroll(t *testing.T, token string) (store.Enrollment, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return enroll.Enroll(ctx, enroll.Config{
		StateDir: e.state, Token: token, Name: "W11-ENROLL", OS: "linux", Timeout: 5 * time.Second,
		Dial: func(id ed25519.PrivateKey, home string, _ [][32]byte) (enroll.Relay, error) {
			e.dials.Add(1)
			addr := protocol.PeerAddr{Relay: home, Mailbox: protocol.MailboxFor(id.Public().(ed25519.PublicKey))}
			return relay{e.net.Join(addr)}, nil
		},
	})
}

// notEnrolled checks that the state directory holds no enrollment.
func (e *env) notEnrolled(t *testing.T) {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(e.state, enroll.DBFile), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(t.Context(), func(tx *store.Tx) error { _, err := tx.Enrollment(); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("enrollment stored after a refused response: %v", err)
	}
}

func TestEnroll(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	e := newEnv(t, msp, msp.Policy(1))
	got, err := e.enroll(t, e.console.Token(t, pins, time.Now().Add(time.Hour), 2))
	if err != nil {
		t.Fatal(err)
	}
	if got.Tenant != "acme" || got.MSPKey != msp.Pub || got.Name != "W11-ENROLL" || got.Console != e.console.Addr().String() {
		t.Fatalf("enrollment %+v", got)
	}
	k, err := keys.Load(e.state)
	if err != nil {
		t.Fatal(err)
	}
	var dc protocol.DeviceCert
	if err := got.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, msp.Pub, &dc); err != nil || dc.IdentityKey != k.IdentityPublic() {
		t.Fatalf("stored device certificate: %v", err)
	}
	if _, err := e.enroll(t, e.console.Token(t, pins, time.Now().Add(time.Hour), 1)); !errors.Is(err, enroll.ErrEnrolled) {
		t.Fatalf("second enrollment: %v, want ErrEnrolled", err)
	}
}

// TestExpiredToken: an expired token is refused before anything is
// created or sent.
func TestExpiredToken(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	e := newEnv(t, msp, msp.Policy(1))
	_, err := e.enroll(t, e.console.Token(t, pins, time.Now().Add(-time.Minute), 1))
	if !errors.Is(err, protocol.ErrExpired) || !strings.Contains(err.Error(), "token") {
		t.Fatalf("expired token: %v, want a token error wrapping ErrExpired", err)
	}
	if n := e.dials.Load(); n != 0 {
		t.Fatalf("relay dialled %d times for an expired token", n)
	}
	if _, err := os.Stat(e.state); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state directory created for an expired token: %v", err)
	}
}

// TestRefusedResponses: the console's answer must carry a device
// certificate signed by the MSP key of the token, for this tenant, and a
// policy of that tenant; otherwise nothing is stored.
func TestRefusedResponses(t *testing.T) {
	tests := []struct {
		name  string
		token func(t *testing.T) (*env, string)
		want  error
		where string
	}{
		{"device certificate by another MSP key", func(t *testing.T) (*env, string) {
			pinned := agenttest.NewMSP(t, "acme")
			other := agenttest.NewMSP(t, "acme")
			e := newEnv(t, other, other.Policy(1))
			tok, err := protocol.DecodeEnrollToken(e.console.Token(t, pins, time.Now().Add(time.Hour), 1), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			tok.MSPKey = pinned.Pub // the token pins an MSP key the console does not sign with
			s, err := tok.Encode()
			if err != nil {
				t.Fatal(err)
			}
			return e, s
		}, protocol.ErrBadSignature, "device certificate"},
		{"policy of another tenant", func(t *testing.T) (*env, string) {
			msp := agenttest.NewMSP(t, "acme")
			p := msp.Policy(1)
			p.Tenant = "globex"
			e := newEnv(t, msp, p)
			return e, e.console.Token(t, pins, time.Now().Add(time.Hour), 1)
		}, protocol.ErrWrongTenant, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, token := tt.token(t)
			_, err := e.enroll(t, token)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.where) {
				t.Fatalf("Enroll: %v, want %v in the %s", err, tt.want, tt.where)
			}
			e.notEnrolled(t)
		})
	}
}

// TestUnsafeKeys: existing keys others may read are refused, not replaced
// and not reported as already existing.
func TestUnsafeKeys(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	e := newEnv(t, msp, msp.Policy(1))
	if _, err := keys.Generate(e.state, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(e.state, keys.IdentityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.enroll(t, e.console.Token(t, pins, time.Now().Add(time.Hour), 1)); !errors.Is(err, keys.ErrUnsafeMode) {
		t.Fatalf("Enroll: %v, want ErrUnsafeMode", err)
	}
	if n := e.dials.Load(); n != 0 {
		t.Fatalf("relay dialled %d times with unsafe keys", n)
	}
}
