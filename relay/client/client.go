// Package client is the peer side of the jitkey relay: it connects to the
// home relay with a pinned certificate, authenticates with the peer's
// identity key, stays connected with jittered exponential back-off, and
// sends to and receives from peers on any relay of the fleet.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client/winudp"
	"github.com/jitkey/jitkey/relay/push"
)

// Config configures a Client. Zero durations take the documented defaults.
type Config struct {
	// RetryPin keeps Run trying, with back-off and an Error log line,
	// when the home relay's certificate matches no pin, instead of
	// returning ErrPin at once. For a long-running agent: one bad
	// handshake (someone on the path, a relay's key moved) must not stop
	// it, and with it the offline logins that work without the relay.
	RetryPin bool
	// Identity is the peer's identity key; its mailbox is
	// protocol.MailboxFor(Identity.Public()).
	Identity ed25519.PrivateKey
	// Home is the home relay, "host:port". A Send to a peer whose relay is
	// another spelling of it ("localhost" for "127.0.0.1", another case,
	// an IPv6 address of the same host) goes through the home connection:
	// the client recognises the spelling, or the home relay's pin before
	// it authenticates (SPEC.md 12.3).
	Home string
	// Pins are the accepted relay pins: SHA-256 of a relay certificate's
	// SubjectPublicKeyInfo (protocol.RelayPin), any relay of the fleet.
	Pins [][32]byte
	// PushTicket is this peer's sealed push ticket, which correspondents
	// attach (SendWake) when sending to it. The client only holds it for
	// PushTicket(); it never sends it to its own relay. May be nil.
	PushTicket []byte

	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Rand is the randomness for back-off jitter and TLS; nil: crypto/rand.
	Rand io.Reader

	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// per failed attempt and is jittered to [d/2, d). Defaults 250 ms, 30 s.
	// After a connection that was up ends, the first retry waits
	// MinBackoff jittered (125–250 ms by default).
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the liveness period. Default 15 s. A connection on
	// which nothing arrived for that long sends the relay a Ping frame
	// (no QUIC keep-alive besides: the Ping is the packet). The Ping keeps NAT
	// bindings open and proves the relay alive; as a packet carrying
	// stream data it is also large enough to make a relay that restarted
	// answer with a stateless reset (a bare QUIC PING packet is not:
	// quic-go resets only packets longer than 42 bytes). Shorter periods
	// detect a dead relay sooner but cost the relay packets per idle peer
	// per period: at 5 s, 20,000 idle peers are 4,000 a second (measured
	// in BENCHMARKS.md).
	KeepAlive time.Duration
	// PingTimeout is how long after a Ping the client waits for any frame
	// from the relay before it gives the connection up and reconnects.
	// Default 10 s. A relay killed without a goodbye is thus noticed
	// within KeepAlive + PingTimeout, well before IdleTimeout.
	PingTimeout time.Duration
	// IdleTimeout closes a silent connection (the relay's own bound, 60 s
	// by default, also applies: QUIC takes the smaller). Default 45 s.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds dialing and authentication. Default 10 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame write. Default 10 s.
	WriteTimeout time.Duration
	// ForeignIdle closes a connection to a foreign relay unused for that
	// long. Default 2 min.
	ForeignIdle time.Duration
	// RecvQueue is the number of received messages buffered for Recv.
	// Default 64; when full, the client stops reading and the relay's
	// queue and write timeout apply.
	RecvQueue int
	// Transport, if set, is the QUIC transport (UDP socket) to dial from;
	// many clients may share one (load programs). Nil: the client opens
	// its own socket and closes it in Close.
	Transport *quic.Transport
}

// Message is a payload received from a peer.
type Message struct {
	// From is the sender: its mailbox (authenticated by the relay) and the
	// relay that delivered the message, where the sender is connected and
	// through which a reply reaches it.
	From    protocol.PeerAddr
	Payload []byte
}

