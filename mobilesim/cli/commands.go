package cli

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/relay/push/pushgw"
)

// pinList is a repeatable (or comma-separated) --relay-pin flag.
type pinList [][32]byte

func (p *pinList) String() string { return fmt.Sprint(len(*p), " pins") }

func (p *pinList) Set(s string) error {
	for _, h := range strings.Split(s, ",") {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != 32 {
			return fmt.Errorf("relay pin %q: want 64 hex digits (SHA-256 of the relay key)", h)
		}
		*p = append(*p, [32]byte(b))
	}
	return nil
}

func (r *run) cmdInit(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	relay := fs.String("relay", "", "home relay HOST:PORT")
	var pins pinList
	fs.Var(&pins, "relay-pin", "relay key pin, hex SHA-256 of its SubjectPublicKeyInfo (repeatable)")
	bio := fs.String("biometric", biometric.ModeOK, "biometric outcome: ok, fail or cancel")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("init takes no arguments")
		}
		if *relay == "" || len(pins) == 0 {
			return usagef("init needs --relay HOST:PORT and --relay-pin HEX")
		}
		gate, err := biometric.ParseMode(*bio)
		if err != nil {
			return usagef("%v", err)
		}
		if err := protocol.CheckRelayAddr(*relay); err != nil {
			return usagef("--relay: %v", err)
		}
		if _, err := wallet.Open(r.g.state); err == nil {
			return wallet.ErrExists
		}
		key, err := biometric.Generate(ctx, gate, r.rand())
		if err != nil {
			return err
		}
		w, err := wallet.Create(r.g.state, *relay, pins, key, r.rand())
		if err != nil {
			return err
		}
		p := w.Phone()
		ak := key.Public()
		if r.g.json {
			r.emit(map[string]any{
				"state": w.Dir(), "relay": p.Relay, "address": p.Addr().String(),
				"noise_key": hex.EncodeToString(p.NoisePub), "identity_key": hex.EncodeToString(p.IdentityKey().Public()),
				"approval_key":         hex.EncodeToString(ak[:]),
				"noise_fingerprint":    p.NoiseKey().Fingerprint().String(),
				"identity_fingerprint": p.IdentityKey().Fingerprint().String(),
				"approval_fingerprint": ak.Fingerprint().String(),
			})
			return nil
		}
		r.printf("phone initialised in %s\n", w.Dir())
		r.printf("address:      %s\n", p.Addr())
		r.printf("noise key:    %s\n", p.NoiseKey().Fingerprint())
		r.printf("identity key: %s\n", p.IdentityKey().Fingerprint())
		r.printf("approval key: %s (behind biometrics)\n", ak.Fingerprint())
		return nil
	}
}

var errNoCode = errors.New("no QR code in the picture")

// payload returns the QR text from the positional argument or --image.
func payload(image string, args []string) (string, error) {
	switch {
	case image != "" && len(args) == 0:
		return decodeImage(image)
	case image == "" && len(args) == 1:
		return strings.TrimSpace(args[0]), nil
	}
	return "", usagef("give the QR payload or --image FILE.png (one of them)")
}

// decodeImage reads the QR code in the picture at path, refusing a file
// too large for a picture from its size before reading it.
func decodeImage(path string) (string, error) {
	b, err := qrcode.ReadFile(path)
	if err == nil {
		var text string
		if text, err = qrcode.Decode(b); err == nil {
			return text, nil
		}
	}
	var pe *fs.PathError
	switch {
	case errors.Is(err, qrcode.ErrTooLarge):
		return "", &said{msg: fmt.Sprintf("%s is too large for a picture of a QR code (at most %d MiB and %d megapixels); give a smaller picture", path, qrcode.MaxImageBytes>>20, qrcode.MaxImagePixels/1000000),
			err: fmt.Errorf("%w: %w", errNoCode, err)}
	case errors.Is(err, qrcode.ErrNotPicture):
		return "", &said{msg: fmt.Sprintf("%s is not a PNG or JPEG picture; give a picture of the QR code", path), err: fmt.Errorf("%w: %w", errNoCode, err)}
	case errors.Is(err, qrcode.ErrNoCode):
		return "", &said{msg: fmt.Sprintf("no QR code found in %s; give a sharp picture of the whole code", path), err: fmt.Errorf("%w: %w", errNoCode, err)}
	case errors.As(err, &pe):
		return "", fmt.Errorf("cannot read the picture %s: %w", path, pe.Err)
	}
	return "", fmt.Errorf("%w: %s: %w", errNoCode, path, err)
}

