package pipe_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/jitkey/jitkey/agent/ipc"
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

// aces parses a protected DACL-only SDDL string of allow entries,
// "D:P(A;;rights;;;trustee)...", into trustee → access mask, expanding
// the generic rights through the pipe's (file) generic mapping.
func aces(t *testing.T, sddl string) map[string]uint32 {
	t.Helper()
	if !regexp.MustCompile(`^D:P(\(A;;[^;()]+;;;[A-Z]{2}\))+$`).MatchString(sddl) {
		t.Fatalf("SDDL %q: not a protected DACL of allow entries", sddl)
	}
	generic := map[string]uint32{
		"GA": 0x1f01ff, // FILE_ALL_ACCESS
		"GR": 0x120089, // FILE_GENERIC_READ
		"GW": 0x120116, // FILE_GENERIC_WRITE
	}
	out := map[string]uint32{}
	for _, m := range regexp.MustCompile(`\(A;;([^;]+);;;([A-Z]{2})\)`).FindAllStringSubmatch(sddl, -1) {
		rights, trustee := m[1], m[2]
		var mask uint32
		if v, err := strconv.ParseUint(rights, 0, 32); err == nil {
			mask = uint32(v)
		} else {
			for i := 0; i < len(rights); i += 2 {
				g, ok := generic[rights[i:min(i+2, len(rights))]]
				if !ok {
					t.Fatalf("SDDL %q: right %q", sddl, rights)
				}
				mask |= g
			}
		}
		if _, dup := out[trustee]; dup {
			t.Fatalf("SDDL %q: %s twice", sddl, trustee)
		}
		out[trustee] = mask
	}
	return out
}

// TestSDDL (SPEC.md 5.7 Windows): the default descriptor grants SYSTEM
// all access and INTERACTIVE exactly UserAccess, 0x12019b: everything a
// client needs (ClientAccess) but not FILE_CREATE_PIPE_INSTANCE (0x4),
// which GW would grant and which would let a user add a server instance
// under the agent's name. SystemOnlySDDL has the SYSTEM entry alone.
func TestSDDL(t *testing.T) {
	const createPipeInstance = 0x4
	if pipe.UserAccess != 0x12019b {
		t.Fatalf("UserAccess = %#x, want 0x12019b", pipe.UserAccess)
	}
	if pipe.ClientAccess != 0x120089|0x2 {
		t.Fatalf("ClientAccess = %#x, want FILE_GENERIC_READ|FILE_WRITE_DATA", pipe.ClientAccess)
	}
	if pipe.UserAccess&createPipeInstance != 0 || pipe.ClientAccess&createPipeInstance != 0 {
		t.Fatal("a user may create pipe instances")
	}
	if pipe.ClientAccess&^pipe.UserAccess != 0 {
		t.Fatalf("ClientAccess %#x asks for rights a user lacks: %#x", pipe.ClientAccess, pipe.ClientAccess&^pipe.UserAccess)
	}
	d := aces(t, pipe.DefaultSDDL)
	if len(d) != 2 || d["SY"] != 0x1f01ff || d["IU"] != pipe.UserAccess {
		t.Fatalf("DefaultSDDL %q: %#v", pipe.DefaultSDDL, d)
	}
	if gw := aces(t, "D:P(A;;GRGW;;;IU)")["IU"]; gw&createPipeInstance == 0 {
		t.Fatalf("the parser's GW %#x lacks FILE_APPEND_DATA", gw) // the reason for 0x12019b
	}
	s := aces(t, pipe.SystemOnlySDDL)
	if len(s) != 1 || s["SY"] != 0x1f01ff {
		t.Fatalf("SystemOnlySDDL %q: %#v", pipe.SystemOnlySDDL, s)
	}
	for _, c := range []struct {
		cfg  pipe.Config
		want string
	}{
		{pipe.Config{}, pipe.DefaultSDDL},
		{pipe.Config{SystemOnly: true}, pipe.SystemOnlySDDL},
		{pipe.Config{SDDL: "D:P(A;;GA;;;SY)(A;;GA;;;BA)", SystemOnly: true}, "D:P(A;;GA;;;SY)(A;;GA;;;BA)"},
	} {
		if got := c.cfg.Descriptor(); got != c.want {
			t.Errorf("%+v.Descriptor() = %q, want %q", c.cfg, got, c.want)
		}
	}
}

