// Command vectorgen writes jitkey's protocol test vectors to
// protocol/testdata, one JSON file per case. With -check it regenerates
// them in memory and fails if the committed files differ.
//
//	go run ./protocol/internal/vectorgen          # write
//	go run ./protocol/internal/vectorgen -check   # verify (make check)
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/jitkey/jitkey/protocol/internal/vectors"
)

// owned matches the file names vectorgen manages; other files in the
// directory (fuzz corpora, other vectors) are left alone.
var owned = regexp.MustCompile(`^(ok|kat|R[0-9]{2}|RL[0-9]{1,2})-[a-z0-9-]+\.json$`)

func main() {
	dir := flag.String("dir", "protocol/testdata", "vector directory")
	checkOnly := flag.Bool("check", false, "compare with the files in -dir instead of writing")
	flag.Parse()
	if err := run(*dir, *checkOnly); err != nil {
		fmt.Fprintln(os.Stderr, "vectorgen:", err)
		os.Exit(1)
	}
}

func run(dir string, checkOnly bool) error {
	vs, err := vectors.Generate()
	if err != nil {
		return err
	}
	want := map[string][]byte{}
	for _, v := range vs {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		name := v.Name + ".json"
		if !owned.MatchString(name) {
			return fmt.Errorf("vector name %q does not match %s", v.Name, owned)
		}
		want[name] = append(b, '\n')
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !(os.IsNotExist(err) && !checkOnly) {
		return err
	}
	var stale, differ []string
	have := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !owned.MatchString(e.Name()) {
			continue
		}
		have[e.Name()] = true
		if _, ok := want[e.Name()]; !ok {
			stale = append(stale, e.Name())
		}
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, b) {
			differ = append(differ, name)
		}
	}
	slices.Sort(stale)
	slices.Sort(differ)
	if checkOnly {
		if len(stale)+len(differ) > 0 {
			return fmt.Errorf("%s is out of date (run make vectors): differ or missing %v, not generated %v", dir, differ, stale)
		}
		fmt.Printf("vectorgen: %d vectors in %s are up to date\n", len(want), dir)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, name := range differ {
		if err := os.WriteFile(filepath.Join(dir, name), want[name], 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("vectorgen: %d vectors, %d written, %d removed\n", len(want), len(differ), len(stale))
	return nil
}
