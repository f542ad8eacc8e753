package cli

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// pushFlags registers the push login limits of `tenant add|set` (SPEC.md
// 6.3, 11.5) and returns a function that copies a visited flag into the
// change; it reports whether the flag was one of these.
func pushFlags(fs *flag.FlagSet) func(f *flag.Flag, ch *console.TenantChange) bool {
	pending := fs.Int("push-max-pending", 0, fmt.Sprintf("push logins pending at a time on one computer (1..%d; default %d)",
		protocol.MaxPushMaxPending, protocol.DefaultPushMaxPending))
	perHour := fs.Int("push-per-hour", 0, fmt.Sprintf("push logins of one technician on one computer per hour (1..%d; default %d)",
		protocol.MaxPushPerHour, protocol.DefaultPushPerHour))
	block := fs.Duration("push-block", 0, fmt.Sprintf("how long a \"this was not me\" report blocks the technician's push logins on that computer (1m..%v; default %v)",
		time.Duration(protocol.MaxPushBlock)*time.Second, time.Duration(protocol.DefaultPushBlock)*time.Second))
	return func(f *flag.Flag, ch *console.TenantChange) bool {
		switch f.Name {
		case "push-max-pending":
			ch.PushMaxPending = pending
		case "push-per-hour":
			ch.PushPerHour = perHour
		case "push-block":
			ch.PushBlock = block
		default:
			return false
		}
		return true
	}
}

// showPush prints a tenant's push login limits for `tenant show`, with
// the defaults a zero stands for.
func showPush(w io.Writer, tn *store.Tenant) {
	p := protocol.Policy{PushMaxPending: tn.PushMaxPending, PushPerHour: tn.PushPerHour, PushBlock: tn.PushBlock}
	pending, perHour, block := p.PushLimits()
	fmt.Fprintf(w, "push limits:       %d pending per computer, %d per technician and hour, %v block after a fraud report\n",
		pending, perHour, block)
}