// Client is a relay peer. Its methods are safe for concurrent use.
type Client struct {
	cfg     Config
	started time.Time // anchors mono (liveness timing)
	log     *slog.Logger
	mailbox protocol.MailboxID
	tr      *quic.Transport
	ownTr   bool
	pc      net.PacketConn // the socket of an own transport
	seq     atomic.Uint32
	recv    chan Message
	closed  chan struct{}
	wg      sync.WaitGroup

	mu         sync.Mutex
	home       *relayConn
	homeChange chan struct{}         // closed and replaced whenever home changes
	runErr     error                 // why Run returned; nil while it runs
	foreign    map[string]*relayConn // by relayKey
	dialing    map[string]chan struct{}
	closeOnce  sync.Once
	running    bool

	// Recognising the home relay under other spellings (home.go).
	homeKey    string          // relayKey(cfg.Home)
	homePin    [32]byte        // the home relay's pin, from its last handshake
	homePinSet bool            // homePin is known
	homeAlias  map[string]bool // relay keys found to reach the home relay
	events     uint64          // numbers home claims and foreign ends
	foreignUse map[[32]byte]foreignUse
}

// foreignUse is what a client did with foreign connections to one relay
// pin: how many are live (from before their Hello) and the event number
// at which the last one ended (home.go).
type foreignUse struct {
	live  int
	ended uint64
}

// New checks cfg and builds a client. It does not connect; call Run.
func New(cfg Config) (*Client, error) {
	if len(cfg.Identity) != ed25519.PrivateKeySize {
		return nil, errors.New("client: identity must be an Ed25519 private key")
	}
	if err := protocol.CheckRelayAddr(cfg.Home); err != nil {
		return nil, fmt.Errorf("client: home relay: %w", err)
	}
	if len(cfg.Pins) == 0 {
		return nil, errors.New("client: no relay pins")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&cfg.MinBackoff, 250*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	def(&cfg.KeepAlive, 15*time.Second)
	def(&cfg.PingTimeout, 10*time.Second)
	def(&cfg.IdleTimeout, 45*time.Second)
	def(&cfg.HandshakeTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.ForeignIdle, 2*time.Minute)
	if cfg.RecvQueue <= 0 {
		cfg.RecvQueue = 64
	}
	c := &Client{
		cfg:        cfg,
		started:    time.Now(),
		log:        cfg.Logger,
		mailbox:    protocol.MailboxFor(cfg.Identity.Public().(ed25519.PublicKey)),
		tr:         cfg.Transport,
		recv:       make(chan Message, cfg.RecvQueue),
		closed:     make(chan struct{}),
		homeChange: make(chan struct{}),
		homeKey:    relayKey(cfg.Home),
		homeAlias:  make(map[string]bool),
		foreign:    make(map[string]*relayConn),
		foreignUse: make(map[[32]byte]foreignUse),
		dialing:    make(map[string]chan struct{}),
	}
	if c.tr == nil {
		pc, err := listenUDP(cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("client: open udp socket: %w", err)
		}
		c.tr = &quic.Transport{Conn: pc}
		c.ownTr = true
		c.pc = pc
	}
	return c, nil
}

// Addr is this peer's address: its mailbox at its home relay.
func (c *Client) Addr() protocol.PeerAddr {
	return protocol.PeerAddr{Relay: c.cfg.Home, Mailbox: c.mailbox}
}

// PushTicket returns Config.PushTicket.
func (c *Client) PushTicket() []byte { return c.cfg.PushTicket }

// HomePushKey is the HPKE key the home relay announced in its last
// Welcome (nil if push is off or never connected).
func (c *Client) HomePushKey() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.home == nil {
		return nil
	}
	return c.home.welcome.PushKey
}

// SealPushTicket seals a gateway token to the home relay's push key, for
// correspondents to pass to SendWake. The home relay must be connected.
func (c *Client) SealPushTicket(token []byte, expiry time.Time) ([]byte, error) {
	pk := c.HomePushKey()
	if pk == nil {
		return nil, errors.New("client: home relay announced no push key")
	}
	return push.Seal(pk, &protocol.RelayPushTicket{Mailbox: c.mailbox, Expiry: uint64(expiry.Unix()), Token: token})
}

