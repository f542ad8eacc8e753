//go:build linux

package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"golang.org/x/sys/unix"
)

// defaultTerminals are the globs whose character devices Notify considers:
// pseudo-terminals (ssh, terminal emulators) and virtual consoles.
var defaultTerminals = []string{"/dev/pts/[0-9]*", "/dev/tty[0-9]*"}

// Notify implements accounts.Notifier: it writes message, framed by a bell
// and blank lines, to every terminal device the account's uid owns (login
// sets the owner of the terminal of each session to the user, which is how
// write(1) and wall(1) find them), without waiting: a terminal whose output
// is blocked is skipped. Control characters in message are dropped. It
// returns nil when the account has no terminal, and the errors of the
// terminals it could not write to otherwise.
func (b *Backend) Notify(ctx context.Context, name, message string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: notify: %w", err)
	}
	uid, err := b.accountUID(ctx, name)
	if err != nil {
		return fmt.Errorf("linux: notify %s: %w", name, err)
	}
	text := "\a\r\n" + strings.ReplaceAll(printable(message), "\n", "\r\n") + "\r\n"
	var errs []error
	for _, tty := range terminalsOf(b.terminals, uid) {
		if err := writeTerminal(tty, text); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linux: notify %s: %w", name, err)
	}
	return nil
}

// minUserUID is the first uid of regular users (login.defs UID_MIN);
// nobody (65534) is not one.
const (
	minUserUID = 1000
	nobodyUID  = 65534
)

// Announce implements accounts.Announcer: it writes message, framed like
// Notify's, to every terminal device a regular user (uid 1000 or more,
// not nobody) owns, without waiting. It returns the errors of the
// terminals it could not write to.
func (b *Backend) Announce(ctx context.Context, message string) error {
	text := "\a\r\n" + strings.ReplaceAll(printable(message), "\n", "\r\n") + "\r\n"
	var errs []error
	for _, tty := range terminalsOf(b.terminals, -1) {
		if err := writeTerminal(tty, text); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linux: announce: %w", err)
	}
	return nil
}

// printable keeps letters, marks, numbers, punctuation, symbols, spaces
// and newlines: no escape sequence reaches the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
}

// terminalsOf returns the character devices matching globs that uid owns
// (uid -1: that any regular user owns).
func terminalsOf(globs []string, uid int) []string {
	var out []string
	for _, g := range globs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			var st unix.Stat_t
			if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
				continue
			}
			if owner := int(st.Uid); uid >= 0 && owner != uid || uid < 0 && (owner < minUserUID || owner == nobodyUID) {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// writeTerminal writes text to the terminal at path without becoming its
// controlling process and without blocking.
func writeTerminal(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}
