package offline_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// bigRoster returns a roster of n technicians, each entry as large as a
// real one (keys, email, relay address).
func bigRoster(n int) []protocol.RosterEntry {
	out := make([]protocol.RosterEntry, n)
	for i := range out {
		out[i] = protocol.RosterEntry{
			Serial: uint64(1000 + i), TechID: fmt.Sprintf("t-%016x", i), Username: fmt.Sprintf("tech%04d", i),
			Email: fmt.Sprintf("tech%04d@msp.example", i), Relay: "relay.msp.example:4433", Role: protocol.RoleAdmin,
			NoiseKey: protocol.NoiseKey{byte(i)}, IdentityKey: protocol.IdentityKey{byte(i)},
		}
	}
	slices.SortFunc(out, func(a, b protocol.RosterEntry) int { return strings.Compare(a.Username, b.Username) })
	return out
}

// maxRoster is the largest roster whose signed policy fits in a message.
func maxRoster(b *testing.B, p protocol.Policy) int {
	n := 1
	for ; ; n += 10 {
		p.Roster = bigRoster(n)
		if _, err := protocol.Marshal(&p); err != nil {
			return n - 10
		}
	}
}

// BenchmarkOfflineAttempt is the agent's cost of one offline attempt with
// a wrong code in a shared-mode tenant (the attacker's case, and the
// upper bound of a good one): read the policy and state, derive the
// technician's code key from the tenant secret, check 3 steps, record the
// failure and its audit record (one SQLite commit). Technicians rotate so
// that no lockout shortens the path.
func BenchmarkOfflineAttempt(b *testing.B) {
	for _, size := range []string{"10", "max"} {
		b.Run("roster="+size, func(b *testing.B) {
			e := newEnv(b, protocol.ModeShared)
			p := e.policy
			p.Version++
			p.Offline.MaxFailures = 10
			p.OTPWhileOnline = true // online: no allowance to run out
			n := 10
			if size == "max" {
				n = maxRoster(b, p)
			}
			p.Roster = bigRoster(n)
			e.setPolicy(p)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				u := p.Roster[i%n].Username
				_, err := e.v.Login(b.Context(), offline.Request{Username: u, Code: "000000", Action: protocol.ActionLogon, Online: true})
				if !errors.Is(err, offline.ErrWrongCode) && !errors.As(err, new(*offline.LockedError)) {
					b.Fatal(err)
				}
				e.clock.Add(2 * time.Hour) // past any lockout: every attempt is checked
			}
			b.ReportMetric(float64(n), "technicians")
		})
	}
}

// BenchmarkSharedCodeCheck is the cryptographic part alone: derive a
// shared-mode code key (two HKDF-SHA256) and compare a code against the
// 3 steps of the window.
func BenchmarkSharedCodeCheck(b *testing.B) {
	secret := bytes.Repeat([]byte{1}, 32)
	p := protocol.OfflineParams{Digits: 6, Period: 30, Skew: 1}
	now := time.Unix(1_790_000_000, 0)
	for b.Loop() {
		k, err := otpcode.SharedCodeKey(secret, "t-0000000000000001", protocol.DeviceID{1})
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, _ := otpcode.Match(k, "000000", now, p, 0); ok {
			b.Fatal("matched")
		}
	}
}
