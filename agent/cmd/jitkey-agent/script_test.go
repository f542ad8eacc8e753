package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/internal/cliscript"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// TestScripts runs testdata/*.txt (see package cliscript): what a person
// reads when a command line or a token is wrong, or the relay is not the
// one the token pins. Extra commands:
//
//	relay               serve a real relay on loopback: $RELAY, $PIN
//	token FILE RELAY PIN EXPIRES   write an enrollment token for a console
//	                    at RELAY pinning PIN (hex), expiring EXPIRES
//	                    from now (a negative duration: expired)
func TestScripts(t *testing.T) {
	s := cliscript.Script{
		Cmds: map[string]cliscript.Cmd{
			"jitkey-agent": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
				return run(ctx, args, stderr)
			},
		},
		Extra: map[string]func(st *cliscript.State, args []string) error{
			"relay": func(st *cliscript.State, args []string) error {
				srv, err := server.New(server.Config{})
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
			"token": func(st *cliscript.State, args []string) error {
				if len(args) != 4 {
					return fmt.Errorf("usage: token FILE RELAY PIN EXPIRES")
				}
				pin, err := hex.DecodeString(args[2])
				if err != nil || len(pin) != 32 {
					return fmt.Errorf("pin %q", args[2])
				}
				exp, err := time.ParseDuration(args[3])
				if err != nil {
					return err
				}
				pub, _, err := ed25519.GenerateKey(nil)
				if err != nil {
					return err
				}
				msp, err := protocol.IdentityKeyOf(pub)
				if err != nil {
					return err
				}
				kp, err := protocol.CipherSuite.GenerateKeypair(nil)
				if err != nil {
					return err
				}
				tok := protocol.EnrollToken{Tenant: "acme", MSPKey: msp, Console: protocol.PeerAddr{Relay: args[1], Mailbox: protocol.MailboxID{1}}.String(),
					ConsoleNoise: protocol.NoiseKey(kp.Public), RelayPins: [][32]byte{[32]byte(pin)}, Expires: time.Now().Add(exp).Unix()}
				text, err := tok.Encode()
				if err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(st.Work, args[0]), []byte(text+"\n"), 0o600)
			},
		},
	}
	s.RunDir(t, "testdata")
}
