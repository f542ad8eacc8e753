package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/authority"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// TestScripts runs the command-line scripts in testdata/*.txt. Each line is
//
//	jk ARGS...          run a command; it must exit 0
//	! jk ARGS...        it must exit 1 (refused or failed)
//	!2 jk ARGS...       it must exit 2 (usage error)
//	stdout RE / stderr RE       the last command's output matches
//	! stdout RE / ! stderr RE   ... does not match
//	write FILE TEXT     create a file (0600) in the work directory
//	qrpng FILE          FILE holds a PNG whose QR code equals the last qr= line
//	enroll TENANT NAME  enrol a (fake) agent named NAME in TENANT, as serve
//	                    would, with a fresh token and fresh keys
//
// $WORK is the test's work directory; the state directory defaults to
// $WORK/state. Arguments split on spaces; 'single quotes' group.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func fields(line string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			inQ, have = !inQ, true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func runScript(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	var stdout, stderr bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.ReplaceAll(line, "$WORK", work)
		f := fields(line)
		neg := false
		want := 0
		switch f[0] {
		case "!":
			neg, want, f = true, 1, f[1:]
		case "!2":
			neg, want, f = true, 2, f[1:]
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s\n%s\nstdout:\n%s\nstderr:\n%s", path, n, line, strings.TrimSpace(sprintf(format, args...)), stdout.String(), stderr.String())
		}
		switch f[0] {
		case "jk":
			stdout.Reset()
			stderr.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			code := Run(ctx, f[1:], Env{Stdout: &stdout, Stderr: &stderr, DefaultState: filepath.Join(work, "state"), Now: time.Now, Rand: rand.Reader, ScryptLogN: 10})
			cancel()
			if code != want {
				fail("exit code %d, want %d", code, want)
			}
		case "stdout", "stderr":
			out := stdout.String()
			if f[0] == "stderr" {
				out = stderr.String()
			}
			re, err := regexp.Compile(strings.Join(f[1:], " "))
			if err != nil {
				fail("bad regexp: %v", err)
			}
			if re.MatchString(out) == neg {
				fail("%s match of %q is %v", f[0], re, !neg)
			}
		case "write":
			if err := os.WriteFile(filepath.Join(work, f[1]), []byte(strings.Join(f[2:], " ")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		case "qrpng":
			m := regexp.MustCompile(`(?m)^qr=(.*)$`).FindStringSubmatch(stdout.String())
			if m == nil {
				fail("no qr= line")
			}
			img, err := os.ReadFile(filepath.Join(work, f[1]))
			if err != nil {
				fail("%v", err)
			}
			got, err := qrcode.Decode(img)
			if err != nil || got != m[1] {
				fail("PNG decodes to %q (%v), want %q", got, err, m[1])
			}
		case "enroll":
			if len(f) != 3 {
				fail("usage: enroll TENANT NAME")
			}
			if err := enrollFake(filepath.Join(work, "state"), f[1], f[2]); err != nil {
				fail("enroll: %v", err)
			}
		default:
			fail("unknown script command %q", f[0])
		}
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

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
