package cli

import (
	"flag"
	"fmt"
	"io"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// offlineFlags registers the offline-login settings of `tenant add|set`
// (SPEC.md 11.6) and returns a function that copies a visited flag into
// the change; it reports whether the flag was one of these.
func offlineFlags(fs *flag.FlagSet) func(f *flag.Flag, ch *console.TenantChange) bool {
	digits := fs.Int("otp-digits", 0, "offline code digits (6, 8); same as --digits")
	period := fs.Int("otp-period", 0, "offline code period seconds (30, 60); same as --period")
	alg := fs.String("otp-algorithm", "", "offline code hash: sha1 or sha256")
	logins := fs.Int("offline-logins", 0, "offline logins an agent accepts since its last contact with the console (1..1000; default 10)")
	days := fs.Int("offline-days", 0, "days after its last contact with the console during which an agent accepts offline logins (1..365; default 14)")
	return func(f *flag.Flag, ch *console.TenantChange) bool {
		switch f.Name {
		case "otp-digits":
			ch.Digits = digits
		case "otp-period":
			ch.Period = period
		case "otp-algorithm":
			ch.Algorithm = alg
		case "offline-logins":
			ch.MaxLogins = logins
		case "offline-days":
			ch.MaxDays = days
		default:
			return false
		}
		return true
	}
}

// showOffline prints a tenant's offline-login settings for `tenant show`.
func showOffline(w io.Writer, tn *store.Tenant) {
	fmt.Fprintf(w, "offline algorithm: %s\n", console.AlgorithmName(tn.Offline.Algorithm))
	fmt.Fprintf(w, "offline limits:    %d logins, %d days since the agent's last contact with the console\n",
		tn.Offline.Logins(), tn.Offline.Days())
	if tn.LoginMode == protocol.ModeShared {
		fmt.Fprintf(w, "offline secret:    generation %d\n", tn.OfflineGeneration)
	}
}
