package offline_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// TestBruteForceBounded: 10^6 guesses, one a second (11.6 days), against
// one technician. Guesses during a lockout are refused before any code is
// computed; the number of guesses actually checked is what the lockout
// schedule allows (5, then one per lockout: 30 s, 60 s, ... up to 1 h),
// and none succeeds. The guesses skip the codes valid at the time, so the
// outcome does not depend on luck; what is measured is how many chances
// an attacker gets.
func TestBruteForceBounded(t *testing.T) {
	const guesses = 1_000_000
	e := newEnv(t, protocol.ModeNamed)
	key := e.namedKey("tech-nik")
	p := e.policy.Offline
	p.MaxLogins, p.MaxDays = 0, 0
	checked, locked := 0, 0
	var step uint64
	valid := map[string]bool{} // the codes valid at the current step
	for i := range guesses {
		if s := otpcode.Step(e.clock.Now(), p.Period); s != step || i == 0 {
			step = s
			clear(valid)
			for d := -p.Skew; d <= p.Skew; d++ {
				c, _ := otpcode.Code(key, uint64(int64(s)+int64(d)), p)
				valid[c] = true
			}
		}
		guess := fmt.Sprintf("%06d", i)
		for n := i + 1; valid[guess]; n++ {
			guess = fmt.Sprintf("%06d", n%1_000_000)
		}
		_, err := e.login("nik", guess)
		var l *offline.LockedError
		switch {
		case errors.Is(err, offline.ErrWrongCode):
			checked++
		case errors.As(err, &l):
			locked++
		default:
			t.Fatalf("guess %d: %v", i, err)
		}
		e.clock.Add(time.Second)
	}
	// The schedule: MaxFailures-1 plain failures, then every checked
	// guess starts a lockout.
	want, elapsed := p.MaxFailures-1, time.Duration(p.MaxFailures-1)*time.Second
	for f := p.MaxFailures; elapsed < guesses*time.Second; f++ {
		want++
		elapsed += max(offline.Lockout(p, f), time.Second)
	}
	// Checked guesses that started a lockout count as LockedError.
	total := 0
	for _, r := range e.records() {
		if r.Event == "login.denied" && strings.HasPrefix(r.Reason, "wrong code") {
			total++
		}
	}
	if total > want+1 || total < want-1 {
		t.Fatalf("%d guesses checked (audited), the lockout allows %d", total, want)
	}
	if checked+locked != guesses {
		t.Fatalf("wrong-code answers %d + lockout answers %d != %d guesses", checked, locked, guesses)
	}
	chance := float64(total) * float64(2*p.Skew+1) / 1e6
	t.Logf("%d guesses over %v: %d checked, %d refused by the lockout; a random guesser's chance would be %.1e", guesses, time.Duration(guesses)*time.Second, total, guesses-total, chance)
}
