package lifecycle

import (
	"sync"
)

// Outcome is the result of one login request (a QR or a push login): set
// once, its grant's password handed out once, and a grant never taken
// reclaimed when the request is abandoned, so that its session can be
// ended at once rather than at its deadline.
type Outcome struct {
	once sync.Once
	done chan struct{}

	mu    sync.Mutex
	grant Grant
	err   error
	taken bool // the grant was handed out
}

// NewOutcome returns an Outcome not yet set.
func NewOutcome() *Outcome { return &Outcome{done: make(chan struct{})} }

// Set sets the result to g or err, if it is not set yet, and reports
// whether this call set it. then, if not nil, runs after the result is
// set and before Done is closed.
func (o *Outcome) Set(g Grant, err error, then func()) bool {
	set := false
	o.once.Do(func() {
		set = true
		o.mu.Lock()
		o.grant, o.err = g, err
		o.mu.Unlock()
		if then != nil {
			then()
		}
		close(o.done)
	})
	return set
}

// Done is closed when the result is set.
func (o *Outcome) Done() <-chan struct{} { return o.done }

// Result returns the grant or the error, after Done. The grant's password
// is handed out once: later calls return it wiped.
func (o *Outcome) Result() (Grant, error) {
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.grant
	if o.taken {
		g.Password = g.Password.Clone()
		g.Password.Wipe()
	}
	o.taken = true
	return g, o.err
}

// Err returns the error the result was set to, after Done.
func (o *Outcome) Err() error {
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Reclaim, after Done, replaces a grant that Result has not handed out by
// err and returns it, its password wiped, for the caller to end its
// session; it reports false if there is none (the result is an error, or
// the grant was taken).
func (o *Outcome) Reclaim(err error) (Grant, bool) {
	<-o.done
	o.mu.Lock()
	g, unclaimed := o.grant, o.err == nil && !o.taken
	if unclaimed {
		o.grant, o.err = Grant{}, err
	}
	o.mu.Unlock()
	if !unclaimed {
		return Grant{}, false
	}
	g.Password.Wipe()
	return g, true
}
