package pipe_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/winhelper/pipe"
)

func selfSID(t *testing.T) string {
	t.Helper()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	return u.User.Sid.String()
}

// TestUserPeerOverPipe (Windows, or Wine): a client running as this
// process's (interactive) user reaches the default pipe with
// ClientAccess and is classified PeerUser with its SID; with the user
// listed in AllowedSIDs it is PeerSystem.
func TestUserPeerOverPipe(t *testing.T) {
	self := selfSID(t)
	for _, c := range []struct {
		name    string
		allowed []string
		want    ipc.PeerKind
	}{
		{"default", nil, ipc.PeerUser},
		{"listed", []string{self}, ipc.PeerSystem},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			name := fmt.Sprintf(`\\.\pipe\jitkey-test-%d-%s`, os.Getpid(), c.name)
			ln, err := pipe.Listen(ctx, pipe.Config{Name: name, AllowedSIDs: c.allowed})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan *ipc.Conn, 1)
			go func() {
				conn, err := ln.Accept(ctx)
				if err != nil {
					t.Error(err)
				}
				got <- conn
			}()
			cc, err := pipe.Dial(ctx, pipe.Config{Name: name, AllowedSIDs: []string{self}})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			sc := <-got
			if sc == nil {
				t.FailNow()
			}
			defer sc.Close()
			if p := sc.Peer(); p.Kind != c.want || p.SID != self {
				t.Fatalf("peer %+v, want kind %v sid %s", p, c.want, self)
			}
			if err := cc.WriteMessage(ctx, []byte{1, 0xa0}); err != nil {
				t.Fatal(err)
			}
			if b, err := sc.ReadMessage(ctx); err != nil || len(b) != 2 {
				t.Fatalf("read %x %v", b, err)
			}
		})
	}
}

// TestSystemOnlyRefusesUser: with SystemOnly the same client never gets
// an accepted connection: Windows refuses its CreateFile (the DACL), or,
// where the DACL is not enforced (Wine), the listener drops it on its
// token before reading a byte.
func TestSystemOnlyRefusesUser(t *testing.T) {
	self := selfSID(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	name := fmt.Sprintf(`\\.\pipe\jitkey-test-%d-systemonly`, os.Getpid())
	ln, err := pipe.Listen(ctx, pipe.Config{Name: name, SystemOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	actx, acancel := context.WithCancel(ctx)
	accepted := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(actx)
		if conn != nil {
			conn.Close()
			err = fmt.Errorf("accepted %+v", conn.Peer())
		}
		accepted <- err
	}()
	cc, err := pipe.Dial(ctx, pipe.Config{Name: name, AllowedSIDs: []string{self}})
	if err == nil {
		_, rerr := cc.ReadMessage(ctx)
		cc.Close()
		if rerr == nil {
			t.Fatal("a user read a message from a SYSTEM-only pipe")
		}
	} else if !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Fatalf("dial: %v", err)
	}
	acancel()
	if err := <-accepted; !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept: %v", err)
	}
}
