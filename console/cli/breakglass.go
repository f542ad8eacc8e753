package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/console"
)

// cmdBreakGlassShow reveals a device's current break-glass recovery code
// (SPEC.md 11.15) for the administrator to read to the person at the
// computer. The console records the reveal (who, when) before it shows
// the code.
func cmdBreakGlassShow(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("breakglass show", env)
	as := fs.String("as", env.Admin, "who is revealing the code (recorded)")
	return c.withConsole(ctx, args, 1, "DEVICE [--as NAME]   (DEVICE: name, TENANT/NAME or id)", readOnly, func(con *console.Console, pos []string) error {
		r, err := con.RevealRecovery(ctx, pos[0], *as)
		if err != nil {
			return err
		}
		defer clear(r.Code[:])
		ts := func(s int64) string { return time.Unix(s, 0).UTC().Format("2006-01-02 15:04:05 UTC") }
		fmt.Fprintf(env.Stdout, "device %s/%s (id %x): break-glass recovery code, generation %d (escrowed %s)\n\n    %s\n\n",
			r.Device.Tenant, r.Device.Name, r.Device.ID, r.Generation, ts(r.Received), r.Code.Text())
		if r.Used != 0 {
			fmt.Fprintf(env.Stdout, "WARNING: this code was USED (reported %s); the device escrows the next one at its next contact with the console.\n", ts(r.Used))
		}
		fmt.Fprintf(env.Stdout, "At the computer: log in as account msp-breakglass; at the jitkey prompt type the username breakglass,\n"+
			"then this code (either case; dashes optional). The code works once; its use raises the alarm breakglass-used.\n")
		fmt.Fprintf(env.Stdout, "Reveals of this device's codes (recorded):\n")
		for _, rv := range r.Reveals {
			fmt.Fprintf(env.Stdout, "  %s  generation %d  by %s\n", ts(rv.Time), rv.Generation, rv.Admin)
		}
		return nil
	})
}