// loginAnswerWindow is how long after its time an agent still answers a
// login code: it shows a new code at least every 60 s (SPEC.md 5.2,
// agent/login.MaxRotation) and answers a replaced one for 10 s more
// (agent/login.Grace). An agent answers an older code never: the phone
// says so at once instead of dialing into a timeout. (The protocol's
// freshness bound, QRLoginMaxAge, leaves more room for clock skew.)
const loginAnswerWindow = 60*time.Second + 10*time.Second

// checkAnswerable refuses a login code no agent will answer any more, by
// its time field and the phone's clock. Other codes pass: app.Scan words
// what is wrong with them.
func (r *run) checkAnswerable(text string) error {
	q, err := protocol.ParseQR(text)
	if err != nil || q.Kind != protocol.QRLogin {
		return nil
	}
	if age := r.now().Sub(q.Time); age > loginAnswerWindow {
		return &said{msg: fmt.Sprintf("this code has expired (made %s ago); scan the code now on the screen", age.Round(time.Second)),
			err: fmt.Errorf("%w: %s old, over %s", app.ErrQRExpired, age, loginAnswerWindow)}
	}
	return nil
}

// tenantJSON describes a tenant of an organisation.
type tenantJSON struct {
	Tenant  string `json:"tenant"`
	Role    string `json:"role"`
	Version uint64 `json:"policy_version"`
	Mode    string `json:"login_mode"`
}

type orgJSON struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Username string       `json:"username"`
	Serial   uint64       `json:"serial"`
	Tenants  []tenantJSON `json:"tenants"`
	Devices  int          `json:"devices"`
	Current  bool         `json:"current"`
}

func describe(v *app.View, current string) orgJSON {
	o := orgJSON{ID: v.Org.ID, Name: v.Org.Name, Username: v.Tech.Username, Serial: v.Tech.Serial,
		Tenants: []tenantJSON{}, Devices: len(v.Devices), Current: v.Org.ID == current}
	for _, t := range v.Tenants() {
		p := v.Policies[t]
		o.Tenants = append(o.Tenants, tenantJSON{Tenant: t, Role: v.Tech.RoleIn(t), Version: p.Version, Mode: p.LoginMode})
	}
	return o
}

