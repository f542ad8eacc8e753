package cli

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jitkey/jitkey/relay/client"
)

// said is an error whose text is the one sentence the phone prints: what
// is wrong and what to do. It unwraps to the error behind it (for
// classify), whose detail goes to the debug log (JITKEY_PHONE_DEBUG=1).
type said struct {
	msg string
	err error
}

func (e *said) Error() string { return e.msg }
func (e *said) Unwrap() error { return e.err }

// pinSentence says that the relay is not the one the phone was set up
// with, naming the pin it expected.
func pinSentence(pe *client.PinError) string {
	pins := make([]string, len(pe.Want))
	for i, p := range pe.Want {
		pins[i] = hex.EncodeToString(p[:])
	}
	return fmt.Sprintf("the relay at %s does not match this phone's relay pin %s: check the relay address, or set the phone up again (init) with the relay's current --relay-pin",
		pe.Relay, strings.Join(pins, " or "))
}

// chain lists the texts of err and of every error behind it, for the
// debug log: the printed sentence leaves out the decoder's detail.
func chain(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}
