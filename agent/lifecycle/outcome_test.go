package lifecycle_test

import (
	"errors"
	"testing"

	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
)

// TestOutcome: the result is set once (then runs before Done closes); the
// grant's password is handed out once, later Results get it wiped; a
// grant handed out is not reclaimed, one never taken is, wiped, and the
// result becomes the reclaim's error.
func TestOutcome(t *testing.T) {
	errGone := errors.New("gone")
	grant := func() lifecycle.Grant {
		return lifecycle.Grant{Account: "msp-nik", Password: password.FromBytes([]byte("s3cret-pw"))}
	}

	o := lifecycle.NewOutcome()
	select {
	case <-o.Done():
		t.Fatal("Done closed before Set")
	default:
	}
	ran := false
	if !o.Set(grant(), nil, func() {
		ran = true
		select {
		case <-o.Done():
			t.Error("Done closed before then ran")
		default:
		}
	}) || !ran {
		t.Fatalf("first Set: not set, or then not run (%v)", ran)
	}
	if o.Set(lifecycle.Grant{}, errGone, func() { t.Error("then of a second Set ran") }) {
		t.Fatal("second Set set the result")
	}
	<-o.Done()
	g, err := o.Result()
	if err != nil || g.Account != "msp-nik" || string(g.Password.Bytes()) != "s3cret-pw" {
		t.Fatalf("Result = %q %q %v", g.Account, g.Password.Bytes(), err)
	}
	if again, _ := o.Result(); !again.Password.IsZero() {
		t.Fatal("second Result handed out the password again")
	}
	if string(g.Password.Bytes()) != "s3cret-pw" {
		t.Fatal("second Result wiped the password handed out first")
	}
	if _, ok := o.Reclaim(errGone); ok {
		t.Fatal("Reclaim took back a grant already handed out")
	}

	o = lifecycle.NewOutcome()
	want := grant()
	o.Set(want, nil, nil)
	g, ok := o.Reclaim(errGone)
	if !ok || g.Account != "msp-nik" || !want.Password.IsZero() {
		t.Fatalf("Reclaim of an untaken grant = %q %v, password left %q", g.Account, ok, want.Password.Bytes())
	}
	if _, err := o.Result(); !errors.Is(err, errGone) || !errors.Is(o.Err(), errGone) {
		t.Fatalf("after Reclaim: Result error %v, Err %v; want %v", err, o.Err(), errGone)
	}

	o = lifecycle.NewOutcome()
	o.Set(lifecycle.Grant{}, errGone, nil)
	if _, ok := o.Reclaim(errors.New("other")); ok || !errors.Is(o.Err(), errGone) {
		t.Fatalf("Reclaim of an error result: %v, Err %v", ok, o.Err())
	}
}
