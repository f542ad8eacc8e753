//go:build linux

package pam_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// fakeAgent serves one connection on a root-only socket with script:
// it reads the surface's first message and writes the given bodies.
func fakeAgent(t *testing.T, bodies ...[]byte) (sock string, got <-chan []byte) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := ipc.Listen(t.Context(), ipc.Config{Path: sock})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []byte, 4)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(done)
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		b, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		ch <- b
		for _, body := range bodies {
			if err := c.WriteMessage(ctx, body); err != nil {
				return
			}
		}
		for {
			b, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			ch <- b
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return sock, ch
}

func msg(t *testing.T, typ ipcserver.MsgType, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(typ)}, b...)
}

// pamWrapper runs pamtester under pam_wrapper with a private service
// directory: no sandbox, no root-only namespace, nothing of the host's
// PAM configuration touched.
func pamWrapper(t *testing.T, module, args, user string, ops ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	svc := "auth [success=done ignore=ignore default=die] " + module + " " + args + "\nauth required pam_permit.so\naccount required pam_permit.so\n"
	if err := os.WriteFile(filepath.Join(dir, "jitkey-fake"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	lib, err := filepath.Glob("/usr/lib/*/libpam_wrapper.so*")
	if err != nil || len(lib) == 0 {
		t.Fatal("libpam_wrapper not installed (make deps)")
	}
	cmd := exec.CommandContext(t.Context(), "stdbuf", append([]string{"-oL", "pamtester", "-v", "jitkey-fake", user}, ops...)...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib[0], "PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR="+dir)
	return start(t, cmd)
}

func TestFakeQRText(t *testing.T) {
	module := buildModule(t)
	text := "JK:ABC $%*+-./:" + strings.Repeat("Z", 280)
	term, err := qrcode.Terminal(text)
	if err != nil {
		t.Fatal(err)
	}
	sock, _ := fakeAgent(t,
		msg(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true}),
		msg(t, ipcserver.MsgQR, &ipcserver.QR{Text: text, Terminal: term, Expires: 1}),
	)
	s := pamWrapper(t, module, "socket="+sock+" timeout=2", "msp-nik", "authenticate")
	s.expect(t, "Press Enter")
	s.send(t, "\n")
	_ = s.wait(t)
	if !strings.Contains(s.output(), "Code: "+text) {
		t.Fatalf("output:\n%s", s.output())
	}
}
