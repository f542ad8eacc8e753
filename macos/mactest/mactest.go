// Package mactest is a fake Mac for tests on Linux: a command.Runner that
// answers the macOS administration tools the macos packages run (dscl,
// dseditgroup, pwpolicy, sysadminctl, createhomedir, rm, launchctl,
// pkill, pgrep, last, security) the way their documentation and their
// recorded outputs (macos/testdata) say they behave, over an in-memory
// local directory, process table, keychain and authorization database.
//
// It follows the documented behaviour, not Apple's implementation: what
// it gets wrong, a Mac would show. Each command it does not know, or
// calls with arguments it does not expect, fail with exit status 64
// (usage), so a backend that drifts from the documented forms fails its
// tests instead of passing against a lenient fake.
package mactest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/macos/command"
)

// Mac is the fake. Safe for concurrent use.
type Mac struct {
	now func() time.Time

	mu       sync.Mutex
	users    map[string]*user
	admin    []string
	procs    map[int]int // pid -> uid
	nextPID  int
	logins   []login
	keychain map[[2]string][]byte // (service, account) -> password
	rights   map[string][]byte
	calls    [][]string
	// BootstrapToken makes a login at the login window grant a
	// SecureToken, as a Mac with an escrowed bootstrap token does, unless
	// the record's AuthenticationAuthority holds ;DisabledTags;SecureToken.
	bootstrap bool
	failNext  map[string]error
}

type user struct {
	attrs map[string][]string
	pw    []byte
	home  bool
}

type login struct {
	name string
	at   time.Time
}

// Config configures a Mac.
type Config struct {
	// Now is the clock of logins; nil means time.Now.
	Now func() time.Time
	// BootstrapToken: see Mac.
	BootstrapToken bool
	// Rights is the initial authorization database (right name to the
	// property list `security authorizationdb read` prints).
	Rights map[string][]byte
}