// TestClassify: SYSTEM is PeerSystem; an interactive local, domain or
// Entra ID user is PeerUser; everything else, and every user with
// SystemOnly, is refused before a byte is read.
func TestClassify(t *testing.T) {
	const (
		enabled  = 0x4
		denyOnly = 0x10
		user     = "S-1-5-21-1111-2222-3333-1001"
	)
	interactive := pipe.Group{SID: pipe.SIDInteractive, Attributes: enabled | 0x3}
	system := []string{pipe.SIDSystem}
	for _, c := range []struct {
		name       string
		tok        pipe.Token
		systemOnly bool
		want       ipc.PeerKind
		ok         bool
	}{
		{"system", pipe.Token{User: pipe.SIDSystem}, false, ipc.PeerSystem, true},
		{"system, system only", pipe.Token{User: pipe.SIDSystem}, true, ipc.PeerSystem, true},
		{"interactive domain user", pipe.Token{User: user, Groups: []pipe.Group{{SID: "S-1-1-0", Attributes: enabled}, interactive}}, false, ipc.PeerUser, true},
		{"interactive Entra ID user", pipe.Token{User: "S-1-12-1-1-2-3-4", Groups: []pipe.Group{interactive}}, false, ipc.PeerUser, true},
		{"interactive user, system only", pipe.Token{User: user, Groups: []pipe.Group{interactive}}, true, ipc.PeerUser, false},
		{"no token user", pipe.Token{Groups: []pipe.Group{interactive}}, false, ipc.PeerUser, false},
		{"not interactive (batch)", pipe.Token{User: user, Groups: []pipe.Group{{SID: "S-1-5-3", Attributes: enabled}}}, false, ipc.PeerUser, false},
		{"interactive deny-only", pipe.Token{User: user, Groups: []pipe.Group{{SID: pipe.SIDInteractive, Attributes: enabled | denyOnly}}}, false, ipc.PeerUser, false},
		{"interactive disabled", pipe.Token{User: user, Groups: []pipe.Group{{SID: pipe.SIDInteractive}}}, false, ipc.PeerUser, false},
		{"network logon", pipe.Token{User: user, Groups: []pipe.Group{interactive, {SID: pipe.SIDNetwork, Attributes: enabled}}}, false, ipc.PeerUser, false},
		{"local service", pipe.Token{User: "S-1-5-19", Groups: []pipe.Group{interactive}}, false, ipc.PeerUser, false},
		{"network service", pipe.Token{User: "S-1-5-20", Groups: []pipe.Group{interactive}}, false, ipc.PeerUser, false},
		{"anonymous", pipe.Token{User: "S-1-5-7", Groups: []pipe.Group{interactive}}, false, ipc.PeerUser, false},
	} {
		got, err := pipe.Classify(system, c.systemOnly, c.tok)
		if c.ok != (err == nil) || (err == nil && got != c.want) {
			t.Errorf("%s: %v %v, want %v ok=%v", c.name, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, pipe.ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", c.name, err)
		}
	}
}

// TestSystemOnlyIn: the switch is the file's presence in the state
// directory; an unreadable directory is an error, not "off".
func TestSystemOnlyIn(t *testing.T) {
	dir := t.TempDir()
	if on, err := pipe.SystemOnlyIn(dir); on || err != nil {
		t.Fatalf("without the file: %v %v", on, err)
	}
	if err := os.WriteFile(filepath.Join(dir, pipe.SystemOnlyFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if on, err := pipe.SystemOnlyIn(dir); !on || err != nil {
		t.Fatalf("with the file: %v %v", on, err)
	}
	notDir := filepath.Join(dir, pipe.SystemOnlyFile)
	if on, err := pipe.SystemOnlyIn(notDir); on || err == nil {
		t.Fatalf("state dir is a file: %v %v", on, err)
	}
	if on, err := pipe.SystemOnlyIn(filepath.Join(dir, "missing")); on || err == nil {
		t.Fatalf("state dir missing: %v %v", on, err)
	}
}
