//go:build linux

// Command jitkey-demo is `make demo`: it starts on loopback a relay, a
// console with two customer tenants (Contoso in named mode, Fabrikam in
// shared mode), two Linux agents (accounts in sandboxes, never the host's)
// and two technicians' phones, then walks through pairing, enrollment, QR
// login in both modes, a share-list denial, logout, the removal of a
// stolen computer, and the console's audit log, telling in plain words what happens. It exits 0 only if every
// step had the expected outcome; otherwise it prints the process logs.
//
// Every login goes through the real PAM module, pam_jitkey.so, as a
// console login or sshd would use it: pamtester in the agent's account
// sandbox (harness.PAMLogin), so pam_unix checks the sandbox's accounts
// and never the host's.
//
//	jitkey-demo [--keep] [--verbose]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

func main() {
	keep := flag.Bool("keep", false, "keep the demo's directory (state, logs) and print its path")
	verbose := flag.Bool("verbose", false, "print every process's output as it happens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *keep, *verbose))
}

type demo struct {
	w     *harness.World
	start time.Time
	n     int
}

// step narrates one step, runs it and reports its outcome.
func (d *demo) step(ctx context.Context, say string, do func(ctx context.Context) (string, error)) error {
	d.n++
	fmt.Printf("%2d. %s… ", d.n, say)
	t := time.Now()
	note, err := do(ctx)
	if err != nil {
		fmt.Printf("FAILED\n    %v\n", strings.ReplaceAll(err.Error(), "\n", "\n    "))
		return err
	}
	fmt.Printf("ok (%.1fs)\n", time.Since(t).Seconds())
	if note != "" {
		fmt.Printf("    %s\n", strings.ReplaceAll(note, "\n", "\n    "))
	}
	return nil
}

func run(ctx context.Context, keep, verbose bool) int {
	start := time.Now()
	dir, err := os.MkdirTemp("", "jitkey-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitkey-demo:", err)
		return 1
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	bin, err := harness.Binaries(ctx, dir+"/bin", func(f string, a ...any) {
		if verbose {
			fmt.Printf(f+"\n", a...)
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitkey-demo:", err)
		return 1
	}
	cfg := harness.Config{Dir: dir, Bin: bin}
	if verbose {
		cfg.Log = os.Stdout
	}
	bed, err := harness.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitkey-demo:", err)
		return 1
	}
	d := &demo{w: harness.NewWorld(bed), start: start}
	fmt.Println("jitkey demo: everything below runs on this machine, on loopback; Linux accounts live in sandboxes.")
	fmt.Println()
	err = d.walk(ctx)
	bed.Close()
	if err != nil {
		fmt.Printf("\nThe demo stopped at an unexpected outcome. Last process output (%s):\n\n%s\n", bed.LogPath(), bed.Tail(120))
		if !keep {
			fmt.Println("(run with --keep to keep every state directory and the full log)")
		}
		return 1
	}
	fmt.Printf("\nEvery step had the expected outcome (%.1fs).\n", time.Since(start).Seconds())
	if keep {
		fmt.Printf("State and logs kept in %s\n", dir)
	}
	return 0
}

func (d *demo) walk(ctx context.Context) error {
	w := d.w
	for _, s := range w.SetupSteps() {
		if err := d.step(ctx, s.Say, func(ctx context.Context) (string, error) { return "", s.Do(ctx) }); err != nil {
			return err
		}
	}
	account := harness.NamedAccountNik
	var login *harness.PAMLogin

	// Named mode.
	if err := d.step(ctx, "At "+harness.DeviceContoso+"'s login prompt (PAM with pam_jitkey.so) Nik types "+account+", scans the QR code it shows and approves with his fingerprint",
		func(ctx context.Context) (string, error) {
			l, err := w.PAMLogin(ctx, w.Contoso, w.Nik, account)
			login = l
			if err != nil {
				return "", err
			}
			return "the agent made his own account " + account + " ready with a fresh password nobody saw; pam_jitkey handed it to pam_unix, which accepted it, and PAM opened the session", nil
		}); err != nil {
		return err
	}
	if err := d.step(ctx, "While Nik works, "+account+" is enabled and an administrator", func(ctx context.Context) (string, error) {
		info, err := w.ContosoAcc.Lookup(ctx, account)
		if err != nil {
			return "", err
		}
		if !info.Enabled || !info.Admin {
			return "", fmt.Errorf("%s: enabled=%v admin=%v", account, info.Enabled, info.Admin)
		}
		return "", nil
	}); err != nil {
		return err
	}
	if err := d.step(ctx, "Nik logs out: the agent disables "+account+" and re-randomises its password", func(ctx context.Context) (string, error) {
		return d.logout(ctx, login, w.ContosoAcc, account)
	}); err != nil {
		return err
	}

	// Push login.
	if err := d.step(ctx, "Contoso turns push login on; at "+harness.DeviceContoso+"'s login screen Nik types his email instead of scanning",
		func(ctx context.Context) (string, error) {
			if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--push-login"); err != nil {
				return "", err
			}
			s, acct, n, shown, err := w.PushLogin(ctx, w.Contoso, w.Nik, "nik@acme.example")
			if err != nil {
				return "", err
			}
			if acct != harness.NamedAccountNik || !slices.Contains(shown.Numbers, n) {
				return "", fmt.Errorf("logged in as %s; phone showed %v, the screen %d", acct, shown.Numbers, n)
			}
			if _, err := d.logout(ctx, s, w.ContosoAcc, acct); err != nil {
				return "", err
			}
			return fmt.Sprintf("the screen showed %d; his phone showed %s, account %s and the numbers %v; he tapped %d and was logged in as %s (then out)",
				n, shown.Request.Device, shown.Request.Account, shown.Numbers, n, acct), nil
		}); err != nil {
		return err
	}
	if err := d.step(ctx, "Someone else types Nik's email at the login screen: Nik answers \"this was not me\" on his phone",
		func(ctx context.Context) (string, error) {
			if err := w.PushReport(ctx, w.Contoso, w.Nik, "nik@acme.example"); err != nil {
				return "", err
			}
			return "the login screen shows the denial; " + harness.DeviceContoso + " sends Nik no push logins for an hour and the console raises an alarm", nil
		}); err != nil {
		return err
	}

	// Governance: reason and ticket, hard cap.
	if err := d.step(ctx, "Contoso requires a reason and a ticket (INC-…) and caps sessions at one minute, with a warning 30 s before: Nik approves with both, and leaves a program running",
		d.hardCap); err != nil {
		return err
	}

	// Governance: second approver.
	if err := d.step(ctx, "Contoso's logins now need a second approver, Sam: his phone denies Nik's first login and approves the second",
		d.secondApprover); err != nil {
		return err
	}

	// Offline code.
	if err := d.step(ctx, "The relay goes down (or "+harness.DeviceContoso+" loses its network): its PAM login prompt offers an offline code; Nik types his username and the code his phone shows",
		d.offlineLogin); err != nil {
		return err
	}
	if err := d.step(ctx, "Still offline, and no phone at hand: the MSP admin reads "+harness.DeviceContoso+"'s break-glass recovery code from the console (the reveal is recorded); at the computer it logs in as msp-breakglass, once",
		d.breakGlass); err != nil {
		return err
	}

	// Shared mode.
	if err := d.step(ctx, "At "+harness.DeviceFabrikam+" (shared mode) Nik logs in to Fabrikam's shared account, scans and approves", func(ctx context.Context) (string, error) {
		acct, err := w.SharedAccount(ctx, harness.TenantFabrikam)
		if err != nil {
			return "", err
		}
		account = acct
		if acct == harness.NamedAccountNik {
			return "", fmt.Errorf("the shared account is his named account %s", acct)
		}
		login, err = w.PAMLogin(ctx, w.Fabrikam, w.Nik, acct)
		if err != nil {
			return "", err
		}
		return "he is logged in with Fabrikam's shared account " + acct + " (PAM); the audit still names him", nil
	}); err != nil {
		return err
	}
	if err := d.step(ctx, "Nik logs out: "+account+" is disabled again", func(ctx context.Context) (string, error) {
		return d.logout(ctx, login, w.FabrikamAcc, account)
	}); err != nil {
		return err
	}

	// Share list.
	if err := d.step(ctx, "In the console, \"Share device\" removes all-admins and all-users from "+harness.DeviceFabrikam,
		func(ctx context.Context) (string, error) {
			out, err := w.Share(ctx, harness.DeviceFabrikam, "--remove", "all-admins", "--remove", "all-users")
			return strings.TrimSpace(out) + "\nthe agent received the newly signed policy", err
		}); err != nil {
		return err
	}
	if err := d.step(ctx, "Nik (a tenant admin) scans "+harness.DeviceFabrikam+"'s QR again: the computer refuses", func(ctx context.Context) (string, error) {
		l, err := w.Fabrikam.StartPAMLogin(ctx, account)
		login = l
		if err != nil {
			return "", err
		}
		payload, err := l.WaitQR(ctx)
		if err != nil {
			return "", err
		}
		sc := w.ScanPayload(ctx, w.Nik, payload, true)
		if sc.Status == "approved" {
			return "", errors.New("nik was let in")
		}
		msg := sc.Message
		if msg == "" {
			msg = sc.Error
		}
		if !strings.Contains(sc.Stdout+sc.Stderr, "not allowed on this device") {
			return "", fmt.Errorf("the phone does not say why: %s", sc.Result)
		}
		if err := w.NoneEnabled(ctx); err != nil {
			return "", err
		}
		return "his phone says: " + msg + "; no account was enabled", nil
	}); err != nil {
		return err
	}
	if err := d.step(ctx, "Sam, a global admin, still gets in, and logs out", func(ctx context.Context) (string, error) {
		_ = login.Stop(5 * time.Second)
		l, err := w.PAMLogin(ctx, w.Fabrikam, w.Sam, account)
		if err != nil {
			return "", err
		}
		note, err := d.logout(ctx, l, w.FabrikamAcc, account)
		return "logged in as " + account + " (PAM); " + note, err
	}); err != nil {
		return err
	}
	if err := d.step(ctx, harness.DeviceContoso+" is stolen: the admin removes it in the console", d.removeStolen); err != nil {
		return err
	}
	var log harness.AuditLog
	if err := d.step(ctx, "The agents have shipped their signed audit records to the console, none missing", func(ctx context.Context) (string, error) {
		var err error
		log, err = w.WaitAudit(ctx, 40*time.Second, func(l harness.AuditLog) error {
			if err := l.CheckContiguous(); err != nil {
				return err
			}
			for _, want := range []string{"login.approved", "account.enabled", "account.disabled", "login.denied", "device.removed", "offline.key.replaced", "breakglass.used"} {
				if !l.Has(want, "") {
					return errors.New("no " + want + " record yet")
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d records", len(log.Records(""))), w.NoneEnabled(ctx)
	}); err != nil {
		return err
	}
	res := w.Console.Run(ctx, "audit")
	if !res.OK() {
		fmt.Printf("jitkey-console audit failed: %s\n", res)
		return errors.New("audit")
	}
	fmt.Printf("\nThe audit log as the console shows it (jitkey-console audit):\n\n%s", indent(res.Stdout))
	return nil
}

// hardCap shows the governance switches of issue 20: a login approved
// with a reason and a ticket, ended for real at the one-minute cap (the
// program left running is killed, the account disabled, an end receipt
// signed); then the tenant's settings go back.
func (d *demo) hardCap(ctx context.Context) (string, error) {
	w := d.w
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso,
		"--require-reason", "--ticket-pattern", "INC-[0-9]+", "--max-session", "1m", "--warn-before", "30s"); err != nil {
		return "", err
	}
	s, err := w.Contoso.StartSurface("logon", time.Hour)
	if err != nil {
		return "", err
	}
	if err := s.WaitQR(ctx, 0); err != nil {
		return "", err
	}
	if sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "printer queue stuck", "--ticket", "INC-4711"); !sc.OK() {
		return "", fmt.Errorf("scan: %s", sc.Result)
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil {
		return "", err
	}
	start := time.Now()
	info, err := w.ContosoAcc.Lookup(ctx, acct)
	if err != nil {
		return "", err
	}
	uid, err := strconv.Atoi(info.ID)
	if err != nil || uid == 0 {
		return "", fmt.Errorf("%s has uid %q: not a JIT account's", acct, info.ID) // never run the program as root
	}
	left := exec.Command("sleep", "600")
	left.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := left.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- left.Wait() }()
	select {
	case <-exited:
	case <-time.After(90 * time.Second):
		_ = left.Process.Kill()
		return "", errors.New("the program outlived the cap")
	}
	took := time.Since(start).Round(time.Second)
	if on, err := harness.IsEnabled(ctx, w.ContosoAcc, acct); err != nil || on {
		return "", fmt.Errorf("%s enabled after the cap (%v)", acct, err)
	}
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso,
		"--require-reason=false", "--ticket-pattern", "", "--max-session", "8h"); err != nil {
		return "", err
	}
	return fmt.Sprintf("logged in as %s with reason and ticket INC-4711 signed into his approval; after %v the agent warned him, killed the program (%v), disabled %s and signed an end receipt; Contoso's settings are back",
		acct, took, left.ProcessState, acct), nil
}

// secondApprover shows the second approver of issue 20 (SPEC.md 11.14):
// Nik's approval alone does not log him in; Sam's phone is asked, denies
// once (nothing enabled), then approves; then the setting goes back.
func (d *demo) secondApprover(ctx context.Context) (string, error) {
	w := d.w
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--second-approvers", harness.TechSam); err != nil {
		return "", err
	}
	try := func(answer string) (string, *harness.Surface, harness.Scan, error) {
		l, err := w.ListenSecond(ctx, w.Sam, answer)
		if err != nil {
			return "", nil, harness.Scan{}, err
		}
		s, err := w.Contoso.StartSurface("logon", time.Hour)
		if err != nil {
			return "", nil, harness.Scan{}, err
		}
		if err := s.WaitQR(ctx, 0); err != nil {
			return "", s, harness.Scan{}, err
		}
		sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "reboot the file server")
		st, err := harness.SecondResult(ctx, l)
		return st, s, sc, err
	}
	st, _, sc, err := try("--deny")
	if err != nil || st != "denied" || sc.OK() {
		return "", fmt.Errorf("sam denies: his phone %q (%v), Nik's scan %s", st, err, sc.Result)
	}
	if on, err := harness.IsEnabled(ctx, w.ContosoAcc, harness.NamedAccountNik); on {
		return "", fmt.Errorf("%s enabled after Sam's deny (%v)", harness.NamedAccountNik, err)
	}
	st, s, sc, err := try("--approve")
	if err != nil || st != "approved" || !sc.OK() {
		return "", fmt.Errorf("sam approves: his phone %q (%v), Nik's scan %s", st, err, sc.Result)
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil {
		return "", err
	}
	if _, err := d.logout(ctx, s, w.ContosoAcc, acct); err != nil {
		return "", err
	}
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--second-approvers", ""); err != nil {
		return "", err
	}
	return fmt.Sprintf("Sam's phone showed Nik's request (device, account, reason) and denied it: refused, nothing enabled; the next time Sam approved and Nik was logged in as %s (then out); the audit names both; Contoso's setting is back", acct), nil
}

