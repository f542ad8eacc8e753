//go:build linux

// Command winetest runs jitkey's Windows pieces under Wine against the
// real testbed (make wine-test): a relay, the console and the
// technicians' phones (Linux binaries from testbed/harness), the Windows
// agent (jitkey-agent.exe, GOOS=windows) serving its named pipe under
// Wine, and harness.exe loading jitkey_cp.dll as LogonUI would.
//
// First winudp.test.exe, the relay client's winsock UDP socket's tests
// (relay/client/winudp), runs under Wine: Go's net.ListenUDP fails
// there (Wine 8 refuses the SIO_UDP_CONNRESET ioctl: "winapi error
// #10045"), and the agent's relay client takes that socket instead.
//
// Then, with the agent online over the real relay:
//   - WIN-WS1, enrolled in Contoso (named mode, push login on): the tile
//     bitmap decodes to the agent's login QR and is redrawn with a new
//     code on rotation; Nik's phone scans the picture and approves, and
//     GetSerialization must return a KERB_INTERACTIVE_UNLOCK_LOGON for
//     msp-nik. Then the push path: Sam's phone listens, the harness
//     clicks "Send notification" and types Sam's email, the tile shows a
//     number, Sam picks it on the phone, and the serialization is for
//     msp-sam. Then CredUI, as UAC asks (CPUS_CREDUI with
//     CREDUIWIN_ENUMERATE_ADMINS): Nik scans the tile's QR and approves;
//     the serialization, unpacked with CredUnPackAuthenticationBufferW,
//     must name msp-nik. Wine 8's credui.dll only stubs
//     CredPackAuthenticationBufferW, so there the harness must instead
//     report that stub and GetSerialization's E_FAIL after the approval.
//   - WIN-WS2, enrolled in Fabrikam (shared mode), with the relay
//     stopped: the tile switches to the offline-code fields by itself;
//     the harness types the technician's username and the code his
//     phone shows (`jitkey-phone otp`; shared mode derives it from the
//     tenant's secret, no earlier login needed), and GetSerialization
//     must return a KERB_INTERACTIVE_UNLOCK_LOGON for the tenant's
//     shared account (Nik at logon, Sam at unlock).
//   - With the agent stopped, the DLL must say the agent is not running.
//
// Both devices are enrolled by jitkey-agent.exe under Wine (over the same
// winsock socket). Under Wine everything runs as one user and netapi32
// is a stub, so the agent runs with --sandbox (accounts in memory,
// netusertest; secrets sealed with the state's key file, as enroll does,
// not DPAPI) and the DLL is told by the registry value TestAllowSameUser
// that an agent of its own user may serve the pipe; on Windows both are
// SYSTEM.
//
//	winetest BIN   (BIN holds jitkey-agent.exe, jitkey_cp.dll, harness.exe,
//	                bcryptprimitives.dll, winudp.test.exe)
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/testbed/harness"
)

const (
	wine        = "/usr/lib/wine/wine64"
	deviceNamed = "WIN-WS1" // Contoso, named mode: QR and push
	deviceShare = "WIN-WS2" // Fabrikam, shared mode: offline codes
	rotation    = 10 * time.Second
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "winetest: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("winetest: PASS")
}

func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

