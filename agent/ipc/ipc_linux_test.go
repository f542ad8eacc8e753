//go:build linux

package ipc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/protocol"
)

// helperEnv makes the test binary act as an IPC client (see TestMain), so
// that it can be run as another user.
const helperEnv = "JITKEY_IPC_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(client(path))
	}
	os.Exit(m.Run())
}

// client dials path, sends "hello" and reports on stdout what came back.
func client(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ipc.Dial(ctx, path)
	if err != nil {
		fmt.Println("dial error:", err)
		return 1
	}
	defer c.Close()
	fmt.Printf("connected uid=%d server-uid=%d\n", os.Getuid(), c.Peer().UID)
	if err := c.WriteMessage(ctx, []byte("hello")); err != nil {
		fmt.Println("write error:", err)
	}
	msg, err := c.ReadMessage(ctx)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		fmt.Println("closed by server")
	case err != nil:
		fmt.Println("read error:", err)
	default:
		fmt.Printf("reply %q\n", msg)
	}
	return 0
}

func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("leaked goroutines: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func listen(t *testing.T, cfg ipc.Config) *ipc.Listener {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "run", "agent.sock")
	}
	l, err := ipc.Listen(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestRoundTripAndPeer(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	l := listen(t, ipc.Config{AllowedUIDs: []uint32{uint32(os.Geteuid())}})

	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(l.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", di.Mode())
	}

	var wg sync.WaitGroup
	wg.Add(1)
	var srvErr error
	go func() {
		defer wg.Done()
		c, err := l.Accept(ctx)
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		p := c.Peer()
		if p.UID != uint32(os.Geteuid()) || p.GID != uint32(os.Getegid()) || p.PID != int32(os.Getpid()) {
			srvErr = fmt.Errorf("server sees peer %+v", p)
			return
		}
		for {
			msg, err := c.ReadMessage(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				srvErr = err
				return
			}
			if err := c.WriteMessage(ctx, append([]byte("echo:"), msg...)); err != nil {
				srvErr = err
				return
			}
		}
	}()

	c, err := ipc.Dial(ctx, l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Peer(); p.UID != uint32(os.Geteuid()) || p.PID != int32(os.Getpid()) {
		t.Fatalf("client sees server %+v", p)
	}
	big := bytes.Repeat([]byte{0xa5}, protocol.MaxIPCFrame-5)
	for _, msg := range [][]byte{[]byte("one"), big, {0}} {
		if err := c.WriteMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("echo:"), msg...)) {
			t.Fatalf("reply of %d bytes does not match", len(got))
		}
	}
	if err := c.WriteMessage(ctx, nil); !errors.Is(err, protocol.ErrEmptyFrame) {
		t.Fatalf("empty message: err = %v", err)
	}
	if err := c.WriteMessage(ctx, make([]byte, protocol.MaxIPCFrame+1)); !errors.Is(err, protocol.ErrFrameTooLarge) {
		t.Fatalf("oversize message: err = %v", err)
	}
	c.Close()
	wg.Wait()
	if srvErr != nil {
		t.Fatal(srvErr)
	}
}

func TestOversizeFrameFromPeer(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	l := listen(t, ipc.Config{})
	raw, err := net.Dial("unix", l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(binary.BigEndian.AppendUint32(nil, protocol.MaxIPCFrame+1)); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ReadMessage(ctx); !errors.Is(err, protocol.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

// TestRejectsUIDNotAllowed: with root excluded from the allowed set, a root
// client is dropped without its message being read, and Accept keeps
// waiting.
func TestRejectsUIDNotAllowed(t *testing.T) {
	checkGoroutines(t)
	var logBuf syncBuffer
	l := listen(t, ipc.Config{AllowedUIDs: []uint32{12345}, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := ipc.Dial(t.Context(), l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(t.Context(), []byte("let me in"))
	if _, err := c.ReadMessage(t.Context()); err == nil {
		t.Fatal("rejected client read a message")
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept returned %v, want DeadlineExceeded", err)
	}
	if s := logBuf.String(); !strings.Contains(s, "ipc connection rejected") || !strings.Contains(s, fmt.Sprintf("peer.uid=%d", os.Geteuid())) {
		t.Fatalf("log lacks the rejection: %q", s)
	}
}

// TestRejectsNonRootProcess runs the test binary as nobody (setpriv) against
// the default root-only listener. The socket's directory and file are opened
// up after Listen so that nobody can connect at all: the rejection must
// come from SO_PEERCRED. A root client connecting afterwards is the one
// Accept returns.
func TestRejectsNonRootProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to uid 65534 (CI runs as root)")
	}
	checkGoroutines(t)
	ctx := t.Context()
	base, err := os.MkdirTemp("", "jitkey-ipc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	l := listen(t, ipc.Config{Path: filepath.Join(base, "run", "agent.sock")})
	if err := os.Chmod(filepath.Dir(l.Path()), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "client")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(base); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s is not traversable by others; cannot run the client as nobody", d)
		}
	}

	accepted := make(chan *ipc.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()

	cmd := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	cmd.Env = []string{helperEnv + "=" + l.Path()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "connected uid=65534 server-uid=0") || !strings.Contains(string(out), "closed by server") {
		t.Fatalf("client as nobody: %s", out)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatalf("Accept returned the nobody connection (peer %+v)", c.Peer())
	case err := <-acceptErr:
		t.Fatal(err)
	default:
	}

	rc, err := ipc.Dial(ctx, l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	select {
	case c := <-accepted:
		defer c.Close()
		if c.Peer().UID != 0 || c.Peer().PID != int32(os.Getpid()) {
			t.Fatalf("accepted peer %+v, want this root process", c.Peer())
		}
	case err := <-acceptErr:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("root client not accepted")
	}
}

func TestContextEndsBlockingCalls(t *testing.T) {
	checkGoroutines(t)
	l := listen(t, ipc.Config{AllowedUIDs: []uint32{uint32(os.Geteuid())}})

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept: err = %v, want DeadlineExceeded", err)
	}

	c, err := ipc.Dial(t.Context(), l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.ReadMessage(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadMessage: err = %v, want DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := c.ReadMessage(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadMessage: err = %v, want Canceled", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("cancel did not interrupt the read promptly")
	}

	// A later call with a fresh context works again.
	if err := s.WriteMessage(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadMessage(t.Context()); err != nil || string(got) != "after" {
		t.Fatalf("read after cancel: %q, %v", got, err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := l.Accept(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept: err = %v, want Canceled", err)
	}
}

func TestStaleAndUnsafePaths(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "run")

	// A stale socket (its listener gone without unlinking) is replaced.
	path := filepath.Join(dir, "agent.sock")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}
	l, err := ipc.Listen(ctx, ipc.Config{Path: path})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}

	// A live one is not.
	if _, err := ipc.Listen(ctx, ipc.Config{Path: path}); !errors.Is(err, ipc.ErrInUse) {
		t.Fatalf("Listen over a live socket: err = %v, want ErrInUse", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}

	// A regular file is left alone.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.Listen(ctx, ipc.Config{Path: path}); !errors.Is(err, ipc.ErrNotSocket) {
		t.Fatalf("Listen over a file: err = %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Fatal("Listen touched a regular file")
	}

	// A directory others can enter is refused.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.Listen(ctx, ipc.Config{Path: filepath.Join(open, "agent.sock")}); !errors.Is(err, ipc.ErrUnsafeDir) {
		t.Fatalf("Listen in a 0755 dir: err = %v, want ErrUnsafeDir", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
