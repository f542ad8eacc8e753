package offline_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

type env struct {
	t       testing.TB
	msp     *agenttest.MSP
	agent   *agenttest.Agent
	st      *store.Store
	backend *accountstest.Backend
	clock   *agenttest.Clock
	vault   *vault.FileKey
	mgr     *lifecycle.Manager
	v       *offline.Verifier
	glass   *breakglass.Keeper
	logger  *slog.Logger // nil: discarded
	policy  protocol.Policy
	secret  []byte // shared mode
	// failCommits makes every store commit fail (disk full).
	failCommits atomic.Bool
}

// Technicians of the tenant's roster.
var roster = []protocol.RosterEntry{
	{Serial: 501, TechID: "tech-ann", Username: "ann", Role: protocol.RoleAdmin},
	{Serial: 502, TechID: "tech-bob", Username: "bob", Role: protocol.RoleReadOnly},
	{Serial: 503, TechID: "tech-nik", Username: "nik", Role: protocol.RoleAdmin},
}

func newEnv(t testing.TB, mode string) *env {
	e := &env{t: t, clock: agenttest.NewClock(time.Now().Truncate(time.Second)), msp: agenttest.NewMSP(t, "acme")}
	e.policy = e.msp.Policy(1)
	e.policy.Roster = roster
	if mode == protocol.ModeShared {
		e.policy.LoginMode, e.policy.SharedAccount = protocol.ModeShared, "msp-0001"
	}
	e.agent = agenttest.NewAgent(t, e.msp, &e.policy, store.Config{BeforeCommit: func() error {
		if e.failCommits.Load() {
			return errors.New("injected: disk full")
		}
		return nil
	}})
	e.st = e.agent.Store
	var err error
	if e.vault, err = vault.OpenFileKey(e.agent.Dir, nil); err != nil {
		t.Fatal(err)
	}
	e.backend = accountstest.New(accountstest.Config{Now: e.clock.Now})
	e.start()
	if mode == protocol.ModeShared {
		e.secret = bytes.Repeat([]byte{0x5a}, 32)
		if ok, err := e.v.SetTenantSecret(t.Context(), "acme", []protocol.TenantSecret{{Tenant: "acme", Secret: e.secret, Generation: 1}}); !ok || err != nil {
			t.Fatalf("SetTenantSecret = %v %v", ok, err)
		}
	}
	if err := e.v.Contact(t.Context()); err != nil {
		t.Fatal(err)
	}
	return e
}