func tenantsText(o orgJSON) string {
	var parts []string
	for _, t := range o.Tenants {
		parts = append(parts, fmt.Sprintf("%s (%s, policy v%d)", t.Tenant, t.Role, t.Version))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (r *run) cmdPair(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	image := fs.String("image", "", "decode the pairing QR from this PNG or JPEG picture")
	bio := fs.String("biometric", biometric.ModeOK, "biometric outcome: ok, fail or cancel")
	return func(ctx context.Context, args []string) error {
		text, err := payload(*image, args)
		if err != nil {
			return err
		}
		gate, err := biometric.ParseMode(*bio)
		if err != nil {
			return usagef("%v", err)
		}
		ctx, w, a, l, done, err := r.online(ctx, gate)
		if err != nil {
			return err
		}
		defer done()
		v, err := a.Pair(ctx, l.Mux, text)
		if err != nil {
			return err
		}
		d := describe(v, w.Phone().Current)
		if r.g.json {
			r.emit(map[string]any{"org": d, "current": w.Phone().Current})
			return nil
		}
		r.printf("paired with %s (org %s) as %s\n", d.Name, d.ID, d.Username)
		r.printf("tenants: %s\n", tenantsText(d))
		r.printf("devices: %d\n", d.Devices)
		r.printf("current organisation: %s\n", w.Phone().Current)
		return nil
	}
}

func (r *run) cmdOrgs(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("orgs takes no arguments")
		}
		w, err := r.openWallet()
		if err != nil {
			return err
		}
		orgs, err := w.Orgs()
		if err != nil {
			return err
		}
		list := []orgJSON{}
		for _, o := range orgs {
			v, err := app.Load(o)
			if err != nil {
				return err
			}
			list = append(list, describe(v, w.Phone().Current))
		}
		if r.g.json {
			r.emit(map[string]any{"current": w.Phone().Current, "orgs": list})
			return nil
		}
		if len(list) == 0 {
			r.printf("not paired with any organisation\n")
		}
		for _, o := range list {
			mark := " "
			if o.Current {
				mark = "*"
			}
			r.printf("%s %s  %q  as %s  tenants: %s  devices: %d\n", mark, o.ID, o.Name, o.Username, tenantsText(o), o.Devices)
		}
		return nil
	}
}

func (r *run) cmdUse(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("use takes one organisation (see orgs)")
		}
		w, err := r.openWallet()
		if err != nil {
			return err
		}
		o, err := w.FindOrg(args[0])
		if err != nil {
			return err
		}
		if err := w.SetCurrent(o.ID); err != nil {
			return err
		}
		if r.g.json {
			r.emit(map[string]any{"current": o.ID, "name": o.Name})
			return nil
		}
		r.printf("current organisation: %s (%s)\n", o.ID, o.Name)
		return nil
	}
}

type deviceJSON struct {
	Name         string `json:"name"`
	Tenant       string `json:"tenant"`
	OS           string `json:"os"`
	DeviceID     string `json:"device_id"`
	DomainJoined bool   `json:"domain_joined"`
	DC           bool   `json:"dc"`
	Relay        string `json:"relay"`
	OfflineCodes bool   `json:"offline_codes"` // the phone can show offline codes for it (otp)
}

func deviceOf(d protocol.DeviceCert) deviceJSON {
	return deviceJSON{Name: d.Name, Tenant: d.Tenant, OS: d.OS, DeviceID: hex.EncodeToString(d.DeviceID[:]),
		DomainJoined: d.DomainJoined, DC: d.DC, Relay: d.Relay}
}

func (r *run) cmdDevices(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 1 {
			return usagef("devices takes at most one search term")
		}
		w, err := r.openWallet()
		if err != nil {
			return err
		}
		o, err := w.Current()
		if err != nil {
			return err
		}
		v, err := app.Load(o)
		if err != nil {
			return err
		}
		search := ""
		if len(args) == 1 {
			search = args[0]
		}
		list := []deviceJSON{}
		for _, d := range v.Search(search) {
			dj := deviceOf(d)
			dj.OfflineCodes = v.HasOfflineCodes(d)
			list = append(list, dj)
		}
		if r.g.json {
			r.emit(map[string]any{"org": o.ID, "devices": list})
			return nil
		}
		if len(list) == 0 {
			r.printf("no devices\n")
			return nil
		}
		for _, d := range list {
			var tags []string
			if d.DomainJoined {
				tags = append(tags, "domain-joined")
			}
			if d.DC {
				tags = append(tags, "domain controller")
			}
			r.printf("%-24s %-16s %-8s %-3s %s %s\n", d.Name, d.Tenant, d.OS, offlineMark(d.OfflineCodes), d.DeviceID, strings.Join(tags, ","))
		}
		return nil
	}
}

