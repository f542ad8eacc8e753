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
	// ModuleFile is the PAM module (agent/pam/c/build.sh builds it).
	ModuleFile = "pam_jitkey.so"
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

// Binaries returns a directory holding every binary in AllBinaries and
// ModuleFile.
//
// It uses env JITKEY_BIN if set (trusted as it is), else ./bin at the
// module root if it holds them all and none is older than the newest
// .go, .c or .h file of the module (so a developer who edited code after
// `make build` does not test stale binaries); otherwise it builds them
// with Build into scratch (a directory the caller owns) and returns that.
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

// Build runs go build for every binary in AllBinaries into out, and
// agent/pam/c/build.sh for ModuleFile.
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
	cmd = exec.CommandContext(ctx, filepath.Join(root, "agent", "pam", "c", "build.sh"), filepath.Join(out, ModuleFile))
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("harness: build %s: %w\n%s", ModuleFile, err, o)
	}
	return nil
}

// fresh reports whether bin holds every binary and ModuleFile, none older
// than the newest .go, .c or .h file under root.
func fresh(root, bin string) (bool, string) {
	oldest := time.Time{}
	names := []string{ModuleFile}
	for _, b := range AllBinaries {
		names = append(names, b.Name)
	}
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(bin, name))
		if err != nil {
			return false, name + " missing in ./bin"
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
		if ext := filepath.Ext(p); ext != ".go" && ext != ".c" && ext != ".h" || strings.HasSuffix(p, "_test.go") {
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