// removeStolen removes CONTOSO-WS1 (SPEC.md 11.10) and shows that its
// agent refuses logins and that Nik's phone no longer lists it.
func (d *demo) removeStolen(ctx context.Context) (string, error) {
	w := d.w
	out, err := w.Console.Must(ctx, "devices", "remove", harness.DeviceContoso)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(out, "\n")
	// The agent applies the removal policy within a push round; until
	// then the login prompt still shows a code.
	var reason string
	shows := regexp.MustCompile(`(?:Code: JK:|jitkey: login refused: (.+))`)
	for deadline := time.Now().Add(20 * time.Second); reason == ""; {
		s, err := w.Contoso.StartPAMLogin(ctx, harness.NamedAccountNik)
		if err != nil {
			return "", err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := s.WaitFor(wctx, 0, shows)
		cancel()
		_ = s.Stop(5 * time.Second)
		switch {
		case err != nil:
			return "", err
		case m[1] != "":
			reason = m[1]
		case time.Now().After(deadline):
			return "", errors.New("the agent does not refuse logins after the removal")
		default:
			time.Sleep(300 * time.Millisecond)
		}
	}
	if err := w.NoneEnabled(ctx); err != nil {
		return "", err
	}
	var u struct{ Removed []string }
	if err := w.Nik.Run(ctx, "--json", "sync").JSON(&u); err != nil {
		return "", err
	}
	if len(u.Removed) != 1 || u.Removed[0] != harness.DeviceContoso {
		return "", fmt.Errorf("the sync of Nik's phone reports removed devices %v", u.Removed)
	}
	return first + "\nits PAM login prompt now says: " + reason + "\nNik's phone synced: " + harness.DeviceContoso +
		" is no longer listed and its QR codes are refused", nil
}

// logout ends the session at the surface and checks the account is
// disabled afterwards.
var reconnected = regexp.MustCompile(`connected to home relay`)

// offlineLogin stops the relay, logs Nik in on Contoso with the offline
// code his phone shows (its key came with his online login there), logs
// him out, and brings the relay back.
func (d *demo) offlineLogin(ctx context.Context) (string, error) {
	w := d.w
	var code struct {
		Username, Code string
		SecondsLeft    int `json:"seconds_left"`
	}
	for {
		if err := w.Nik.Run(ctx, "--json", "otp", harness.DeviceContoso).JSON(&code); err != nil {
			return "", fmt.Errorf("jitkey-phone otp: %w", err)
		}
		if code.SecondsLeft >= 5 {
			break
		}
		time.Sleep(time.Duration(code.SecondsLeft+1) * time.Second)
	}
	if err := w.Relay.Stop(5 * time.Second); err != nil {
		return "", fmt.Errorf("stop the relay: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := w.Contoso.WaitOffline(wctx); err != nil {
		return "", err
	}
	acct := harness.NamedAccountNik
	l, err := w.Contoso.StartPAMLogin(wctx, acct)
	if err != nil {
		return "", err
	}
	if err := l.EnterCode(wctx, code.Username, code.Code); err != nil {
		return "", fmt.Errorf("the login prompt did not offer a code: %w", err)
	}
	if _, err := l.WaitSession(wctx); err != nil {
		return "", err
	}
	note, err := d.logout(ctx, l, w.ContosoAcc, acct)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("jitkey-phone otp showed %s / %s (%d s left); at the PAM prompt he typed both and was logged in as %s offline; %s; the relay stays down for the next step",
		code.Username, code.Code, code.SecondsLeft, acct, note), nil
}

// recoveryCode finds a recovery code in `breakglass show`'s output.
var recoveryCode = regexp.MustCompile(`\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){6})\b`)

// breakGlass (SPEC.md 11.15), with the relay still down: the admin
// reveals Contoso's recovery code at the console, the person at the
// computer logs in as msp-breakglass with it at the PAM prompt, logs out,
// and the same code is refused; then the relay comes back.
func (d *demo) breakGlass(ctx context.Context) (string, error) {
	w := d.w
	out, err := w.Console.Must(ctx, "breakglass", "show", harness.DeviceContoso, "--as", "demo-admin")
	if err != nil {
		return "", err
	}
	m := recoveryCode.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no recovery code in:\n%s", out)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	acct := "msp-breakglass"
	l, err := w.Contoso.StartPAMLogin(wctx, acct)
	if err != nil {
		return "", err
	}
	if err := l.EnterCode(wctx, "breakglass", m[1]); err != nil {
		return "", fmt.Errorf("the login prompt did not offer a code: %w", err)
	}
	if _, err := l.WaitSession(wctx); err != nil {
		return "", err
	}
	note, err := d.logout(ctx, l, w.ContosoAcc, acct)
	if err != nil {
		return "", err
	}
	again, err := w.Contoso.StartPAMLogin(wctx, acct)
	if err != nil {
		return "", err
	}
	if err := again.EnterCode(wctx, "breakglass", m[1]); err != nil {
		return "", err
	}
	why, err := again.Failure(wctx)
	if err != nil {
		return "", fmt.Errorf("the used recovery code logged in again")
	}
	if !strings.Contains(why, "wrong or used recovery code") {
		return "", fmt.Errorf("second use refused with %q", why)
	}
	if err := d.relayBack(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("the console showed %s (reveal recorded, by demo-admin); typed at the PAM prompt with the username breakglass it logged in as %s; %s; "+
		"the same code again: %q; the relay is back: the agent reports the use (alarm breakglass-used) and escrows the next code", m[1], acct, note, why), nil
}

// relayBack restarts the relay and waits until the agents and the
// console are on it again.
func (d *demo) relayBack(ctx context.Context) error {
	w := d.w
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	marks := map[*harness.Proc]int{}
	for _, p := range []*harness.Proc{w.Contoso.Proc, w.Fabrikam.Proc, w.Console.Serve} {
		marks[p] = p.Mark()
	}
	if err := w.Relay.Restart(ctx); err != nil {
		return fmt.Errorf("restart the relay: %w", err)
	}
	for p, mark := range marks {
		if _, err := p.WaitFor(wctx, mark, reconnected); err != nil {
			return fmt.Errorf("not back on the relay: %w", err)
		}
	}
	return nil
}

// session is a logged-in session at a login surface: the real PAM module
// (harness.PAMLogin) or, for push, the simulated surface (harness.Surface).
type session interface {
	Logout(ctx context.Context) error
}

func (d *demo) logout(ctx context.Context, s session, acc *harness.Accounts, account string) (string, error) {
	if err := s.Logout(ctx); err != nil {
		return "", err
	}
	info, err := acc.Lookup(ctx, account)
	if err != nil {
		return "", err
	}
	if info.Enabled {
		return "", fmt.Errorf("%s is still enabled after logout", account)
	}
	return account + " is disabled", nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
