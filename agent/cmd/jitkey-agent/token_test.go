//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const tok = "jk-enroll-AAAA"
	private := file("private", 0o600, tok+"\n")
	tests := []struct {
		name  string
		pos   []string
		file  string
		stdin string
		want  string // "" with err
		err   string // substring of the error
		warn  bool
	}{
		{name: "file", file: private, want: tok},
		{name: "file 0400", file: file("ro", 0o400, "  "+tok+"\r\n"), want: tok},
		{name: "file group readable", file: file("group", 0o640, tok), err: "readable by group or others"},
		{name: "file world readable", file: file("world", 0o604, tok), err: "readable by group or others"},
		{name: "missing file", file: filepath.Join(dir, "none"), err: "no such file"},
		{name: "empty file", file: file("empty", 0o600, "\n"), err: "empty"},
		{name: "too long", file: file("long", 0o600, strings.Repeat("a", maxTokenLen+1)), err: "longer than"},
		{name: "stdin flag", file: "-", stdin: tok + "\n", want: tok},
		{name: "stdin argument", pos: []string{"-"}, stdin: tok, want: tok},
		{name: "argument", pos: []string{tok}, want: tok, warn: true},
		{name: "argument and file", pos: []string{tok}, file: private, err: "one token"},
		{name: "two arguments", pos: []string{tok, tok}, err: "one token"},
		{name: "none", err: "needs --token-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			got, err := readToken(tc.pos, tc.file, strings.NewReader(tc.stdin), &warn)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if w := strings.Contains(warn.String(), "visible to every local user"); w != tc.warn {
				t.Fatalf("warning %q, want one: %v", warn.String(), tc.warn)
			}
		})
	}
}