type requestJSON struct {
	Org      string   `json:"org"`
	Username string   `json:"username"`
	Device   string   `json:"device"`
	DeviceID string   `json:"device_id"`
	Tenant   string   `json:"tenant"`
	Account  string   `json:"account"`
	Action   string   `json:"action"`
	Choices  []string `json:"choices"`
	Summary  string   `json:"summary"`
}

func (r *run) cmdScan(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	image := fs.String("image", "", "decode the login QR from this PNG or JPEG picture")
	approve := fs.Bool("approve", false, "approve the request")
	deny := fs.Bool("deny", false, "deny the request")
	account := fs.String("account", "", "account kind when the device offers a choice: domain or local")
	bio := fs.String("biometric", biometric.ModeOK, "biometric outcome: ok, fail or cancel")
	skip := fs.Bool("skip-policy-check", false, "send the request even if the phone's copy of the policy refuses it")
	reason, ticket := justification(fs)
	return func(ctx context.Context, args []string) error {
		text, err := payload(*image, args)
		if err != nil {
			return err
		}
		if *approve && *deny {
			return usagef("--approve and --deny exclude each other")
		}
		if r.g.json && !*approve && !*deny {
			return usagef("with --json, choose --approve or --deny")
		}
		if err := r.checkAnswerable(text); err != nil {
			return err
		}
		choice, err := app.ParseAccount(*account)
		if err != nil {
			return usagef("--account: %v", err)
		}
		gate, err := biometric.ParseMode(*bio)
		if err != nil {
			return usagef("%v", err)
		}
		ctx, w, a, l, done, err := r.online(ctx, gate)
		if err != nil {
			return err
		}
		defer done()
		var shown *app.Request
		decide := func(ctx context.Context, req *app.Request) (app.Decision, error) {
			shown = req
			r.printf("%s\n", req.Summary())
			dec := app.Decision{Approve: *approve, Account: choice, Reason: *reason, Ticket: *ticket}
			if len(req.Choices) > 0 && choice == protocol.AccountDefault {
				dec.Account = req.Choices[0]
			}
			if !*approve && !*deny {
				d, err := r.prompt(req, dec.Account)
				d.Reason, d.Ticket = *reason, *ticket
				if err == nil && d.Approve {
					// Asked at the prompt, as the app asks after "approve".
					d.Reason, d.Ticket, err = r.justify(policyOf(w, req.Device.Tenant), d.Reason, d.Ticket)
				}
				return d, err
			}
			if len(req.Choices) > 0 {
				r.printf("account: %s (offered: %s)\n", app.AccountName(dec.Account), choicesText(req.Choices))
			}
			return dec, nil
		}
		out, err := a.Scan(ctx, l.Mux, text, app.ScanOptions{Decide: decide, SkipPolicyCheck: *skip})
		if err != nil {
			if shown != nil && r.g.json {
				// The request was shown before it failed: keep it in the error.
				return &shownError{err: err, req: shown}
			}
			return err
		}
		if r.g.json {
			res := map[string]any{
				"status": out.Status, "message": out.Message(),
				"account": out.Result.Account, "code": out.Result.Code, "text": out.Result.Text,
			}
			if out.Request != nil {
				res["request"] = requestOf(out.Request)
				res["decision"] = map[bool]string{true: "approve", false: "deny"}[out.Decision.Approve]
				res["account_choice"] = app.AccountName(out.Decision.Account)
			}
			r.emit(res)
		} else {
			r.printf("%s\n", out.Message())
		}
		if out.Status == app.StatusRefused {
			return &silentExit{code: ExitRefused}
		}
		return nil
	}
}

// justification defines the --reason and --ticket flags of the commands
// that approve logins: the tenant's policy may require them (SPEC.md 6.3).
func justification(fs *flag.FlagSet) (reason, ticket *string) {
	reason = fs.String("reason", "", "`text` justifying an approval, signed into it (the policy may require one)")
	ticket = fs.String("ticket", "", "ticket `ID` signed into an approval (the policy may require one matching its pattern)")
	return reason, ticket
}