// Run connects to the home relay and stays connected, reconnecting with
// jittered exponential back-off, until ctx is done or Close is called. It
// returns ErrReplaced if another connection claims this mailbox, and a
// *PinError (ErrPin) at once if the home relay's certificate
// matches none of the pins: that does not heal by retrying.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("client: Run called twice")
	}
	c.running = true
	c.mu.Unlock()
	err := c.run(ctx)
	c.mu.Lock()
	c.runErr = err
	c.notifyHome()
	c.mu.Unlock()
	return err
}

func (c *Client) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	failures := 0
	for {
		rc, err := c.dial(ctx, c.cfg.Home, true)
		var delay time.Duration
		if err == nil {
			failures = 0
			c.setHome(rc)
			c.log.Info("connected to home relay", "relay", c.cfg.Home, "mailbox", c.mailbox.String())
			select {
			case <-rc.done:
			case <-ctx.Done():
			}
			c.setHome(nil)
			rc.shutdown(ErrClosed)
			rc.mu.Lock()
			rerr := rc.err
			rc.mu.Unlock()
			if errors.Is(rerr, ErrReplaced) && !c.selfReplaced(rc) {
				c.log.Warn("mailbox claimed by another connection", "relay", c.cfg.Home)
				return ErrReplaced
			}
			if ms := rc.goAway.Load(); ms > 0 {
				delay = c.jitter(time.Duration(ms) * time.Millisecond)
			} else {
				delay = c.jitter(c.cfg.MinBackoff)
			}
			c.log.Info("home relay connection ended", "relay", c.cfg.Home, "err", rerr)
		} else if errors.Is(err, ErrPin) && c.cfg.RetryPin {
			c.log.Error("home relay certificate does not match the pins; retrying", "relay", c.cfg.Home, "err", err)
			delay = c.backoff(failures)
			failures++
		} else if errors.Is(err, ErrPin) {
			// Run returns the error: the caller reports it.
			c.log.Info("home relay certificate does not match the pins; not retrying", "relay", c.cfg.Home, "err", err)
			return err
		} else {
			c.log.Info("home relay unreachable", "relay", c.cfg.Home, "err", err)
			delay = c.backoff(failures)
			failures++
		}
		if ctx.Err() != nil {
			select {
			case <-c.closed:
				return ErrClosed
			default:
				return ctx.Err()
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// backoff is the jittered delay after n consecutive failures.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 0; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return c.jitter(min(d, c.cfg.MaxBackoff))
}

// jitter returns a duration in [d/2, d).
func (c *Client) jitter(d time.Duration) time.Duration {
	var b [8]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil || d < 2 {
		return d
	}
	half := d / 2
	return half + time.Duration(binary.LittleEndian.Uint64(b[:])%uint64(half))
}

func (c *Client) setHome(rc *relayConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.home = rc
	c.notifyHome()
}

// notifyHome wakes the waiters in homeConn. c.mu must be held.
func (c *Client) notifyHome() {
	close(c.homeChange)
	c.homeChange = make(chan struct{})
}

// WaitConnected waits until the home relay connection is up. It fails
// at once if Run has returned (ErrReplaced, ErrClosed, or Run's context
// error).
func (c *Client) WaitConnected(ctx context.Context) error {
	_, err := c.homeConn(ctx)
	return err
}

// homeConn waits for a live home connection. A home connection that died
// is not returned even before Run has noticed; a Send waits for the next
// one instead of writing into a dead connection.
func (c *Client) homeConn(ctx context.Context) (*relayConn, error) {
	for {
		c.mu.Lock()
		rc, changed, runErr := c.home, c.homeChange, c.runErr
		c.mu.Unlock()
		if rc != nil && rc.alive() {
			return rc, nil
		}
		if runErr != nil {
			return nil, fmt.Errorf("home relay: %w", runErr)
		}
		// No connection, or a dead one that Run is about to replace.
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, ErrClosed
		}
	}
}

// conn returns a live connection to relay addr: the home connection (once
// Run has it up) if addr is a spelling of the home relay (home.go), or a
// foreign one dialed on demand and reused.
func (c *Client) conn(ctx context.Context, addr string) (*relayConn, error) {
	key := relayKey(addr)
	for {
		c.mu.Lock()
		if c.isHome(key) {
			c.mu.Unlock()
			return c.homeConn(ctx)
		}
		select {
		case <-c.closed:
			c.mu.Unlock()
			return nil, ErrClosed
		default:
		}
		if rc := c.foreign[key]; rc != nil && rc.alive() {
			c.mu.Unlock()
			return rc, nil
		}
		if wait := c.dialing[key]; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		wait := make(chan struct{})
		c.dialing[key] = wait
		c.mu.Unlock()
		rc, err := c.dial(ctx, addr, false)
		c.mu.Lock()
		delete(c.dialing, key)
		close(wait)
		if err == nil && c.isHomePin(rc.pin) {
			// The home pin became known while this dial was in flight.
			c.mu.Unlock()
			rc.shutdown(errHomeRelay)
			c.mu.Lock()
			err = errHomeRelay
		}
		if errors.Is(err, errHomeRelay) {
			c.homeAlias[key] = true
			c.mu.Unlock()
			c.log.Info("relay address names the home relay", "relay", addr, "home", c.cfg.Home)
			return c.homeConn(ctx)
		}
		if err == nil {
			select {
			case <-c.closed:
				c.mu.Unlock()
				rc.shutdown(ErrClosed)
				return nil, ErrClosed
			default:
			}
			rc.key = key
			c.foreign[key] = rc
			c.reapLater(rc)
		}
		c.mu.Unlock()
		return rc, err
	}
}

// reapLater closes a foreign connection once unused for ForeignIdle.
func (c *Client) reapLater(rc *relayConn) {
	var check func()
	check = func() {
		idle := c.cfg.Now().Sub(time.Unix(0, rc.lastUsed.Load()))
		if !rc.alive() {
			return
		}
		if idle >= c.cfg.ForeignIdle {
			c.mu.Lock()
			if c.foreign[rc.key] == rc {
				delete(c.foreign, rc.key)
			}
			c.mu.Unlock()
			rc.shutdown(ErrClosed)
			return
		}
		time.AfterFunc(c.cfg.ForeignIdle-idle, check)
	}
	time.AfterFunc(c.cfg.ForeignIdle, check)
}

// Send delivers payload to a peer through the peer's relay (to.Relay) and
// waits for the relay's verdict. A negative answer is a *NackError. If the
// relay connection ends before the verdict, Send returns at once with an
// error wrapping ErrConnectionLost. Verdicts are read in order with
// received messages: while the Recv queue is full, they wait too.
//
// A Send refused as rate-limited or for the recipient's full queue was not
// forwarded, and both are transient: Send waits (see retryWait) and submits
// it again, so that a burst above the relay's send rate, or a recipient
// that reads slowly, slows the sender down instead of losing the payload.
// If ctx ends first, the error wraps both the last *NackError
// (ErrRateLimited or ErrQueueFull) and ctx's error; without a deadline, a
// recipient that stops reading is disconnected by its relay (write
// timeout) and the Send then fails with ErrNotConnected. Every other Nack
// is returned at once.
func (c *Client) Send(ctx context.Context, to protocol.PeerAddr, payload []byte) error {
	return c.SendWake(ctx, to, nil, payload)
}

// Sends refused for a transient reason (retryable) are retried after
// retryMin, doubling up to retryMax, jittered to [d/2, d). The relay's
// bucket refills one Send per 1/SendRate (10 ms at the default 100/s); a
// recipient's queue drains as fast as it reads.
const (
	retryMin = 10 * time.Millisecond
	retryMax = time.Second
)

// retryable reports whether a Send refused for reason may be submitted
// again: the refusal is transient and the payload was not forwarded.
func retryable(reason protocol.NackReason) bool {
	return reason == protocol.NackRateLimited || reason == protocol.NackQueueFull
}

// retryWait waits before the retry after n refused attempts.
func (c *Client) retryWait(ctx context.Context, n int) error {
	d := retryMin
	for i := 0; i < n && d < retryMax; i++ {
		d *= 2
	}
	t := time.NewTimer(c.jitter(min(d, retryMax)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	}
}

// SendWake is Send with the recipient's push ticket: if the recipient is not
// connected, its relay sends it a content-free wake-up and answers
// ErrWakeSent (or ErrPushFailed); the payload is not stored. A wake-up
// beyond the relay's limits per sender or per device is refused as
// rate-limited and retried like Send's.
func (c *Client) SendWake(ctx context.Context, to protocol.PeerAddr, ticket []byte, payload []byte) error {
	if len(payload) > protocol.MaxRelayPayload {
		return &NackError{Reason: protocol.NackTooLarge}
	}
	if len(ticket) > protocol.MaxRelayPushTicket {
		return fmt.Errorf("client: push ticket of %d bytes exceeds %d", len(ticket), protocol.MaxRelayPushTicket)
	}
	// refused is the last transient refusal: an error after it (ctx ended
	// during a retry) wraps it too.
	var refused *NackError
	fail := func(n int, err error) error {
		if refused == nil {
			return fmt.Errorf("client: send to %s: %w", to, err)
		}
		return fmt.Errorf("client: send to %s: %w (after %d attempts): %w", to, refused, n, err)
	}
	for n := 0; ; n++ {
		rc, err := c.conn(ctx, to.Relay)
		if err != nil {
			return fail(n, err)
		}
		if max := int(rc.welcome.MaxPayload); len(payload) > max {
			return &NackError{Relay: rc.addr, Reason: protocol.NackTooLarge}
		}
		err = rc.send(ctx, to.Mailbox, ticket, payload)
		var ne *NackError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ne) && retryable(ne.Reason):
			refused = ne
			if werr := c.retryWait(ctx, n); werr != nil {
				return fail(n+1, werr)
			}
		case ne != nil:
			return err
		default:
			return fail(n+1, err)
		}
	}
}

