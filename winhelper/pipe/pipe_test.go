package pipe_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/jitkey/jitkey/winhelper/pipe"
)

func TestAllowed(t *testing.T) {
	for _, c := range []struct {
		allowed []string
		sid     string
		want    bool
	}{
		{[]string{pipe.SIDSystem}, pipe.SIDSystem, true},
		{[]string{pipe.SIDSystem}, "S-1-5-21-1-2-3-1001", false},
		{[]string{pipe.SIDSystem}, "", false},
		{[]string{""}, "", false}, // an unreadable token is never allowed
		{nil, pipe.SIDSystem, false},
	} {
		if got := pipe.Allowed(c.allowed, c.sid); got != c.want {
			t.Errorf("Allowed(%q, %q) = %v", c.allowed, c.sid, got)
		}
	}
	if pipe.DefaultSDDL != "D:P(A;;GA;;;SY)" {
		t.Fatalf("DefaultSDDL = %q: the pipe must admit SYSTEM only", pipe.DefaultSDDL)
	}
}

func TestUnsupportedElsewhere(t *testing.T) {
	if runtime.GOOS == "windows" {
		return // pipe_windows.go
	}
	if _, err := pipe.Listen(context.Background(), pipe.Config{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Listen: %v", err)
	}
	if _, err := pipe.Dial(context.Background(), pipe.Config{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Dial: %v", err)
	}
}