func requestOf(q *app.Request) requestJSON {
	ch := []string{}
	for _, c := range q.Choices {
		ch = append(ch, app.AccountName(c))
	}
	action := protocol.ActionName(q.Action)
	if q.Console != nil {
		action = "console" // a web console sign-in (SPEC.md 11.12)
	}
	return requestJSON{Org: q.Org, Username: q.Username, Device: q.Device.Name, DeviceID: hex.EncodeToString(q.Device.DeviceID[:]),
		Tenant: q.Device.Tenant, Account: q.Account, Action: action, Choices: ch, Summary: q.Summary()}
}

func choicesText(cs []uint8) string {
	var s []string
	for _, c := range cs {
		s = append(s, app.AccountName(c))
	}
	return strings.Join(s, ", ")
}

// prompt asks the technician on stdin, as the app's buttons would.
func (r *run) prompt(req *app.Request, account uint8) (app.Decision, error) {
	in := r.stdin()
	dec := app.Decision{Account: account}
	if len(req.Choices) > 0 {
		fmt.Fprintf(r.stdout, "account (%s) [%s]: ", choicesText(req.Choices), app.AccountName(account))
		line, _ := in.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			k, err := app.ParseAccount(line)
			if err != nil {
				return dec, fmt.Errorf("%w: %v", app.ErrNotOffered, err)
			}
			dec.Account = k
		}
	}
	fmt.Fprint(r.stdout, "approve? [y/N] ")
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return dec, fmt.Errorf("no answer: %w", biometric.ErrBiometricCancelled)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		dec.Approve = true
	}
	return dec, nil
}

// shownError carries the request shown before a failure into --json output.
type shownError struct {
	err error
	req *app.Request
}

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

// silentExit ends a command with a code after its output was printed.
type silentExit struct{ code int }

func (e *silentExit) Error() string { return "" }

func (r *run) cmdSync(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("sync takes no arguments")
		}
		ctx, _, a, l, done, err := r.online(ctx, nil)
		if err != nil {
			return err
		}
		defer done()
		u, err := a.Sync(ctx, l.Mux)
		if err != nil {
			return err
		}
		r.update("synced", u)
		return nil
	}
}

func updateJSON(event string, u app.Update) map[string]any {
	vs := func(tv []protocol.TenantVersion) []map[string]any {
		out := []map[string]any{}
		for _, t := range tv {
			out = append(out, map[string]any{"tenant": t.Tenant, "version": t.Version})
		}
		return out
	}
	removed := []string{}
	removed = append(removed, u.Removed...)
	return map[string]any{"event": event, "org": u.Org, "applied": vs(u.Applied), "versions": vs(u.Versions),
		"devices": u.Devices, "directory_replaced": u.DirectoryReplaced, "removed": removed}
}

func (r *run) update(event string, u app.Update) {
	if r.g.json {
		r.emit(updateJSON(event, u))
		return
	}
	var vs []string
	for _, t := range u.Versions {
		vs = append(vs, fmt.Sprintf("%s v%d", t.Tenant, t.Version))
	}
	r.printf("%s %s: policies %s; %d devices\n", event, u.Org, strings.Join(vs, ", "), u.Devices)
	for _, name := range u.Removed {
		r.printf("%s was removed by the MSP: no longer listed, its login codes are refused\n", name)
	}
}