// start builds the lifecycle manager and verifier over the store (again
// after a restart).
func (e *env) start() {
	e.mgr = lifecycle.New(lifecycle.Config{
		Backend: e.backend, Store: e.st, Audit: e.agent.Audit, Rand: rand.Reader, Now: e.clock.Now, MaxNameLen: accounts.MaxNameLinux,
	})
	if err := e.mgr.Recover(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.glass = breakglass.New(breakglass.Config{Store: e.st, Vault: e.vault, Now: e.clock.Now})
	if err := e.glass.Ensure(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.v = offline.New(offline.Config{Store: e.st, Audit: e.agent.Audit, Lifecycle: e.mgr, Vault: e.vault, Now: e.clock.Now,
		BreakGlass: e.glass, Logger: e.logger})
}

// restart closes and reopens the store, as a restarted agent does.
func (e *env) restart() {
	e.st.Close()
	st, err := store.Open(e.t.Context(), filepath.Join(e.agent.Dir, "agent.db"), store.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	e.st, e.agent.Store = st, st
	e.start()
}

// setPolicy stores p (its version must be higher) as the cached policy.
func (e *env) setPolicy(p protocol.Policy) {
	e.t.Helper()
	s := e.msp.Sign(e.t, protocol.DocPolicy, &p)
	b, err := s.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Update(e.t.Context(), func(tx *store.Tx) error {
		return tx.PutPolicy(store.PolicyRow{Tenant: p.Tenant, Version: p.Version, Signed: b, Applied: e.clock.Now()})
	}); err != nil {
		e.t.Fatal(err)
	}
	e.policy = p
}

// namedKey gives techID a named-mode key, as an online QR login does,
// and returns it (what the phone stores).
func (e *env) namedKey(techID string) []byte {
	e.t.Helper()
	var key []byte
	if err := e.st.Update(e.t.Context(), func(tx *store.Tx) error {
		var err error
		key, err = e.v.NamedKey(tx, techID, &e.policy)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	if len(key) != otpcode.KeySize {
		e.t.Fatalf("NamedKey gave %d bytes", len(key))
	}
	return key
}

// sharedKey is the code key a phone derives for techID on this device.
func (e *env) sharedKey(secret []byte, techID string) []byte {
	k, err := otpcode.SharedCodeKey(secret, techID, e.agent.Device.DeviceID)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) code(key []byte, offset int) string {
	e.t.Helper()
	step := int64(otpcode.Step(e.clock.Now(), e.policy.Offline.Period)) + int64(offset)
	c, err := otpcode.Code(key, uint64(step), e.policy.Offline)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) login(user, code string) (lifecycle.Grant, error) {
	return e.v.Login(e.t.Context(), offline.Request{Username: user, Code: code, Action: protocol.ActionLogon})
}

// mustLogin logs in and ends the session again.
func (e *env) mustLogin(user, code string) lifecycle.Grant {
	e.t.Helper()
	g, err := e.login(user, code)
	if err != nil {
		e.t.Fatalf("%s with %s: %v", user, code, err)
	}
	if err := e.backend.Login(e.t.Context(), g.Account, g.Password); err != nil {
		e.t.Fatalf("issued password does not log in: %v", err)
	}
	if err := e.mgr.End(e.t.Context(), g.Session, audit.SessionEnded); err != nil {
		e.t.Fatal(err)
	}
	return g
}

func (e *env) records() []protocol.AuditRecord { return e.agent.Records(e.t) }

func TestNamedOfflineLogin(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	key := e.namedKey("tech-nik")
	// A second online login gives the phone the same key again.
	if again := e.namedKey("tech-nik"); !bytes.Equal(again, key) {
		t.Fatalf("second NamedKey = %x, want %x", again, key)
	}
	code := e.code(key, 0)
	g := e.mustLogin("nik", code)
	if g.Account != "msp-nik" {
		t.Fatalf("account %s", g.Account)
	}
	// The code (its step) is spent, also across a restart.
	if _, err := e.login("nik", code); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("replayed code: %v", err)
	}
	e.restart()
	if _, err := e.login("nik", code); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("replayed code after a restart: %v", err)
	}
	// The next step's code works once its time comes; the previous
	// step's (inside the window) does not, being older than one used.
	e.clock.Add(30 * time.Second)
	if _, err := e.login("nik", e.code(key, -2)); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("older step: %v", err)
	}
	e.mustLogin("nik", e.code(key, 0))
	// Ann has no key on this device; nobody else's key opens Nik's.
	if _, err := e.login("ann", e.code(key, 1)); !errors.Is(err, offline.ErrNoKey) {
		t.Fatalf("technician without a key: %v", err)
	}
	var approved []protocol.AuditRecord
	for _, r := range e.records() {
		if r.Event == audit.LoginApproved {
			approved = append(approved, r)
		}
	}
	if len(approved) != 2 || approved[0].Method != protocol.MethodOTP || approved[0].Online ||
		approved[0].TechID != "tech-nik" || approved[0].Username != "nik" || approved[0].Account != "msp-nik" {
		t.Fatalf("login.approved records %+v", approved)
	}
}

func TestSkewWindow(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	key := e.namedKey("tech-nik")
	for _, off := range []int{-2, 2} {
		if _, err := e.login("nik", e.code(key, off)); !errors.Is(err, offline.ErrWrongCode) {
			t.Fatalf("step %+d: %v", off, err)
		}
	}
	e.mustLogin("nik", e.code(key, -1))
	e.mustLogin("nik", e.code(key, 1))
}

func TestLockoutSurvivesRestart(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	key := e.namedKey("tech-nik")
	p := e.policy.Offline // 5 failures, 30 s base, 3600 s limit
	good := e.code(key, 0)
	bad := "000000"
	if bad == good {
		bad = "000001"
	}
	for i := 1; i < p.MaxFailures; i++ {
		if _, err := e.login("nik", bad); !errors.Is(err, offline.ErrWrongCode) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var locked *offline.LockedError
	if _, err := e.login("nik", bad); !errors.As(err, &locked) || !locked.Until.Equal(e.clock.Now().Add(30*time.Second)) {
		t.Fatalf("failure %d: %v, want a 30 s lockout", p.MaxFailures, err)
	}
	e.restart()
	if _, err := e.login("nik", good); !errors.As(err, &locked) {
		t.Fatalf("right code during the lockout, after a restart: %v", err)
	}
	// The back-off doubles: the next failure after the lockout locks for 60 s.
	e.clock.Add(31 * time.Second)
	if _, err := e.login("nik", bad); !errors.As(err, &locked) || !locked.Until.Equal(e.clock.Now().Add(60*time.Second)) {
		t.Fatalf("failure %d: %v, want a 60 s lockout", p.MaxFailures+1, err)
	}
	// Another technician is not locked by Nik's failures.
	annKey := e.namedKey("tech-ann")
	e.mustLogin("ann", e.code(annKey, 0))
	e.clock.Add(61 * time.Second)
	e.mustLogin("nik", e.code(key, 0))
	// Success resets the count: one more failure does not lock.
	e.clock.Add(30 * time.Second)
	if _, err := e.login("nik", bad); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("failure after a success: %v", err)
	}
	if got, want := offline.Lockout(p, 30), time.Hour; got != want {
		t.Fatalf("lockout after 30 failures %v, want the limit %v", got, want)
	}
}

func TestAccessRuleOffline(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	nik := e.namedKey("tech-nik")
	bob := e.namedKey("tech-bob")
	p := e.policy
	p.Version++
	p.Revoked = []uint64{503} // nik
	p.Shares = []protocol.DeviceShare{{DeviceID: e.agent.Device.DeviceID, Entries: []string{protocol.ShareAllAdmins}}}
	e.setPolicy(p)
	if _, err := e.login("nik", e.code(nik, 0)); !errors.Is(err, offline.ErrRefused) {
		t.Fatalf("revoked technician: %v", err)
	}
	if _, err := e.login("bob", e.code(bob, 0)); !errors.Is(err, offline.ErrRefused) {
		t.Fatalf("read-only technician, share list all-admins: %v", err)
	}
	p.Version++
	p.RevokedDevices = []uint64{e.agent.Device.Serial}
	e.setPolicy(p)
	if _, err := e.login("bob", e.code(bob, 0)); !errors.Is(err, offline.ErrRemoved) {
		t.Fatalf("removed device: %v", err)
	}
	if _, err := e.login("zed", "123456"); !errors.Is(err, offline.ErrRemoved) {
		t.Fatalf("removed device, unknown user: %v", err)
	}
	if names := e.backend.Names(); len(names) != 0 {
		t.Fatalf("accounts created: %v", names)
	}
	reasons := map[string]string{}
	for _, r := range e.records() {
		if r.Event == audit.LoginDenied {
			reasons[r.Username] = r.Reason
		}
	}
	if reasons["nik"] != "access rule: technician certificate revoked" || reasons["bob"] != "device removed by the MSP" {
		t.Fatalf("denials %v", reasons)
	}
}

// TestSharedModeNamesTechnician: in shared mode both technicians log in
// to the shared account with their own codes, and the audit names each;
// a technician's code does not work under another's username.
func TestSharedModeNamesTechnician(t *testing.T) {
	e := newEnv(t, protocol.ModeShared)
	ann, nik := e.sharedKey(e.secret, "tech-ann"), e.sharedKey(e.secret, "tech-nik")
	if g := e.mustLogin("ann", e.code(ann, 0)); g.Account != "msp-0001" {
		t.Fatalf("account %s", g.Account)
	}
	if _, err := e.login("ann", e.code(nik, 0)); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("nik's code as ann: %v", err)
	}
	e.mustLogin("nik", e.code(nik, 0))
	var who []string
	for _, r := range e.records() {
		if r.Event == audit.LoginApproved {
			who = append(who, r.TechID+"@"+r.Account)
		}
	}
	if !slices.Equal(who, []string{"tech-ann@msp-0001", "tech-nik@msp-0001"}) {
		t.Fatalf("approved %v", who)
	}
}

func TestOfflineLimits(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	p := e.policy
	p.Version++
	p.Offline.MaxLogins, p.Offline.MaxDays = 2, 3
	e.setPolicy(p)
	ann, nik := e.namedKey("tech-ann"), e.namedKey("tech-nik")
	e.mustLogin("ann", e.code(ann, 0))
	e.mustLogin("nik", e.code(nik, 0))
	if _, err := e.login("ann", e.code(ann, 1)); !errors.Is(err, offline.ErrLimit) {
		t.Fatalf("third offline login: %v", err)
	}
	// Back in contact: the allowance starts again (and the used keys are
	// retired: new ones come with the next online login).
	if err := e.v.Contact(t.Context()); err != nil {
		t.Fatal(err)
	}
	ann = e.namedKey("tech-ann")
	e.clock.Add(3*24*time.Hour - time.Minute)
	e.mustLogin("ann", e.code(ann, 0))
	e.clock.Add(2 * time.Minute)
	if _, err := e.login("ann", e.code(ann, 0)); !errors.Is(err, offline.ErrLimit) {
		t.Fatalf("more than 3 days without contact: %v", err)
	}
	// Online, with OTP allowed while online, the offline limits do not
	// apply; without it, codes are refused online.
	if _, err := e.v.Login(t.Context(), offline.Request{Username: "ann", Code: e.code(ann, 0), Action: protocol.ActionLogon, Online: true}); !errors.Is(err, offline.ErrOnline) {
		t.Fatalf("online without OTPWhileOnline: %v", err)
	}
	p.Version++
	p.OTPWhileOnline = true
	e.setPolicy(p)
	g, err := e.v.Login(t.Context(), offline.Request{Username: "ann", Code: e.code(ann, 0), Action: protocol.ActionLogon, Online: true})
	if err != nil {
		t.Fatalf("online with OTPWhileOnline: %v", err)
	}
	g.Password.Wipe()
}

// TestKeyReplacedAfterOfflineUse: after an offline login and the next
// contact with the console, the key that was used no longer works; the
// new one does.
func TestKeyReplacedAfterOfflineUse(t *testing.T) {
	t.Run("named", func(t *testing.T) {
		e := newEnv(t, protocol.ModeNamed)
		old := e.namedKey("tech-nik")
		e.mustLogin("nik", e.code(old, 0))
		e.clock.Add(30 * time.Second)
		seen := e.code(old, 0) // a code seen over the shoulder, not yet used
		if err := e.v.Contact(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.login("nik", seen); !errors.Is(err, offline.ErrNoKey) {
			t.Fatalf("old key's code after the contact: %v", err)
		}
		fresh := e.namedKey("tech-nik") // the next online login
		if bytes.Equal(fresh, old) {
			t.Fatal("key not replaced")
		}
		if _, err := e.login("nik", e.code(old, 0)); !errors.Is(err, offline.ErrWrongCode) {
			t.Fatalf("old key's code with a new key: %v", err)
		}
		e.mustLogin("nik", e.code(fresh, 1))
		if !slices.Contains(agenttest.Events(e.records()), audit.OfflineKeyReplaced) {
			t.Fatal("no offline.key.replaced record")
		}
	})
	t.Run("shared", func(t *testing.T) {
		e := newEnv(t, protocol.ModeShared)
		old := e.sharedKey(e.secret, "tech-nik")
		e.mustLogin("nik", e.code(old, 0))
		e.clock.Add(30 * time.Second)
		// Still offline: a second login with the same key works.
		e.mustLogin("nik", e.code(old, 0))
		e.clock.Add(30 * time.Second)
		seen := e.code(old, 0)
		if err := e.v.Contact(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.login("nik", seen); !errors.Is(err, offline.ErrNoKey) {
			t.Fatalf("spent generation's code after the contact: %v", err)
		}
		// Ann did not use hers: unaffected.
		e.mustLogin("ann", e.code(e.sharedKey(e.secret, "tech-ann"), 0))
		// The console's next generation arrives; an older one is ignored.
		next := bytes.Repeat([]byte{0x77}, 32)
		if ok, err := e.v.SetTenantSecret(t.Context(), "acme", []protocol.TenantSecret{{Tenant: "acme", Secret: next, Generation: 2}}); !ok || err != nil {
			t.Fatalf("generation 2: %v %v", ok, err)
		}
		if ok, _ := e.v.SetTenantSecret(t.Context(), "acme", []protocol.TenantSecret{{Tenant: "acme", Secret: e.secret, Generation: 1}}); ok {
			t.Fatal("an older generation replaced the newer")
		}
		if _, err := e.login("nik", seen); !errors.Is(err, offline.ErrWrongCode) {
			t.Fatalf("old generation's code: %v", err)
		}
		e.mustLogin("nik", e.code(e.sharedKey(next, "tech-nik"), 1))
		if e.v.Generation(t.Context()) != 2 {
			t.Fatal("generation not 2")
		}
	})
}

// TestNoSecretsInStore: the named key and the tenant secret are stored
// sealed: the database file holds neither.
func TestNoSecretsInStore(t *testing.T) {
	e := newEnv(t, protocol.ModeShared)
	p := e.policy
	p.Version++
	p.LoginMode = protocol.ModeNamed
	e.setPolicy(p)
	key := e.namedKey("tech-nik")
	files, _ := filepath.Glob(filepath.Join(e.agent.Dir, "*"))
	if len(files) < 3 {
		t.Fatalf("state files %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, key) || bytes.Contains(b, e.secret) {
			t.Fatalf("a secret is in %s in plain text", f)
		}
	}
}

// TestSharedPerDeviceKeyAfterOfflineUse: in shared mode, once a
// technician's derived key was used offline here, the next online login
// gives a per-device key (as in named mode) and the derived key stays
// retired on this device, even under a new tenant secret; other
// technicians keep their derived keys.
func TestSharedPerDeviceKeyAfterOfflineUse(t *testing.T) {
	e := newEnv(t, protocol.ModeShared)
	// Before any offline use, an online login gives no key: the derived
	// one serves.
	_ = e.st.Update(t.Context(), func(tx *store.Tx) error {
		if k, err := e.v.NamedKey(tx, "tech-nik", &e.policy); k != nil || err != nil {
			t.Errorf("NamedKey before any offline use = %x %v", k, err)
		}
		return nil
	})
	derived := e.sharedKey(e.secret, "tech-nik")
	e.mustLogin("nik", e.code(derived, 0))
	if err := e.v.Contact(t.Context()); err != nil {
		t.Fatal(err)
	}
	perDevice := e.namedKey("tech-nik") // the next online login
	e.clock.Add(30 * time.Second)
	e.mustLogin("nik", e.code(perDevice, 0))
	next := bytes.Repeat([]byte{0x42}, 32)
	if ok, err := e.v.SetTenantSecret(t.Context(), "acme", []protocol.TenantSecret{{Tenant: "acme", Secret: next, Generation: 2}}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	e.clock.Add(30 * time.Second)
	if _, err := e.login("nik", e.code(e.sharedKey(next, "tech-nik"), 0)); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("derived key after a per-device key was issued: %v", err)
	}
	e.mustLogin("nik", e.code(perDevice, 0))
	e.mustLogin("ann", e.code(e.sharedKey(next, "tech-ann"), 0))
}

// TestWrongCodeWithFailingStore: when the store cannot record a wrong
// code (disk full), the technician is locked out at once, in memory: a
// guesser gets no tries the store cannot count.
func TestWrongCodeWithFailingStore(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	key := e.namedKey("tech-nik")
	good := e.code(key, 0)
	bad := "000000"
	if bad == good {
		bad = "000001"
	}
	e.failCommits.Store(true)
	var locked *offline.LockedError
	if _, err := e.login("nik", bad); !errors.As(err, &locked) {
		t.Fatalf("wrong code with a failing store: %v, want a lockout", err)
	}
	e.failCommits.Store(false)
	if _, err := e.login("nik", good); !errors.As(err, &locked) {
		t.Fatalf("right code during that lockout: %v", err)
	}
	e.clock.Add(time.Duration(e.policy.Offline.LockoutLimit) * time.Second)
	e.mustLogin("nik", e.code(key, 0))
}

// TestNamedKeyAfterVaultKeyLost: when the vault's key file is lost, the
// stored named key no longer opens; the next online login must still
// succeed and gives a new key, which works offline.
func TestNamedKeyAfterVaultKeyLost(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	old := e.namedKey("tech-nik")
	fresh, err := vault.OpenFileKey(t.TempDir(), nil) // another key
	if err != nil {
		t.Fatal(err)
	}
	e.vault = fresh
	e.start()
	if _, err := e.login("nik", e.code(old, 0)); !errors.Is(err, offline.ErrUnavailable) {
		t.Fatalf("old key under a new vault key: %v", err)
	}
	key := e.namedKey("tech-nik") // the online login's transaction
	if bytes.Equal(key, old) {
		t.Fatal("the unreadable key was not replaced")
	}
	e.mustLogin("nik", e.code(key, 0))
}

// TestUnknownUsernameNotRecorded: a typed username that is not in the
// roster (perhaps a password typed in the wrong field) is refused like a
// wrong code and appears in neither the audit trail nor the log.
func TestUnknownUsernameNotRecorded(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	const typed = "Hunter2-secret"
	if _, err := e.login(typed, "123456"); !errors.Is(err, offline.ErrWrongCode) {
		t.Fatalf("unknown username: %v", err)
	}
	recs := e.records()
	last := recs[len(recs)-1]
	if last.Event != audit.LoginDenied || last.Reason != "unknown username" {
		t.Fatalf("last record %+v", last)
	}
	for _, r := range recs {
		if strings.Contains(fmt.Sprintf("%+v", r), typed) {
			t.Fatalf("the typed username is in the audit: %+v", r)
		}
	}
}
