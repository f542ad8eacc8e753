package mactest

import (
	"bytes"
	"slices"
	"strings"
)

// SystemKeychain is the keychain file the security commands must name.
const SystemKeychain = "/Library/Keychains/System.keychain"

// security implements the security(1) subcommands the macos packages use:
// authorizationdb read/write (the plist on stdout / stdin, "YES (0)" on
// stderr), find-generic-password -w, delete-generic-password, and -i (the
// interactive mode reading commands from stdin, used for
// add-generic-password so the secret stays out of the arguments).
func (m *Mac) security(stdin []byte, args []string) ([]byte, []byte, error) {
	if len(args) == 1 && args[0] == "-i" {
		return m.securityInteractive(stdin)
	}
	if len(args) == 3 && args[0] == "authorizationdb" {
		switch args[1] {
		case "read":
			b, ok := m.rights[args[2]]
			if !ok {
				return nil, nil, fail("security", args, 1, "NO (-60005)")
			}
			return bytes.Clone(b), []byte("YES (0)\n"), nil
		case "write":
			if len(bytes.TrimSpace(stdin)) == 0 || !bytes.Contains(stdin, []byte("<plist")) {
				return nil, nil, fail("security", args, 1, "NO (-60008)")
			}
			m.rights[args[2]] = bytes.Clone(stdin)
			return nil, []byte("YES (0)\n"), nil
		}
	}
	if len(args) >= 1 && (args[0] == "find-generic-password" || args[0] == "delete-generic-password") {
		service, account, wantPW, ok := parseItemArgs(args[1:])
		if !ok || (args[0] == "find-generic-password") != wantPW {
			return nil, nil, usage("security", args)
		}
		key := [2]string{service, account}
		pw, found := m.keychain[key]
		if !found {
			return nil, nil, fail("security", args, 44, "security: SecKeychainSearchCopyNext: The specified item could not be found in the keychain.")
		}
		if args[0] == "delete-generic-password" {
			delete(m.keychain, key)
			return []byte("keychain: \"" + SystemKeychain + "\"\n"), []byte("password has been deleted.\n"), nil
		}
		return append(bytes.Clone(pw), '\n'), nil, nil
	}
	return nil, nil, usage("security", args)
}

// parseItemArgs reads "-s SERVICE -a ACCOUNT [-w] KEYCHAIN".
func parseItemArgs(a []string) (service, account string, w, ok bool) {
	if len(a) < 5 || a[len(a)-1] != SystemKeychain {
		return "", "", false, false
	}
	a = a[:len(a)-1]
	for len(a) > 0 {
		switch {
		case a[0] == "-w":
			w, a = true, a[1:]
		case len(a) >= 2 && a[0] == "-s":
			service, a = a[1], a[2:]
		case len(a) >= 2 && a[0] == "-a":
			account, a = a[1], a[2:]
		default:
			return "", "", false, false
		}
	}
	return service, account, w, service != "" && account != ""
}

// securityInteractive runs "add-generic-password -U -s S -a A -w PW
// KEYCHAIN" lines. Errors go to stderr; the exit status is 0.
func (m *Mac) securityInteractive(stdin []byte) ([]byte, []byte, error) {
	var stderr bytes.Buffer
	for line := range bytes.Lines(stdin) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		i := slices.Index(f, "-w")
		if f[0] != "add-generic-password" || len(f) < 2 || f[1] != "-U" || i < 0 || i+1 >= len(f) {
			stderr.WriteString("security: unknown command or option\n")
			continue
		}
		pw := f[i+1]
		rest := append(slices.Clone(f[2:i]), f[i+2:]...)
		service, account, _, ok := parseItemArgs(rest)
		if !ok {
			stderr.WriteString("security: add-generic-password: bad arguments\n")
			continue
		}
		m.keychain[[2]string{service, account}] = []byte(pw)
	}
	return nil, stderr.Bytes(), nil
}