func step(format string, a ...any) {
	fmt.Printf("[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// wineEnv is how every Wine process of the run starts.
type wineEnv struct {
	bed *harness.Bed
	env []string
	bin string // BIN
	dir string // scratch directory
}

func (we *wineEnv) proc(name string, args ...string) *harness.Proc {
	p := we.bed.Proc(name, wine, args...)
	p.Env = we.env
	return p
}

// harness starts harness.exe on the DLL in scenario for at most seconds.
func (we *wineEnv) harness(name, scenario string, seconds int, extra ...string) (*harness.Proc, error) {
	h := we.proc(name, append([]string{filepath.Join(we.bin, "harness.exe"), winPath(filepath.Join(we.bin, "jitkey_cp.dll")), scenario, strconv.Itoa(seconds)}, extra...)...)
	return h, h.Start()
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: winetest BIN")
	}
	winBin, err := filepath.Abs(os.Args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "jitkey-wine-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "prefix")
	env := []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all"}

	step("wine prefix %s", prefix)
	if err := wineRun(ctx, env, "reg", "add", `HKLM\SOFTWARE\jitkey\CredentialProvider`, "/v", "TestAllowSameUser", "/t", "REG_DWORD", "/d", "1", "/f"); err != nil {
		return fmt.Errorf("wine reg add: %w", err)
	}
	// Go binaries need ProcessPrng, which Wine 8 lacks (ENVIRONMENT.md).
	shim, err := os.ReadFile(filepath.Join(winBin, "bcryptprimitives.dll"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(prefix, "drive_c/windows/system32/bcryptprimitives.dll"), shim, 0o644); err != nil {
		return err
	}

	step("the relay client's winsock UDP socket under Wine (relay/client/winudp tests, GOOS=windows)")
	ut := exec.CommandContext(ctx, wine, filepath.Join(winBin, "winudp.test.exe"), "-test.v", "-test.count=1")
	ut.Env = append(os.Environ(), env...)
	out, err := ut.CombinedOutput()
	fmt.Print(string(out))
	if err != nil || !strings.Contains(string(out), "\nPASS") || !strings.Contains(string(out), "--- PASS: TestQUIC") {
		return fmt.Errorf("winudp tests under Wine: %v", err)
	}

	step("testbed: relay, console, phones, Linux agents (testbed/harness World)")
	bin, err := harness.Binaries(ctx, filepath.Join(dir, "bin"), func(f string, a ...any) {})
	if err != nil {
		return err
	}
	bed, err := harness.New(harness.Config{Dir: dir, Bin: bin})
	if err != nil {
		return err
	}
	defer bed.Close()
	w := harness.NewWorld(bed)
	if err := w.Setup(ctx); err != nil {
		return err
	}
	we := &wineEnv{bed: bed, env: env, bin: winBin, dir: dir}
	step("push login on for %s", harness.TenantContoso)
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--push-login"); err != nil {
		return err
	}
	// The Windows agent enrolls under Wine too, over the same winsock
	// socket (the token on stdin: Go reports every Windows file as mode
	// 0666, which --token-file refuses).
	states := map[string]string{}
	for _, d := range []struct{ name, tenant string }{{deviceNamed, harness.TenantContoso}, {deviceShare, harness.TenantFabrikam}} {
		step("jitkey-agent.exe enroll under Wine: %s in %s", d.name, d.tenant)
		tok, err := w.Console.Token(ctx, d.tenant)
		if err != nil {
			return err
		}
		states[d.name] = filepath.Join(dir, "state-"+d.name)
		enroll := exec.CommandContext(ctx, wine, filepath.Join(winBin, "jitkey-agent.exe"), "enroll", "--token-file", "-",
			"--state", winPath(states[d.name]), "--name", d.name)
		enroll.Env = append(os.Environ(), env...)
		enroll.Stdin = strings.NewReader(tok)
		out, err := enroll.CombinedOutput()
		fmt.Print(string(out))
		if err != nil {
			return fmt.Errorf("enroll under Wine: %w", err)
		}
	}
	for _, p := range []*harness.Phone{w.Nik, w.Sam} {
		if err := w.SyncUntil(ctx, p, 4); err != nil {
			return err
		}
	}

	step("start the Windows agent of %s under Wine (named pipe, accounts in memory)", deviceNamed)
	agent, err := startAgent(ctx, we, deviceNamed, states[deviceNamed])
	if err != nil {
		return err
	}
	// Bounded by more than the relay client's longest back-off (30 s):
	// a failed first attempt under load must not fail the test.
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = agent.WaitFor(cctx, 0, regexp.MustCompile(`msg="connected to home relay"`))
	ccancel()
	if err != nil {
		return fmt.Errorf("the agent under Wine did not connect to the relay: %w\n%s", err, agent.Output())
	}
	sock := "net.ListenUDP"
	if strings.Contains(agent.Output(), "relay socket opened with plain winsock calls") {
		sock = "relay/client/winudp (net.ListenUDP failed: " + wsaError(agent.Output()) + ")"
	}
	step("the agent is online over the real relay; its UDP socket: %s", sock)
	fmt.Printf("--- agent log ---\n%s\n--- end ---\n", agent.Output())
	if err := qrLogin(ctx, we, w, agent); err != nil {
		return err
	}
	if err := pushLogin(ctx, we, w, agent); err != nil {
		return err
	}
	if err := credUILogin(ctx, we, w, agent); err != nil {
		return err
	}
	if err := agent.Stop(10 * time.Second); err != nil {
		step("agent stop: %v", err)
	}

	step("stop the relay; start the Windows agent of %s: it serves offline", deviceShare)
	if err := w.Relay.Kill(); err != nil {
		return fmt.Errorf("stop the relay: %w", err)
	}
	agent, err = startAgent(ctx, we, deviceShare, states[deviceShare])
	if err != nil {
		return err
	}
	if err := offlineLogin(ctx, w, w.Nik, "logon", 2, we, agent); err != nil {
		return err
	}
	// KerbWorkstationUnlockLogon = 7; Sam, global admin, with his code.
	if err := offlineLogin(ctx, w, w.Sam, "unlock", 7, we, agent); err != nil {
		return err
	}
	step("stop the agent: the DLL without an agent")
	if err := agent.Stop(10 * time.Second); err != nil {
		step("agent stop: %v", err)
	}
	return dllWithoutAgent(ctx, we)
}

// wsaError is the winapi error the agent logged for net.ListenUDP.
func wsaError(log string) string {
	if m := regexp.MustCompile(`winapi error #\d+`).FindString(log); m != "" {
		return m
	}
	return "see the agent log"
}

func startAgent(ctx context.Context, we *wineEnv, device, state string) (*harness.Proc, error) {
	agent := we.proc("win-agent-"+device, filepath.Join(we.bin, "jitkey-agent.exe"), "run", "--state", winPath(state),
		"--sandbox", "wine-"+device, "--rotation", rotation.String())
	if err := agent.Start(); err != nil {
		return nil, err
	}
	if _, err := agent.WaitFor(ctx, 0, regexp.MustCompile(`ready ipc=`)); err != nil {
		return nil, fmt.Errorf("agent not ready: %w\n%s", err, agent.Output())
	}
	step("the agent of %s serves its pipe", device)
	return agent, nil
}

// nextQR waits for the harness's next bitmap after number after that is
// a QR code (the first may be the blank 64x64 tile) and returns its
// number, the PNG it was converted to, and its payload.
func nextQR(ctx context.Context, we *wineEnv, h *harness.Proc, prefix string, after int) (int, string, string, error) {
	for n := after + 1; ; n++ {
		if _, err := h.WaitFor(ctx, 0, regexp.MustCompile(fmt.Sprintf(`^bitmap #%d `, n))); err != nil {
			return 0, "", "", fmt.Errorf("no tile bitmap #%d: %w\n%s", n, err, h.Output())
		}
		png := fmt.Sprintf("%s-%d.png", prefix, n)
		if _, err := pgmToPNG(fmt.Sprintf("%s-%d.pgm", prefix, n), png); err != nil {
			continue // the blank tile
		}
		pic, err := os.ReadFile(png)
		if err != nil {
			return 0, "", "", err
		}
		payload, err := qrcode.Decode(pic)
		if err != nil {
			return 0, "", "", fmt.Errorf("tile bitmap #%d is not a readable QR code: %w", n, err)
		}
		if !strings.HasPrefix(payload, "JK:") {
			return 0, "", "", fmt.Errorf("tile QR payload %.12q lacks the JK prefix", payload)
		}
		return n, png, payload, nil
	}
}

// qrLogin: the tile shows the agent's login QR, redrawn with a new code
// on rotation; Nik's phone scans the tile's picture and approves; the
// DLL raises CredentialsChanged and GetSerialization returns a
// KERB_INTERACTIVE_UNLOCK_LOGON for msp-nik.
func qrLogin(ctx context.Context, we *wineEnv, w *harness.World, agent *harness.Proc) error {
	step("harness.exe loads jitkey_cp.dll (CPUS_LOGON) on %s: the QR tile", deviceNamed)
	prefix := filepath.Join(we.dir, "tile")
	from := agent.Mark()
	h, err := we.harness("harness-qr", "logon", 120, winPath(prefix))
	if err != nil {
		return err
	}
	n1, _, p1, err := nextQR(ctx, we, h, prefix, 0)
	if err != nil {
		return err
	}
	step("tile bitmap #%d decodes to the agent's login QR (%d characters, %s...)", n1, len(p1), p1[:6])
	var png, p2 string
	for n, p := n1, p1; ; {
		var err error
		if n, png, p2, err = nextQR(ctx, we, h, prefix, n); err != nil {
			return err
		}
		if p2 != p {
			step("tile bitmap #%d: a new login QR after the %v rotation (%s...)", n, rotation, p2[:6])
			break
		}
		p = p2 // the same code redrawn (a status change)
	}
	step("Nik's phone scans the tile's picture and approves")
	if err := nikApproves(ctx, w, png); err != nil {
		return err
	}
	return finish(ctx, h, agent, from, "qr", harness.NamedAccountNik, `msg="qr login approved" account=`+harness.NamedAccountNik+` technician=`+harness.TechNik)
}

// nikApproves has Nik's phone scan the tile picture png and approve; the
// approval must be for his named account.
func nikApproves(ctx context.Context, w *harness.World, png string) error {
	res := w.Nik.Run(ctx, "--json", "scan", "--image", png, "--approve")
	fmt.Println(res.String())
	var scan struct {
		Status  string `json:"status"`
		Account string `json:"account"`
	}
	if err := res.JSON(&scan); err != nil || scan.Status != "approved" || scan.Account != harness.NamedAccountNik {
		return fmt.Errorf("phone scan: %v: %s", err, res)
	}
	return nil
}

var (
	phoneListening = regexp.MustCompile(`"event":"(listening|waiting-for-wake)"`)
	phonePush      = regexp.MustCompile(`^(\{.*"event":"push".*)$`)
	phoneResult    = regexp.MustCompile(`^(\{.*"event":"push-result".*)$`)
	tileNumber     = regexp.MustCompile(`^field 3: (\d+)$`)
)

// pushLogin: Sam's phone listens; the harness clicks "Send notification"
// and types Sam's email; the tile shows a number and the phone the
// request with three numbers; Sam picks the tile's; GetSerialization
// returns a KERB_INTERACTIVE_UNLOCK_LOGON for msp-sam.
func pushLogin(ctx context.Context, we *wineEnv, w *harness.World, agent *harness.Proc) error {
	step("Sam's phone listens for push logins")
	l, err := w.Sam.Start("listen", "--json", "listen", "--once")
	if err != nil {
		return err
	}
	defer l.Stop(5 * time.Second)
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		return err
	}
	step("harness.exe (CPUS_LOGON) on %s: Send notification to sam@acme.example", deviceNamed)
	from := agent.Mark()
	h, err := we.harness("harness-push", "logon", 120, "-", "--push", "sam@acme.example")
	if err != nil {
		return err
	}
	m, err := h.WaitFor(ctx, 0, tileNumber)
	if err != nil {
		return fmt.Errorf("the tile showed no number: %w\n%s", err, h.Output())
	}
	num := m[1]
	pm, err := l.WaitFor(ctx, 0, phonePush)
	if err != nil {
		return fmt.Errorf("the phone showed no push: %w\n%s", err, l.Output())
	}
	var shown struct {
		Request struct {
			Device, Account, Action string
		} `json:"request"`
		Numbers []int `json:"numbers"`
	}
	if err := json.Unmarshal([]byte(pm[1]), &shown); err != nil {
		return err
	}
	n, _ := strconv.Atoi(num)
	if shown.Request.Device != deviceNamed || shown.Request.Account != harness.NamedAccountSam || len(shown.Numbers) != 3 || !slices.Contains(shown.Numbers, n) {
		return fmt.Errorf("the phone showed %+v; the tile %s", shown, num)
	}
	step("the tile shows %s; Sam's phone shows %s, %s, %v; Sam picks %s", num, shown.Request.Device, shown.Request.Account, shown.Numbers, num)
	if err := l.Send(num + "\n"); err != nil {
		return err
	}
	if err := finish(ctx, h, agent, from, "push", harness.NamedAccountSam, `account=`+harness.NamedAccountSam); err != nil {
		return err
	}
	if r, err := l.WaitFor(ctx, 0, phoneResult); err != nil || !strings.Contains(r[1], `"status":"approved"`) {
		return fmt.Errorf("phone push result %v: %v", r, err)
	}
	return nil
}

// credUILogin: the CPUS_CREDUI tile (as UAC: CREDUIWIN_ENUMERATE_ADMINS)
// shows the agent's login QR; Nik's phone scans it and approves; the DLL
// raises CredentialsChanged and GetSerialization returns the packed
// CredUI buffer, which the harness unpacks to msp-nik. Where credui.dll's
// CredPackAuthenticationBufferW is a stub (Wine 8), the approval, the
// agent's log and the DLL's E_FAIL (no half-built buffer) are what can
// be shown, and the step passes on exactly that outcome.
func credUILogin(ctx context.Context, we *wineEnv, w *harness.World, agent *harness.Proc) error {
	step("harness.exe (CPUS_CREDUI, CREDUIWIN_ENUMERATE_ADMINS, as UAC) on %s: the QR tile", deviceNamed)
	prefix := filepath.Join(we.dir, "credui")
	from := agent.Mark()
	h, err := we.harness("harness-credui", "credui", 120, winPath(prefix))
	if err != nil {
		return err
	}
	n, png, p, err := nextQR(ctx, we, h, prefix, 0)
	if err != nil {
		return err
	}
	step("tile bitmap #%d decodes to the agent's login QR (%s...); Nik's phone scans it and approves", n, p[:6])
	if err := nikApproves(ctx, w, png); err != nil {
		return fmt.Errorf("credui: %w", err)
	}
	t, alog, err := transcript(ctx, h, agent, from, "credui")
	if err != nil {
		return fmt.Errorf("credui: %w", err)
	}
	if !strings.Contains(alog, `msg="qr login approved" account=`+harness.NamedAccountNik+` technician=`+harness.TechNik+` action=elevate`) {
		return fmt.Errorf("credui: the agent log lacks Nik's approval to elevate")
	}
	want := []string{"SetUsageScenario(credui) = S_OK", "CredentialsChanged(42)", "autologon 1\n"}
	stub := strings.Contains(t, "CredPackAuthenticationBufferW: a stub")
	if stub {
		want = append(want, "GetSerialization = 0x80004005 response", "CredUI: no serialization: credui.dll's CredPackAuthenticationBufferW is a stub here", "done rc=4")
	} else {
		want = append(want, "credui.dll CredPackAuthenticationBufferW: packs", "GetSerialization: response RETURN_CREDENTIAL_FINISHED",
			"CredUI serialization (CredUnPackAuthenticationBufferW): user ", "done rc=0")
	}
	for _, s := range want {
		if !strings.Contains(t, s) {
			return fmt.Errorf("credui: transcript lacks %q", s)
		}
	}
	if stub {
		step("PASS: credui: approved on the phone, CredentialsChanged, GetSerialization E_FAIL: Wine's credui.dll stubs CredPackAuthenticationBufferW (no CredUI buffer to unpack here)")
		return nil
	}
	if !regexp.MustCompile(`(?m)^CredUI serialization \(CredUnPackAuthenticationBufferW\): user (\S+\\)?` + regexp.QuoteMeta(harness.NamedAccountNik) + `,`).MatchString(t) {
		return fmt.Errorf("credui: the serialization does not name %s", harness.NamedAccountNik)
	}
	step("PASS: credui: GetSerialization returned a CredUI serialization for %s", harness.NamedAccountNik)
	return nil
}

// transcript waits for harness h to end and returns (and prints) its
// output and the agent's log lines since its line from.
func transcript(ctx context.Context, h, agent *harness.Proc, from int, what string) (t, alog string, err error) {
	if _, err := h.WaitFor(ctx, 0, regexp.MustCompile(`^done rc=`)); err != nil {
		return "", "", fmt.Errorf("harness did not finish: %w\n%s", err, h.Output())
	}
	t = h.Output()
	alog = strings.Join(agent.Lines()[from:], "\n")
	fmt.Printf("--- harness %s transcript ---\n%s\n--- agent log ---\n%s\n--- end ---\n", what, t, alog)
	return t, alog, nil
}

// finish waits for harness h to end and checks that it finished a
// KERB_INTERACTIVE_UNLOCK_LOGON (logon) for account, and that the agent
// logged agentLine since its line from.
func finish(ctx context.Context, h, agent *harness.Proc, from int, what, account, agentLine string) error {
	t, alog, err := transcript(ctx, h, agent, from, what)
	if err != nil {
		return err
	}
	for _, want := range []string{
		"CredentialsChanged(42)",
		"GetSerialization: response RETURN_CREDENTIAL_FINISHED",
		"KERB_INTERACTIVE_UNLOCK_LOGON: MessageType 2, user " + account + "\n",
		"done rc=0",
	} {
		if !strings.Contains(t+"\n", want) {
			return fmt.Errorf("%s login: transcript lacks %q", what, want)
		}
	}
	if !strings.Contains(alog, agentLine) {
		return fmt.Errorf("%s login: the agent log lacks %q", what, agentLine)
	}
	step("PASS: %s login: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON (MessageType 2) for %s (%s, named mode)", what, account, harness.TenantContoso)
	return nil
}

// offlineLogin runs an offline-code login in the scenario (logon or
// unlock): the technician's phone shows his code for the device, the
// harness types it on the tile that switched to the offline fields by
// itself, and the serialization must be a KERB_INTERACTIVE_UNLOCK_LOGON
// of the message type kerbType naming the tenant's shared account.
func offlineLogin(ctx context.Context, w *harness.World, phone *harness.Phone, scenario string, kerbType int,
	we *wineEnv, agent *harness.Proc) error {
	shared, err := w.SharedAccount(ctx, harness.TenantFabrikam)
	if err != nil {
		return err
	}
	var otp struct {
		Username    string `json:"username"`
		Code        string `json:"code"`
		SecondsLeft int    `json:"seconds_left"`
		Mode        string `json:"mode"`
	}
	for {
		res := phone.Run(ctx, "--json", "otp", deviceShare)
		if err := res.JSON(&otp); err != nil || len(otp.Code) != 6 {
			return fmt.Errorf("phone otp %s: %v: %s", deviceShare, err, res)
		}
		if otp.SecondsLeft >= 10 { // the harness starts under Wine within it
			break
		}
		time.Sleep(time.Duration(otp.SecondsLeft+1) * time.Second)
	}
	step("%s's phone (jitkey-phone otp %s, no network): username %s, a %d-digit code (not shown), %s mode, %d s left",
		phone.Name, deviceShare, otp.Username, len(otp.Code), otp.Mode, otp.SecondsLeft)
	step("harness.exe loads jitkey_cp.dll (%s); the tile switches to the offline code by itself; it types %s and the code, then Submit", scenario, otp.Username)
	from := len(agent.Lines())
	h, err := we.harness("harness-offline-"+scenario, scenario, 60, "-", "--offline", otp.Username, otp.Code)
	if err != nil {
		return err
	}
	if _, err := h.WaitFor(ctx, 0, regexp.MustCompile(`^done rc=`)); err != nil {
		return fmt.Errorf("harness did not finish: %w\n%s", err, h.Output())
	}
	t := h.Output()
	alog := strings.Join(agent.Lines()[from:], "\n")
	fmt.Printf("--- harness %s, offline code ---\n%s\n", scenario, t)
	fmt.Printf("--- agent log ---\n%s\n--- end ---\n", alog)
	if strings.Contains(t, otp.Code) || strings.Contains(agent.Output(), otp.Code) {
		return errors.New("the offline code appears in the transcript")
	}
	if strings.Contains(t, "CommandLinkClicked(9") {
		return errors.New("offline login: the tile of an agent without relay did not switch to the offline-code fields by itself")
	}
	for _, want := range []string{
		"offline-code fields shown: username visible, code visible",
		"Submit: GetSerialization = 0x00000000 response 0",
		"GetSerialization: response RETURN_CREDENTIAL_FINISHED",
		fmt.Sprintf("KERB_INTERACTIVE_UNLOCK_LOGON: MessageType %d, user %s\n", kerbType, shared),
		"password: ",
		"done rc=0",
	} {
		if !strings.Contains(t+"\n", want) {
			return fmt.Errorf("offline login: transcript lacks %q", want)
		}
	}
	if !strings.Contains(alog, "offline login approved") || !strings.Contains(alog, "technician="+otp.Username) {
		return fmt.Errorf("offline login: the agent did not log %s's approval", otp.Username)
	}
	step("PASS: %s: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON (MessageType %d) for %s (tenant %s's shared account) from %s's offline code",
		scenario, kerbType, shared, harness.TenantFabrikam, otp.Username)
	return nil
}

// dllWithoutAgent drives the DLL in each scenario with no agent behind
// the pipe: the tile must say the agent is not running, Submit must not
// finish, and the DLL must be unloadable afterwards.
func dllWithoutAgent(ctx context.Context, we *wineEnv) error {
	for _, sc := range []string{"logon", "unlock", "credui"} {
		h, err := we.harness("harness-"+sc, sc, 8)
		if err != nil {
			return err
		}
		if _, err := h.WaitFor(ctx, 0, regexp.MustCompile(`^done rc=`)); err != nil {
			return fmt.Errorf("%s: harness did not finish: %w\n%s", sc, err, h.Output())
		}
		t := h.Output()
		fmt.Printf("--- harness %s ---\n%s\n", sc, t)
		for _, want := range []string{
			"SetUsageScenario(" + sc + ") = S_OK",
			"GetFieldDescriptorCount = 12", // JK_F_COUNT (core/tile.h)
			"GetUserSid = 0x00000001",
			"The jitkey agent is not running: use another sign-in option",
			"GetSerialization without credential = 0x00000000 response 0",
			"DllCanUnloadNow = 0x00000000",
		} {
			if !strings.Contains(t, want) {
				return fmt.Errorf("%s: transcript lacks %q", sc, want)
			}
		}
	}
	return nil
}

func wineRun(ctx context.Context, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, wine, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// pgmToPNG converts the harness's P5 picture to PNG; it refuses the blank
// 64x64 tile (no QR yet).
func pgmToPNG(in, out string) (string, error) {
	b, err := os.ReadFile(in)
	if err != nil {
		return "", err
	}
	r := bufio.NewReader(bytes.NewReader(b))
	var magic string
	var w, h, max int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &max); err != nil || magic != "P5" || max != 255 {
		return "", fmt.Errorf("not a P5 picture")
	}
	if _, err := r.ReadByte(); err != nil {
		return "", err
	}
	if w <= 64 {
		return "", fmt.Errorf("tile %dx%d has no QR yet", w, h)
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	if _, err := ioReadFull(r, img.Pix); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return out, os.WriteFile(out, buf.Bytes(), 0o644)
}

func ioReadFull(r *bufio.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