func (r *run) cmdListen(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	dur := fs.Duration("for", 0, "stop listening after this long (0: until interrupted)")
	pick := fs.Int("pick", 0, "answer push logins by picking this number (the one the login screen shows)")
	report := fs.Bool("report", false, "answer push logins with \"this was not me\"")
	deny := fs.Bool("deny", false, "deny push logins and requests for a second approval")
	approve := fs.Bool("approve", false, "give the second approval when a computer asks for it (another technician's login, SPEC.md 11.14)")
	once := fs.Bool("once", false, "stop after the first push login")
	bio := fs.String("biometric", biometric.ModeOK, "biometric outcome when approving a push login: ok, fail or cancel")
	wakeToken := fs.String("wake-token", "", "push gateway `token` of this phone: its sealed ticket goes to the computers it logs in to, so they can wake it")
	wakeGateway := fs.String("wake-gateway", "", "stay offline and serve a push gateway stand-in on `HOST:PORT`; connect when it receives a wake-up for --wake-token")
	reason, ticketID := justification(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("listen takes no arguments")
		}
		if *wakeGateway != "" && *wakeToken == "" {
			return usagef("--wake-gateway needs --wake-token")
		}
		answers := 0
		for _, set := range []bool{*pick != 0, *report, *deny} {
			if set {
				answers++
			}
		}
		switch {
		case answers > 1:
			return usagef("--pick, --report and --deny exclude each other")
		case *approve && *deny:
			return usagef("--approve and --deny exclude each other")
		case *pick != 0 && (*pick < protocol.MinPushNumber || *pick > protocol.MaxPushNumber):
			return usagef("--pick takes the two-digit number the login screen shows (10..99)")
		}
		gate, err := biometric.ParseMode(*bio)
		if err != nil {
			return usagef("%v", err)
		}
		updates := make(chan app.Update, 16)
		pushed := make(chan pushDone, 4)
		var ticket atomic.Pointer[[]byte]
		// The wallet, for the policy a push prompt reads; set before the
		// phone connects, so before any push arrives.
		var wal *wallet.Wallet
		var promptMu sync.Mutex
		w, a, err := r.newApp(gate, func(u app.Update) {
			select {
			case updates <- u:
			default: // the listener has stopped reading
			}
		}, func(cfg *app.Config) {
			cfg.OnPush = func(ctx context.Context, p *app.PushPrompt) (app.PushAnswer, error) {
				r.pushShown(p)
				switch {
				case *report:
					return app.PushAnswer{Report: true}, nil
				case *deny:
					return app.PushAnswer{Deny: true}, nil
				case *pick != 0:
					return app.PushAnswer{Pick: uint16(*pick), Reason: *reason, Ticket: *ticketID}, nil
				}
				// One push at a time at the prompt: its questions and
				// answers are not interleaved with another's.
				promptMu.Lock()
				defer promptMu.Unlock()
				ans, err := r.pushPrompt(p)
				ans.Reason, ans.Ticket = *reason, *ticketID
				if err == nil && ans.Pick != 0 {
					ans.Reason, ans.Ticket, err = r.justify(policyOf(wal, p.Device.Tenant), ans.Reason, ans.Ticket)
				}
				return ans, err
			}
			cfg.OnCoApproval = func(ctx context.Context, p *app.CoPrompt) (bool, error) {
				r.coShown(p)
				switch {
				case *approve:
					return true, nil
				case *deny:
					return false, nil
				}
				return r.coPrompt()
			}
			cfg.OnPushDone = func(o *app.PushOutcome, err error) {
				select {
				case pushed <- pushDone{o, err}:
				default:
				}
			}
			cfg.PushTicket = func() []byte {
				if t := ticket.Load(); t != nil {
					return *t
				}
				return nil
			}
		})
		if err != nil {
			return err
		}
		wal = w
		if *dur > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *dur)
			defer cancel()
		}
		if *wakeGateway != "" {
			if err := r.waitWake(ctx, *wakeGateway, []byte(*wakeToken)); err != nil {
				return err
			}
		}
		l, err := r.connect(ctx, w, a)
		if err != nil {
			return err
		}
		defer l.Close()
		if *wakeToken != "" {
			if l.SealPushTicket == nil {
				return errors.New("this connection cannot seal a push ticket")
			}
			t, err := l.SealPushTicket([]byte(*wakeToken), r.now().Add(24*time.Hour))
			if err != nil {
				return fmt.Errorf("seal the push ticket (does the relay have a push gateway?): %w", err)
			}
			ticket.Store(&t)
		}
		addr := w.Phone().Addr().String()
		if r.g.json {
			r.emit(map[string]any{"event": "listening", "address": addr})
		} else {
			r.printf("listening as %s\n", addr)
		}
		for {
			select {
			case u := <-updates:
				r.update("update", u)
			case d := <-pushed:
				r.pushResult(d)
				if *once {
					if d.out == nil || d.out.Status == app.StatusRefused {
						return &silentExit{code: ExitRefused}
					}
					return nil
				}
			case <-ctx.Done():
				if r.g.json {
					r.emit(map[string]any{"event": "stopped"})
				} else {
					r.printf("stopped\n")
				}
				return nil
			}
		}
	}
}

