package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
)

// cmdSurface simulates a login surface: it begins a login, writes each QR
// code to files (for the testbed's phone to scan) and the terminal, waits
// for the credential, logs in with it through PAM (never printing it),
// holds the session, then reports its end.
func cmdSurface(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("surface", flag.ContinueOnError)
	ipc := fs.String("ipc", DefaultIPC, "agent socket")
	action := fs.String("action", "logon", "logon, unlock, elevate or sudo")
	qrPNG := fs.String("qr-png", "", "write each QR code to this PNG file")
	qrText := fs.String("qr-text", "", "write each QR payload text to this file")
	pamService := fs.String("pam-service", "", "PAM service for the login proof (default in a sandbox: jitkey-sandbox)")
	sandboxDir := fs.String("sandbox", "", "run pamtester in this sandbox")
	hold := fs.Duration("hold", 0, "how long to keep the session before ending it")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the approval")
	pushTo := fs.String("push", "", "ask for a push login to the technician with this `email` (SPEC.md 11.5)")
	target := fs.String("target", "", "a remote desktop logon to this domain-joined `device` (name or id; SPEC.md 5.7.1, 11.7)")
	if _, err := parseFlags(fs, args, surfaceUsage); err != nil {
		return err
	}
	if ipcserver.ActionFor(*action) == 0 {
		return usagef(surfaceUsage, "--action %q: want logon, unlock, elevate or sudo", *action)
	}
	c, err := ipcserver.Dial(ctx, *ipc)
	if err != nil {
		return err
	}
	defer c.Close()
	if *target != "" {
		if *action != "logon" {
			return usagef(surfaceUsage, "--target needs --action logon")
		}
		err = c.BeginTarget(ctx, *target)
	} else {
		err = c.Begin(ctx, *action, 0)
	}
	if err != nil {
		return err
	}
	if *pushTo != "" {
		if err := c.Push(ctx, *pushTo); err != nil {
			return err
		}
	}
	wait, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var cred *ipcserver.Credential
	prompted := false
	for cred == nil {
		m, err := c.Next(wait)
		if err != nil {
			return fmt.Errorf("waiting for the agent: %w", err)
		}
		switch m := m.(type) {
		case *ipcserver.Status:
			fmt.Printf("status online=%v otp=%v\n", m.Online, m.OTP)
			if m.SecondApproval {
				// SPEC.md 5.7.7: no QR code from now on, no names.
				fmt.Println("Approved. Waiting for a second approver…")
			}
			if m.OTP && !prompted {
				// The agent accepts a username and code: read one line
				// "USERNAME CODE" from standard input.
				prompted = true
				fmt.Println("enter: username code")
				go readCode(wait, c, os.Stdin)
			}
		case *ipcserver.QR:
			if err := writeQR(*qrPNG, *qrText, m); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, m.Terminal)
			fmt.Printf("qr expires=%s\n", time.Unix(m.Expires, 0).UTC().Format(time.RFC3339))
		case *ipcserver.Number:
			// The number the technician picks on the phone.
			fmt.Printf("push number=%d\n", m.Number)
		case *ipcserver.Credential:
			cred = m
		case *ipcserver.Denied:
			fmt.Printf("denied: %s\n", m.Reason)
			return fmt.Errorf("login denied (code %d): %s", m.Code, m.Reason)
		}
	}
	pw := password.FromBytes(cred.Password)
	clear(cred.Password)
	defer pw.Wipe()
	if *pamService != "" || *sandboxDir != "" {
		if err := pamLogin(ctx, *sandboxDir, *pamService, cred.Username, pw); err != nil {
			fmt.Printf("login failed as %s\n", cred.Username)
			endSession(c, cred)
			return fmt.Errorf("PAM login as %s: %w", cred.Username, err)
		}
	}
	pw.Wipe()
	fmt.Printf("logged in as %s until=%s\n", cred.Username, time.Unix(cred.Deadline, 0).UTC().Format(time.RFC3339))
	if *hold > 0 {
		select {
		case <-time.After(*hold):
		case <-ctx.Done():
		}
	}
	if err := endSession(c, cred); err != nil {
		return err
	}
	fmt.Println("session ended")
	return nil
}

// readCode reads "USERNAME CODE" lines from r and sends the first
// well-formed one to the agent as an offline login attempt.
func readCode(ctx context.Context, c *ipcserver.Client, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			fmt.Println("enter: username code")
			continue
		}
		if err := c.Code(ctx, f[0], f[1]); err != nil {
			fmt.Fprintf(os.Stderr, "jitkey-agent: sending the code: %v\n", err)
		}
		return
	}
}

func endSession(c *ipcserver.Client, cred *ipcserver.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.End(ctx, cred.Session); err != nil {
		return err
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("ending the session: %w", err)
		}
		switch m := m.(type) {
		case *ipcserver.Ended:
			return nil
		case *ipcserver.Denied:
			return errors.New("ending the session: " + m.Reason)
		}
	}
}

// writeQR replaces the files atomically, so a scanner never reads half.
// The QR payload holds a one-time secret: each file is written 0600 to a
// new temporary file in the same directory (created exclusively, so a
// planted symlink is never followed), synced, then renamed over the
// target (which replaces a symlink there rather than writing through it).
func writeQR(pngPath, textPath string, q *ipcserver.QR) error {
	for _, f := range []struct {
		path string
		data []byte
	}{{pngPath, q.PNG}, {textPath, []byte(q.Text + "\n")}} {
		if f.path == "" {
			continue
		}
		if err := replaceFile(f.path, f.data); err != nil {
			return fmt.Errorf("write QR: %w", err)
		}
	}
	return nil
}

// replaceFile atomically replaces path with a 0600 file holding data.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