// Recv returns the next message from any relay connection.
func (c *Client) Recv(ctx context.Context) (Message, error) {
	select {
	case m := <-c.recv:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.closed:
		return Message{}, ErrClosed
	}
}

// Close closes every relay connection, stops Run and waits for the
// client's goroutines.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.closed)
		c.notifyHome()
		conns := make([]*relayConn, 0, len(c.foreign)+1)
		if c.home != nil {
			conns = append(conns, c.home)
		}
		for _, rc := range c.foreign {
			conns = append(conns, rc)
		}
		c.mu.Unlock()
		for _, rc := range conns {
			rc.shutdown(ErrClosed)
		}
	})
	c.wg.Wait()
	if c.ownTr {
		c.tr.Close()
		c.pc.Close() // quic.Transport.Close leaves a socket it was given open
	}
	return nil
}

// listenUDP opens the client's own UDP socket. Where net.ListenUDP fails
// for the reason winudp.Fallback names (Wine 8 refusing Go's
// SIO_UDP_CONNRESET ioctl), the socket is opened with plain winsock calls
// instead (winudp.Listen, which logs that it is used).
func listenUDP(log *slog.Logger) (net.PacketConn, error) {
	pc, err := net.ListenUDP("udp", nil)
	if err == nil {
		return pc, nil
	}
	if !winudp.Fallback(err) {
		return nil, err
	}
	wc, ferr := winudp.Listen(log, err)
	if ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	return wc, nil
}
