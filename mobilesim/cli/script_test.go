package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/internal/cliscript"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// scriptNow is the phone's clock in scripts, so that ages print exactly.
var scriptNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestScripts runs testdata/*.txt (see package cliscript) with the phone's
// clock at scriptNow and no relay: what a person reads when a command
// line, a code or a picture is wrong. Extra commands:
//
//	loginqr FILE AGE    FILE (in $WORK) holds a PNG of a login code made AGE before scriptNow
//	sparse FILE SIZE    FILE is a sparse file of SIZE bytes (nothing to read)
func TestScripts(t *testing.T) {
	s := cliscript.Script{
		Cmds: map[string]cliscript.Cmd{
			"jitkey-phone": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
				env := &cli.Env{
					Stdin: strings.NewReader(""), Now: func() time.Time { return scriptNow },
					Connect: func(context.Context, cli.LinkConfig) (*cli.Link, error) {
						return nil, fmt.Errorf("scripts have no relay")
					},
				}
				return env.Run(ctx, args, stdout, stderr)
			},
		},
		Extra: map[string]func(st *cliscript.State, args []string) error{
			"loginqr": func(st *cliscript.State, args []string) error {
				age, err := time.ParseDuration(args[1])
				if err != nil {
					return err
				}
				var static protocol.NoiseKey
				kp, err := protocol.CipherSuite.GenerateKeypair(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
				if err != nil {
					return err
				}
				copy(static[:], kp.Public)
				q := protocol.QRPayload{Kind: protocol.QRLogin, Action: protocol.ActionLogon, Time: scriptNow.Add(-age),
					DeviceID: protocol.DeviceID{1}, Static: static, Mailbox: protocol.MailboxID{2}, Relay: "relay.example:4433"}
				text, err := q.Encode()
				if err != nil {
					return err
				}
				png, err := qrcode.PNG(text, 4)
				if err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(st.Work, args[0]), png, 0o600)
			},
			"sparse": func(st *cliscript.State, args []string) error {
				var size int64
				if _, err := fmt.Sscan(args[1], &size); err != nil {
					return err
				}
				f, err := os.Create(filepath.Join(st.Work, args[0]))
				if err != nil {
					return err
				}
				defer f.Close()
				if err := f.Truncate(size); err != nil {
					st.T.Skipf("no sparse file: %v", err)
				}
				return nil
			},
		},
	}
	s.RunDir(t, "testdata")
}
