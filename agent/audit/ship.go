package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// MaxBatch is the most records one AuditBatch carries.
const MaxBatch = 256

// MaxBatchBytes bounds the encoded size of one AuditBatch, status
// included. It stays 4 KiB below protocol.MaxMessageSize (and the
// transport's bound, protocol.MaxTransportPlain less the message type
// byte), so a batch is never refused as too large: a batch ends before the
// record that would cross it. A batch holds at least one record, and a
// record made by Append is far smaller (see MaxFieldLen).
const MaxBatchBytes = protocol.MaxMessageSize - 4<<10

// ShipInterval is how often the shipper runs without being poked.
const ShipInterval = 30 * time.Second

// After a failed attempt, with records still pending, the shipper retries
// after RetryMin, doubling up to RetryMax; a success resets the delay.
const (
	RetryMin = time.Second
	RetryMax = 30 * time.Second
)

// AttemptTimeout bounds one ShipOnce run of Run, so that a console that
// stops answering mid-batch is retried rather than waited for.
const AttemptTimeout = time.Minute

// ShipperConfig configures a Shipper.
type ShipperConfig struct {
	Store *store.Store
	// Dial opens a FlowAudit session to the console.
	Dial func(ctx context.Context) (*channel.Conn, error)
	// Status fills the batch's PolicyVersion, Name and OS.
	Status func() (policyVersion uint64, name, os string)
	// OnPolicy, if set, receives a newer policy carried by an ack.
	OnPolicy func(ctx context.Context, p protocol.Signed)
	// OnAck, if set, receives every acknowledgement (after OnPolicy):
	// the console was reached.
	OnAck func(ctx context.Context, ack *protocol.AuditAck)
	// Generation, if set, fills the batch's OfflineGeneration.
	Generation func() uint64
	// Heartbeat, if set, sends an empty batch when nothing was
	// acknowledged for that long, so an idle agent still hears from the
	// console (its offline-code allowance counts from that contact).
	Heartbeat time.Duration
	// Escrow, if set, runs once every record is acknowledged (or when
	// there was none to ship), with a function that returns the open
	// session or opens one: the escrow of the break-glass recovery code
	// (SPEC.md 11.15), which follows the records that report its use.
	Escrow   func(ctx context.Context, conn func(context.Context) (*channel.Conn, error)) error
	Now      func() time.Time
	Logger   *slog.Logger
	Interval time.Duration // default ShipInterval
	RetryMin time.Duration // default RetryMin
	RetryMax time.Duration // default RetryMax
}

// Shipper sends unacknowledged records to the console, oldest first, and
// marks them acknowledged when the console says so. Records are never
// deleted.
type Shipper struct {
	cfg  ShipperConfig
	log  *slog.Logger
	poke chan struct{}

	mu      sync.Mutex
	lastAck time.Time // of the last acknowledgement (zero: none yet)
}

