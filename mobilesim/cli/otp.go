package cli

import (
	"context"
	"flag"
)

// otpJSON is the --json output of otp.
type otpJSON struct {
	Device      string `json:"device"`
	Tenant      string `json:"tenant"`
	Username    string `json:"username"`
	Code        string `json:"code"`
	SecondsLeft int    `json:"seconds_left"`
	Mode        string `json:"mode"`
}

// cmdOTP shows the offline code of a device (SPEC.md 11.6): the username
// to type with it, the code and how long it stays current. It works
// without the network, from the keys the phone holds.
func (r *run) cmdOTP(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("otp takes one device name")
		}
		_, a, err := r.newApp(nil, nil)
		if err != nil {
			return err
		}
		c, err := a.OfflineCode(args[0])
		if err != nil {
			return err
		}
		if r.g.json {
			r.emit(otpJSON{Device: c.Device.Name, Tenant: c.Device.Tenant, Username: c.Username, Code: c.Code,
				SecondsLeft: c.SecondsLeft, Mode: c.Mode})
			return nil
		}
		r.printf("offline login on %s (tenant %s, %s mode)\nusername: %s\ncode:     %s\nvalid:    %ds more\n",
			c.Device.Name, c.Device.Tenant, c.Mode, c.Username, c.Code, c.SecondsLeft)
		return nil
	}
}

// offlineMark is the devices column saying whether otp works for a device.
func offlineMark(ok bool) string {
	if ok {
		return "otp"
	}
	return "-"
}
