package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/authority"
	"github.com/jitkey/jitkey/internal/cliscript"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
	relayserver "github.com/jitkey/jitkey/relay/server"
)

// TestScripts runs the command-line scripts in testdata/*.txt (see
// package cliscript; "jk" is jitkey-console, whose state directory
// defaults to $WORK/state). Extra commands:
//
//	write FILE TEXT     create a file (0600) in the work directory
//	qrpng FILE          FILE holds a PNG whose QR code equals the last qr= line
//	enroll TENANT NAME  enrol a (fake) agent named NAME in TENANT, as serve
//	                    would, with a fresh token and fresh keys
//	relay               serve a real relay on loopback: $RELAY, $PIN
func TestScripts(t *testing.T) {
	s := cliscript.Script{
		Timeout: 20 * time.Second,
		Cmds: map[string]cliscript.Cmd{
			"jk": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
				return Run(ctx, args, Env{Stdout: stdout, Stderr: stderr, DefaultState: filepath.Join(work, "state"), Now: time.Now, Rand: rand.Reader, ScryptLogN: 10})
			},
		},
		Extra: map[string]func(st *cliscript.State, args []string) error{
			"write": func(st *cliscript.State, f []string) error {
				return os.WriteFile(filepath.Join(st.Work, f[0]), []byte(strings.Join(f[1:], " ")+"\n"), 0o600)
			},
			"qrpng": func(st *cliscript.State, f []string) error {
				m := regexp.MustCompile(`(?m)^qr=(.*)$`).FindStringSubmatch(st.Stdout)
				if m == nil {
					return fmt.Errorf("no qr= line")
				}
				img, err := os.ReadFile(filepath.Join(st.Work, f[0]))
				if err != nil {
					return err
				}
				got, err := qrcode.Decode(img)
				if err != nil || got != m[1] {
					return fmt.Errorf("PNG decodes to %q (%v), want %q", got, err, m[1])
				}
				return nil
			},
			"enroll": func(st *cliscript.State, f []string) error {
				if len(f) != 2 {
					return fmt.Errorf("usage: enroll TENANT NAME")
				}
				return enrollFake(filepath.Join(st.Work, "state"), f[0], f[1])
			},
			"escrow": func(st *cliscript.State, f []string) error {
				if len(f) != 3 {
					return fmt.Errorf("usage: escrow DEVICE GENERATION CODEHEX")
				}
				return escrowFake(filepath.Join(st.Work, "state"), f[0], f[1], f[2])
			},
			"relay": func(st *cliscript.State, f []string) error {
				srv, err := relayserver.New(relayserver.Config{})
				if err != nil {
					return err
				}
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); srv.Serve(ctx, pc) }()
				st.T.Cleanup(func() { cancel(); <-done })
				<-srv.Ready()
				pin := srv.Pin()
				st.Vars["RELAY"], st.Vars["PIN"] = pc.LocalAddr().String(), hex.EncodeToString(pin[:])
				return nil
			},
		},
	}
	s.RunDir(t, "testdata")
}

// enrollFake enrols an agent named name in tenant directly through package
// console, with what serve would have learned from the handshake: a fresh
// token, fresh identity and Noise keys, and a possession proof over a
// made-up handshake hash. Scripts use it to have devices to list, share
// and remove without a relay.
func enrollFake(state, tenant, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, peer, err := console.Open(ctx, state)
	if err != nil {
		return err
	}
	defer db.Close()
	auth, err := authority.LoadAuthority(state, nil)
	if err != nil {
		return err
	}
	con, err := console.New(ctx, console.Config{DB: db, Peer: peer, Authority: auth, Now: time.Now, Rand: rand.Reader})
	if err != nil {
		return err
	}
	text, _, err := con.NewToken(ctx, tenant, time.Hour, 1)
	if err != nil {
		return err
	}
	tok, err := protocol.DecodeEnrollToken(text, time.Now())
	if err != nil {
		return err
	}
	sid, err := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
	if err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	nk, err := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		return err
	}
	ik, err := protocol.IdentityKeyOf(pub)
	if err != nil {
		return err
	}
	hh := make([]byte, 32)
	if _, err := rand.Read(hh); err != nil {
		return err
	}
	pi := console.PeerInfo{Session: sid, From: protocol.PeerAddr{Relay: "127.0.0.1:4433", Mailbox: protocol.MailboxFor(pub)},
		NoiseKey: protocol.NoiseKey(nk.Public), HandshakeHash: hh}
	req := &protocol.EnrollRequest{Name: name, OS: "linux", IdentityKey: ik, Relay: "127.0.0.1:4433",
		IdentitySig: ed25519.Sign(priv, protocol.ProofInput("identity", hh))}
	_, _, err = con.Enroll(ctx, pi, req)
	return err
}

// escrowFake stores a recovery code for device as its agent's escrow
// would (SPEC.md 11.15), directly through package console.
func escrowFake(state, device, gen, codeHex string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, peer, err := console.Open(ctx, state)
	if err != nil {
		return err
	}
	defer db.Close()
	con, err := console.New(ctx, console.Config{DB: db, Peer: peer, Now: time.Now, Rand: rand.Reader})
	if err != nil {
		return err
	}
	d, err := con.FindDevice(ctx, device)
	if err != nil {
		return err
	}
	var e protocol.RecoveryEscrow
	if _, err := fmt.Sscan(gen, &e.Generation); err != nil {
		return err
	}
	b, err := hex.DecodeString(codeHex)
	if err != nil || len(b) != len(e.Code) {
		return fmt.Errorf("code: %v", err)
	}
	copy(e.Code[:], b)
	_, _, err = con.EscrowRecovery(ctx, d.Mailbox, &e)
	return err
}
