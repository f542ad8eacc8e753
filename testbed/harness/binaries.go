//go:build linux

package harness

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Names of the jitkey binaries, as `make build` names them in ./bin.
const (
	RelayBin   = "jitkey-relay"
	ConsoleBin = "jitkey-console"
	AgentBin   = "jitkey-agent"
	PhoneBin   = "jitkey-phone"
)

// AllBinaries lists every binary the testbed runs, with its package.
var AllBinaries = []struct{ Name, Package string }{
	{RelayBin, "./relay/cmd/jitkey-relay"},
	{ConsoleBin, "./console/cmd/jitkey-console"},
	{AgentBin, "./agent/cmd/jitkey-agent"},
	{PhoneBin, "./mobilesim/cmd/jitkey-phone"},
}

// ModuleRoot returns the directory holding the jitkey go.mod, searching
// upwards from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/jitkey/jitkey\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: module root: no jitkey go.mod above the working directory")
		}
		dir = parent
	}
}

// Binaries returns a directory holding every binary in AllBinaries.
//
// It uses env JITKEY_BIN if set (trusted as it is), else ./bin at the
// module root if it holds all binaries and none is older than the newest
// .go file of the module (so a developer who edited code after `make
// build` does not test stale binaries); otherwise it builds them with
// `go build` into scratch (a directory the caller owns) and returns that.
// logf, if not nil, is told which it chose.
func Binaries(ctx context.Context, scratch string, logf func(format string, a ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if d := os.Getenv("JITKEY_BIN"); d != "" {
		logf("binaries: using JITKEY_BIN=%s", d)
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin")
	if ok, why := fresh(root, bin); ok {
		logf("binaries: using %s", bin)
		return bin, nil
	} else {
		logf("binaries: building into %s (%s)", scratch, why)
	}
	if err := Build(ctx, root, scratch); err != nil {
		return "", err
	}
	return scratch, nil
}

// Build runs go build for every binary in AllBinaries into out.
func Build(ctx context.Context, root, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("harness: build: %w", err)
	}
	args := []string{"build", "-trimpath", "-o", out + string(filepath.Separator)}
	for _, b := range AllBinaries {
		args = append(args, b.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("harness: go %s: %w\n%s", strings.Join(args, " "), err, o)
	}
	return nil
}

// fresh reports whether bin holds every binary, none older than the
// newest .go file under root.
func fresh(root, bin string) (bool, string) {
	oldest := time.Time{}
	for _, b := range AllBinaries {
		fi, err := os.Stat(filepath.Join(bin, b.Name))
		if err != nil {
			return false, b.Name + " missing in ./bin"
		}
		if oldest.IsZero() || fi.ModTime().Before(oldest) {
			oldest = fi.ModTime()
		}
	}
	var newer string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "testdata", "node_modules", "testbed":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(oldest) {
			newer = p
			return filepath.SkipAll
		}
		return nil
	})
	if newer != "" {
		rel, _ := filepath.Rel(root, newer)
		return false, rel + " is newer than ./bin"
	}
	return true, ""
}