// New returns a fake Mac with root, daemon and nobody, an admin group
// holding root, and the given rights.
func New(cfg Config) *Mac {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Mac{now: cfg.Now, users: map[string]*user{}, admin: []string{"root"}, procs: map[int]int{}, nextPID: 400,
		keychain: map[[2]string][]byte{}, rights: map[string][]byte{}, bootstrap: cfg.BootstrapToken, failNext: map[string]error{}}
	for name, uid := range map[string]string{"root": "0", "daemon": "1", "nobody": "-2"} {
		m.users[name] = &user{attrs: map[string][]string{"RecordName": {name}, "UniqueID": {uid}, "GeneratedUID": {uuid()}}}
	}
	for k, v := range cfg.Rights {
		m.rights[k] = bytes.Clone(v)
	}
	return m
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AddUser adds a record as System Settings would make it (for tests of
// accounts jitkey did not create): uid, full name, a SecureToken if
// token, admin if admin.
func (m *Mac) AddUser(name string, uid int, fullName string, pw []byte, token, admin bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	aa := []string{";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>"}
	if token {
		aa = append(aa, ";SecureToken;")
	}
	m.users[name] = &user{attrs: map[string][]string{"RecordName": {name}, "UniqueID": {strconv.Itoa(uid)}, "GeneratedUID": {uuid()},
		"RealName": {fullName}, "UserShell": {"/bin/zsh"}, "NFSHomeDirectory": {"/Users/" + name}, "AuthenticationAuthority": aa}, pw: bytes.Clone(pw), home: true}
	if admin {
		m.admin = append(m.admin, name)
	}
}

// FailNext makes the next command whose line is cmd or starts with cmd
// and a space (e.g. "dseditgroup", "dscl .") fail with exit status 1,
// err's text on stderr, and no effect.
func (m *Mac) FailNext(cmd string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext[cmd] = err
}

// Calls returns every command line run so far (stdin is not kept).
func (m *Mac) Calls() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// Attr returns a user's attribute values (standard attributes by their
// short name, native ones with their dsAttrTypeNative: prefix).
func (m *Mac) Attr(name, attr string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[name]; ok {
		return slices.Clone(u.attrs[attr])
	}
	return nil
}

// HasHome reports whether the user's home directory exists.
func (m *Mac) HasHome(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	return ok && u.home
}

// ErrLoginRefused: Login was refused.
var ErrLoginRefused = errors.New("mactest: login refused")

// Login logs name in at the login window with pw, as OpenDirectory
// decides: the record exists, is not disabled and pw is its password. A
// login records a `last` entry, starts two processes of the uid, and, on
// a Mac with a bootstrap token, grants a SecureToken unless the record
// disables the tag.
func (m *Mac) Login(ctx context.Context, name string, pw []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok || slices.Contains(u.attrs["AuthenticationAuthority"], ";DisabledUser;") || u.pw == nil || !bytes.Equal(u.pw, pw) {
		return fmt.Errorf("%w: %s", ErrLoginRefused, name)
	}
	m.logins = append(m.logins, login{name: name, at: m.now()})
	uid, _ := strconv.Atoi(u.attrs["UniqueID"][0])
	for range 2 {
		m.procs[m.nextPID] = uid
		m.nextPID++
	}
	aa := u.attrs["AuthenticationAuthority"]
	if m.bootstrap && !slices.Contains(aa, ";DisabledTags;SecureToken") && !slices.Contains(aa, ";SecureToken;") {
		u.attrs["AuthenticationAuthority"] = append(aa, ";SecureToken;")
	}
	return nil
}

// Processes returns the pids running as uid.
func (m *Mac) Processes(uid int) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for pid, u := range m.procs {
		if u == uid {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// Right returns the stored property list of an authorization right.
func (m *Mac) Right(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.rights[name]
	return bytes.Clone(b), ok
}

// SetRight replaces an authorization right, as an OS update does when it
// resets the database.
func (m *Mac) SetRight(name string, plist []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rights[name] = bytes.Clone(plist)
}

// KeychainItem returns a generic password of the System keychain.
func (m *Mac) KeychainItem(service, account string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.keychain[[2]string{service, account}]
	return bytes.Clone(b), ok
}

// usage is the failure for a command line the fake does not know.
func usage(name string, args []string) error {
	return &command.Error{Name: name, Args: args, Code: 64, Stderr: "usage", Err: fmt.Errorf("exit status 64")}
}

func fail(name string, args []string, code int, stderr string) error {
	return &command.Error{Name: name, Args: args, Code: code, Stderr: stderr, Err: fmt.Errorf("exit status %d", code)}
}

// Run implements command.Runner.
func (m *Mac) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, &command.Error{Name: name, Args: args, Code: -1, Err: err}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, append([]string{name}, args...))
	line := strings.Join(append([]string{name}, args...), " ")
	for cmd, err := range m.failNext {
		if line == cmd || strings.HasPrefix(line, cmd+" ") {
			delete(m.failNext, cmd)
			return nil, nil, &command.Error{Name: name, Args: args, Code: 1, Stderr: err.Error(), Err: err}
		}
	}
	switch name {
	case "dscl":
		return m.dscl(stdin, args)
	case "pwpolicy":
		return m.pwpolicy(args)
	case "dseditgroup":
		return m.dseditgroup(args)
	case "sysadminctl":
		return m.sysadminctl(args)
	case "createhomedir":
		if len(args) == 3 && args[0] == "-c" && args[1] == "-u" {
			if u, ok := m.users[args[2]]; ok {
				u.home = true
				return []byte("creating home directories for (" + args[2] + ")\n"), nil, nil
			}
		}
	case "rm":
		if len(args) == 3 && args[0] == "-rf" && args[1] == "--" && strings.HasPrefix(args[2], "/Users/") {
			return nil, nil, nil // the record is gone already; the home goes with it
		}
	case "launchctl":
		return m.launchctl(args)
	case "pkill", "pgrep":
		return m.signal(name, args)
	case "last":
		return m.last(args)
	case "security":
		return m.security(stdin, args)
	}
	return nil, nil, usage(name, args)
}

// shortAttr maps dsAttrTypeStandard:X to X; native names stay.
func shortAttr(a string) string { return strings.TrimPrefix(a, "dsAttrTypeStandard:") }

func notFound(args []string) error {
	return fail("dscl", args, 56, "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)")
}

func (m *Mac) dscl(stdin []byte, args []string) ([]byte, []byte, error) {
	if len(args) == 1 && args[0] == "." {
		return m.dsclInteractive(stdin)
	}
	plistOut := false
	a := args
	if len(a) > 0 && a[0] == "-plist" {
		plistOut, a = true, a[1:]
	}
	if len(a) < 3 || a[0] != "." {
		return nil, nil, usage("dscl", args)
	}
	op, path, rest := a[1], a[2], a[3:]
	if op == "-list" {
		if path != "/Users" || len(rest) != 1 || plistOut {
			return nil, nil, usage("dscl", args)
		}
		names := make([]string, 0, len(m.users))
		for n := range m.users {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			if v := m.users[n].attrs[shortAttr(rest[0])]; len(v) > 0 {
				fmt.Fprintf(&b, "%-23s %s\n", n, strings.Join(v, " "))
			}
		}
		return []byte(b.String()), nil, nil
	}
	if path == "/Groups/admin" && op == "-read" && plistOut && len(rest) == 0 {
		return m.plist(map[string][]string{"GroupMembership": m.admin, "RecordName": {"admin"}, "PrimaryGroupID": {"80"}}), nil, nil
	}
	name, ok := strings.CutPrefix(path, "/Users/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, nil, usage("dscl", args)
	}
	u := m.users[name]
	switch {
	case op == "-read" && plistOut && len(rest) == 0:
		if u == nil {
			return nil, nil, notFound(args)
		}
		return m.plist(u.attrs), nil, nil
	case plistOut:
	case op == "-create" && len(rest) == 0:
		if u == nil {
			m.users[name] = &user{attrs: map[string][]string{"RecordName": {name}, "GeneratedUID": {uuid()}}}
		}
		return nil, nil, nil
	case op == "-create" && len(rest) >= 2:
		if u == nil {
			return nil, nil, notFound(args)
		}
		u.attrs[shortAttr(rest[0])] = slices.Clone(rest[1:])
		return nil, nil, nil
	case op == "-append" && len(rest) >= 2:
		if u == nil {
			return nil, nil, notFound(args)
		}
		k := shortAttr(rest[0])
		u.attrs[k] = append(u.attrs[k], rest[1:]...)
		return nil, nil, nil
	case op == "-delete" && len(rest) == 0:
		if u == nil {
			return nil, nil, notFound(args)
		}
		delete(m.users, name)
		return nil, nil, nil
	case op == "-delete" && len(rest) == 1:
		if u == nil {
			return nil, nil, notFound(args)
		}
		delete(u.attrs, shortAttr(rest[0]))
		return nil, nil, nil
	}
	return nil, nil, usage("dscl", args)
}

// dsclInteractive runs "passwd /Users/NAME PASSWORD" lines from stdin, as
// dscl's interactive mode does; errors go to stderr, the exit status is 0.
func (m *Mac) dsclInteractive(stdin []byte) ([]byte, []byte, error) {
	var stderr bytes.Buffer
	for line := range bytes.Lines(stdin) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || string(f[0]) != "passwd" {
			stderr.WriteString("Unknown command\n")
			continue
		}
		name, _ := strings.CutPrefix(string(f[1]), "/Users/")
		u := m.users[name]
		if u == nil {
			stderr.WriteString("passwd: DS Error: -14136 (eDSRecordNotFound)\n")
			continue
		}
		u.pw = bytes.Clone(f[2])
		aa := slices.DeleteFunc(slices.Clone(u.attrs["AuthenticationAuthority"]), func(s string) bool { return strings.HasPrefix(s, ";ShadowHash;") })
		u.attrs["AuthenticationAuthority"] = append([]string{";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>"}, aa...)
	}
	return nil, stderr.Bytes(), nil
}

// plist renders a record as dscl -plist does: sorted attribute names,
// standard ones with their dsAttrTypeStandard: prefix.
func (m *Mac) plist(attrs map[string][]string) []byte {
	keys := make([]string, 0, len(attrs))
	full := map[string]string{}
	for k := range attrs {
		fk := k
		if !strings.HasPrefix(k, "dsAttrTypeNative:") {
			fk = "dsAttrTypeStandard:" + k
		}
		full[fk] = k
		keys = append(keys, fk)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "\t<key>%s</key>\n\t<array>\n", xmlEscape(k))
		for _, v := range attrs[full[k]] {
			fmt.Fprintf(&b, "\t\t<string>%s</string>\n", xmlEscape(v))
		}
		b.WriteString("\t</array>\n")
	}
	b.WriteString("</dict>\n</plist>\n")
	return []byte(b.String())
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (m *Mac) pwpolicy(args []string) ([]byte, []byte, error) {
	if len(args) != 3 || args[0] != "-u" || (args[2] != "-disableuser" && args[2] != "-enableuser") {
		return nil, nil, usage("pwpolicy", args)
	}
	u := m.users[args[1]]
	if u == nil {
		return nil, nil, fail("pwpolicy", args, 1, "Error: user "+args[1]+" not found")
	}
	aa := slices.DeleteFunc(slices.Clone(u.attrs["AuthenticationAuthority"]), func(s string) bool { return s == ";DisabledUser;" })
	if args[2] == "-disableuser" {
		aa = append(aa, ";DisabledUser;")
	}
	u.attrs["AuthenticationAuthority"] = aa
	return nil, nil, nil
}

func (m *Mac) dseditgroup(args []string) ([]byte, []byte, error) {
	if len(args) != 7 || args[0] != "-o" || args[1] != "edit" || args[4] != "-t" || args[5] != "user" || args[6] != "admin" {
		return nil, nil, usage("dseditgroup", args)
	}
	name := args[3]
	if m.users[name] == nil {
		return nil, nil, fail("dseditgroup", args, 64, "Record was not found.")
	}
	switch args[2] {
	case "-a":
		if !slices.Contains(m.admin, name) {
			m.admin = append(m.admin, name)
		}
	case "-d":
		m.admin = slices.DeleteFunc(m.admin, func(s string) bool { return s == name })
	default:
		return nil, nil, usage("dseditgroup", args)
	}
	return nil, nil, nil
}

// sysadminctl answers -secureTokenStatus on stderr with exit status 0, as
// the real tool does (it exits 0 even for an unknown user).
func (m *Mac) sysadminctl(args []string) ([]byte, []byte, error) {
	if len(args) != 2 || args[0] != "-secureTokenStatus" {
		return nil, nil, usage("sysadminctl", args)
	}
	stamp := m.now().UTC().Format("2006-01-02 15:04:05.000") + " sysadminctl[4711:90210] "
	u := m.users[args[1]]
	if u == nil {
		return nil, []byte(stamp + "Unable to find user record\n"), nil
	}
	state := "DISABLED"
	if slices.Contains(u.attrs["AuthenticationAuthority"], ";SecureToken;") {
		state = "ENABLED"
	}
	return nil, []byte(stamp + "Secure token is " + state + " for user " + args[1] + "\n"), nil
}

func (m *Mac) launchctl(args []string) ([]byte, []byte, error) {
	if len(args) != 2 || args[0] != "bootout" || !strings.HasPrefix(args[1], "user/") {
		return nil, nil, usage("launchctl", args)
	}
	uid, err := strconv.Atoi(strings.TrimPrefix(args[1], "user/"))
	if err != nil {
		return nil, nil, usage("launchctl", args)
	}
	n := 0
	for pid, u := range m.procs {
		if u == uid {
			delete(m.procs, pid)
			n++
		}
	}
	if n == 0 {
		return nil, nil, fail("launchctl", args, 3, "Boot-out failed: 3: No such process")
	}
	return nil, nil, nil
}

// signal implements pkill -KILL -U UID and pgrep -U UID: exit status 1
// when no process matched. It never matches uid 0.
func (m *Mac) signal(name string, args []string) ([]byte, []byte, error) {
	a := args
	if name == "pkill" {
		if len(a) == 0 || a[0] != "-KILL" {
			return nil, nil, usage(name, args)
		}
		a = a[1:]
	}
	if len(a) != 2 || a[0] != "-U" {
		return nil, nil, usage(name, args)
	}
	uid, err := strconv.Atoi(a[1])
	if err != nil {
		return nil, nil, usage(name, args)
	}
	var pids []string
	for pid, u := range m.procs {
		if u == uid {
			pids = append(pids, strconv.Itoa(pid))
			if name == "pkill" {
				delete(m.procs, pid)
			}
		}
	}
	if len(pids) == 0 {
		return nil, nil, fail(name, args, 1, "")
	}
	if name == "pkill" {
		return nil, nil, nil
	}
	sort.Strings(pids)
	return []byte(strings.Join(pids, "\n") + "\n"), nil, nil
}

// last prints the newest login of a user in BSD last's format.
func (m *Mac) last(args []string) ([]byte, []byte, error) {
	if len(args) != 2 || args[0] != "-1" {
		return nil, nil, usage("last", args)
	}
	var b strings.Builder
	for i := len(m.logins) - 1; i >= 0; i-- {
		if l := m.logins[i]; l.name == args[1] {
			fmt.Fprintf(&b, "%-9s %-8s %-17s %s   still logged in\n", l.name, "console", "", l.at.Format("Mon Jan _2 15:04"))
			break
		}
	}
	b.WriteString("\nwtmp begins Mon Nov 30 09:12\n")
	return []byte(b.String()), nil, nil
}

// Admins returns the members of the admin group (GroupMembership of
// /Groups/admin), as the fake directory holds them.
func (m *Mac) Admins() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.admin)
}