// NewShipper returns a Shipper; call Run.
func NewShipper(cfg ShipperConfig) *Shipper {
	if cfg.Interval == 0 {
		cfg.Interval = ShipInterval
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = RetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = RetryMax
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shipper{cfg: cfg, log: log, poke: make(chan struct{}, 1)}
}

// Poke asks the shipper to run soon (after a new record).
func (s *Shipper) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run ships at start, on Poke and every Interval until ctx ends. While a
// failed attempt leaves records pending it also retries after RetryMin,
// doubling the delay up to RetryMax until an attempt succeeds.
func (s *Shipper) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	var delay time.Duration // of the next retry; 0 after a success
	for {
		var retry *time.Timer
		var retryC <-chan time.Time // nil: no retry pending
		if err := s.shipAttempt(ctx); err != nil && ctx.Err() == nil {
			delay = min(max(2*delay, s.cfg.RetryMin), s.cfg.RetryMax)
			s.log.Info("audit shipping failed; records kept", "err", err, "retry", delay)
			retry = time.NewTimer(delay)
			retryC = retry.C
		} else {
			delay = 0
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-s.poke:
		case <-retryC:
		}
		if retry != nil {
			retry.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// shipAttempt is one ShipOnce bounded by AttemptTimeout.
func (s *Shipper) shipAttempt(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	return s.ShipOnce(ctx)
}

// ShipOnce sends batches until nothing is left unacknowledged or a batch
// fails. It returns the first error.
func (s *Shipper) ShipOnce(ctx context.Context) error {
	var conn *channel.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		var rows []store.AuditRow
		err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
			var err error
			rows, err = tx.Audit(0, MaxBatch, true)
			return err
		})
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		if len(rows) == 0 && !s.heartbeatDue() {
			return s.escrow(ctx, &conn)
		}
		var b protocol.AuditBatch
		if s.cfg.Status != nil {
			b.PolicyVersion, b.Name, b.OS = s.cfg.Status()
		}
		if s.cfg.Generation != nil {
			b.OfflineGeneration = s.cfg.Generation()
		}
		if len(rows) > 0 {
			rows = rows[:fitBatch(&b, rows)]
		}
		recs, err := Decode(rows)
		if err != nil {
			return err
		}
		b.Records = recs
		if b.Records == nil {
			b.Records = []protocol.Signed{}
		}
		if conn == nil {
			if conn, err = s.cfg.Dial(ctx); err != nil {
				return fmt.Errorf("audit: dial console: %w", err)
			}
		}
		if err := conn.Send(ctx, protocol.MsgAuditBatch, &b); err != nil {
			return fmt.Errorf("audit: send: %w", err)
		}
		var ack protocol.AuditAck
		if err := conn.Recv(ctx, protocol.MsgAuditAck, &ack); err != nil {
			return fmt.Errorf("audit: ack: %w", err)
		}
		s.mu.Lock()
		s.lastAck = s.cfg.Now()
		s.mu.Unlock()
		var last, upTo uint64 // a heartbeat (no rows) acknowledges nothing
		if len(rows) > 0 {
			last = rows[len(rows)-1].Seq
			upTo = min(ack.UpTo, last)
		}
		if upTo > 0 {
			if err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error { return tx.AckAudit(upTo) }); err != nil {
				return fmt.Errorf("audit: mark acknowledged: %w", err)
			}
		}
		if ack.Policy != nil && s.cfg.OnPolicy != nil {
			s.cfg.OnPolicy(ctx, *ack.Policy)
		}
		if s.cfg.OnAck != nil {
			s.cfg.OnAck(ctx, &ack)
		}
		if len(rows) == 0 {
			return s.escrow(ctx, &conn)
		}
		if upTo < last {
			return fmt.Errorf("audit: console acknowledged up to %d of %d", upTo, last)
		}
	}
}

// escrow runs the Escrow hook in the session *conn, opening one if
// needed.
func (s *Shipper) escrow(ctx context.Context, conn **channel.Conn) error {
	if s.cfg.Escrow == nil {
		return nil
	}
	return s.cfg.Escrow(ctx, func(ctx context.Context) (*channel.Conn, error) {
		if *conn == nil {
			c, err := s.cfg.Dial(ctx)
			if err != nil {
				return nil, fmt.Errorf("audit: dial console: %w", err)
			}
			*conn = c
		}
		return *conn, nil
	})
}

// heartbeatDue reports whether an empty batch should go out.
func (s *Shipper) heartbeatDue() bool {
	if s.cfg.Heartbeat <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAck.IsZero() || s.cfg.Now().Sub(s.lastAck) >= s.cfg.Heartbeat
}

// fitBatch returns how many of rows (at least one) fit in batch b, whose
// status fields are set, within MaxBatchBytes. A stored record is the
// canonical encoding of its envelope, so it adds exactly len(Record)
// bytes to the batch, plus the growth of the array's length header.
func fitBatch(b *protocol.AuditBatch, rows []store.AuditRow) int {
	status := *b
	status.Records = []protocol.Signed{}
	env, err := protocol.Marshal(&status)
	if err != nil {
		return 1 // the send reports the error
	}
	size := len(env) - arrayHeader(0)
	for i, r := range rows {
		size += len(r.Record)
		if i > 0 && size+arrayHeader(i+1) > MaxBatchBytes {
			return i
		}
	}
	return len(rows)
}

// arrayHeader is the length of a CBOR array header for n elements.
func arrayHeader(n int) int {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	}
	return 5
}