// waitWake serves the push gateway stand-in (package pushgw) on addr
// until it receives a wake-up for token, as the operating system would
// wake the app.
func (r *run) waitWake(ctx context.Context, addr string, token []byte) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("push gateway stand-in: %w", err)
	}
	woken := make(chan struct{}, 1)
	srv := &http.Server{Handler: &pushgw.Gateway{OnWake: func(tok []byte) {
		if subtle.ConstantTimeCompare(tok, token) == 1 {
			select {
			case woken <- struct{}{}:
			default:
			}
		}
	}}, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if r.g.json {
		r.emit(map[string]any{"event": "waiting-for-wake", "gateway": ln.Addr().String()})
	} else {
		r.printf("offline; waiting for a wake-up at %s\n", ln.Addr())
	}
	select {
	case <-woken:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.g.json {
		r.emit(map[string]any{"event": "woken"})
	} else {
		r.printf("woken by the push gateway; connecting\n")
	}
	return nil
}

// pushDone is how a push login ended on a listening phone.
type pushDone struct {
	out *app.PushOutcome
	err error
}

// pushShown shows a push login request: the device name from its
// certificate, the account, the action and the three numbers.
func (r *run) pushShown(p *app.PushPrompt) {
	if r.g.json {
		r.emit(map[string]any{"event": "push", "request": requestOf(&p.Request), "numbers": p.Candidates})
		return
	}
	r.printf("push: %s\n", p.Summary())
}

// pushPrompt asks the technician on stdin: a number, "deny" or "report".
func (r *run) pushPrompt(p *app.PushPrompt) (app.PushAnswer, error) {
	out := r.stdout
	if r.g.json {
		out = r.stderr // stdout carries one JSON object per line
	}
	fmt.Fprintf(out, "number on the screen (%d, %d or %d), deny, or report (this was not me): ", p.Candidates[0], p.Candidates[1], p.Candidates[2])
	line, _ := r.stdin().ReadString('\n')
	switch line = strings.TrimSpace(line); line {
	case "deny", "":
		return app.PushAnswer{Deny: true}, nil
	case "report":
		return app.PushAnswer{Report: true}, nil
	}
	n, err := strconv.Atoi(line)
	if err != nil || n < protocol.MinPushNumber || n > protocol.MaxPushNumber {
		return app.PushAnswer{}, fmt.Errorf("%q is not a number shown", line)
	}
	return app.PushAnswer{Pick: uint16(n)}, nil
}

// pushResult shows how a push login ended.
func (r *run) pushResult(d pushDone) {
	if d.err != nil {
		if r.g.json {
			r.emit(map[string]any{"event": "push-result", "status": "error", "message": d.err.Error()})
		} else {
			r.printf("push: %v\n", d.err)
		}
		return
	}
	o := d.out
	if o.Co != nil {
		r.coResult(o)
		return
	}
	msg := o.Status
	switch o.Status {
	case app.StatusApproved:
		msg = fmt.Sprintf("approved with %d: %s is ready", o.Answer.Pick, o.Result.Account)
	case app.StatusReported:
		msg = "reported: this computer no longer sends you push logins for a while; your MSP was alerted"
	case app.StatusRefused:
		text := o.Result.Text
		if text == "" {
			text = "refused"
		}
		msg = "refused by the device: " + text
	}
	if r.g.json {
		res := map[string]any{"event": "push-result", "status": o.Status, "message": msg, "account": o.Result.Account,
			"code": o.Result.Code, "text": o.Result.Text}
		if o.Answer.Pick != 0 {
			res["picked"] = o.Answer.Pick
		}
		r.emit(res)
		return
	}
	r.printf("push: %s\n", msg)
}

// cmdDecode shows what a QR code carries without contacting anyone, as the
// phone's camera preview would; it needs no state directory.
func (r *run) cmdDecode(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	image := fs.String("image", "", "decode the QR from this PNG or JPEG picture")
	return func(ctx context.Context, args []string) error {
		text, err := payload(*image, args)
		if err != nil {
			return err
		}
		q, err := protocol.ParseQR(text)
		if err != nil {
			return app.QRError(text, err)
		}
		now := r.now()
		_, ferr := protocol.DecodeQR(text, now)
		kind := map[uint8]string{protocol.QRLogin: "login", protocol.QRPair: "pair"}[q.Kind]
		res := map[string]any{
			"payload": text, "kind": kind, "action": protocol.ActionName(q.Action),
			"device_id": hex.EncodeToString(q.DeviceID[:]), "relay": q.Relay, "address": q.Addr().String(),
			"static_key": hex.EncodeToString(q.Static[:]), "time": q.Time.Unix(),
			"age_seconds": int64(now.Sub(q.Time) / time.Second), "fresh": ferr == nil,
		}
		if r.g.json {
			r.emit(res)
			return nil
		}
		r.printf("payload: %s\nkind:    %s\n", text, kind)
		if q.Kind == protocol.QRLogin {
			r.printf("action:  %s\ndevice:  %x\n", protocol.ActionName(q.Action), q.DeviceID[:])
		}
		r.printf("peer:    %s\nage:     %s (fresh: %t)\n", q.Addr(), now.Sub(q.Time).Round(time.Second), ferr == nil)
		return nil
	}
}

// coShown shows a request for this phone's second approval (SPEC.md
// 11.14): who asks, for which device, account and action, why.
func (r *run) coShown(p *app.CoPrompt) {
	if r.g.json {
		r.emit(map[string]any{"event": "co-approval", "request": requestOf(&p.Request), "technician": p.Technician,
			"tech_id": p.TechID, "method": p.Method, "reason": p.Reason, "ticket": p.Ticket})
		return
	}
	r.printf("%s\n", p.Summary())
}

// coPrompt asks on stdin: approve or deny.
func (r *run) coPrompt() (bool, error) {
	out := r.stdout
	if r.g.json {
		out = r.stderr
	}
	fmt.Fprint(out, "approve or deny: ")
	line, _ := r.stdin().ReadString('\n')
	return strings.TrimSpace(line) == "approve", nil
}

// coResult shows how a second approval ended.
func (r *run) coResult(o *app.PushOutcome) {
	msg := "refused by the device: " + o.Result.Text
	switch o.Status {
	case app.StatusApproved:
		msg = fmt.Sprintf("second approval given: %s's login as %s on %s is enabled", o.Co.Technician, o.Result.Account, o.Co.Device.Name)
	case app.StatusDenied:
		msg = fmt.Sprintf("second approval denied: %s's login on %s was refused", o.Co.Technician, o.Co.Device.Name)
	}
	if r.g.json {
		r.emit(map[string]any{"event": "co-approval-result", "status": o.Status, "message": msg, "technician": o.Co.Technician,
			"account": o.Result.Account, "code": o.Result.Code, "text": o.Result.Text})
		return
	}
	r.printf("%s\n", msg)
}
