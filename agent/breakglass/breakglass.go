// Package breakglass keeps a device's break-glass recovery code (SPEC.md
// 11.15): the emergency way in for when the MSP's console, relay and
// phones are all unavailable.
//
// The agent creates each code (16 random bytes) itself and keeps only a
// verifier of it, Derive(code, LabelRecoveryVerifier, salt, 32) with a
// random 16-byte salt; the code itself is kept sealed (package vault)
// only until the console acknowledges its escrow (Escrow), then
// forgotten. A code is checked against every stored verifier in constant
// time (Match). Using a code marks it used and creates the next one in
// the same transaction (Next), so no state exists in which a used code
// could be used again, or in which the device has no unused code.
package breakglass

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// SaltSize is the size of a verifier's salt.
const SaltSize = 16

// Config configures a Keeper.
type Config struct {
	Store  *store.Store
	Vault  vault.Sealer
	Rand   io.Reader
	Now    func() time.Time
	Logger *slog.Logger
}

// Keeper creates, checks and escrows the device's recovery codes.
type Keeper struct {
	cfg Config
	log *slog.Logger
}

// New returns a Keeper.
func New(cfg Config) *Keeper {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, log: log}
}

// SealContext is the vault context of a generation's sealed code.
func SealContext(generation uint64) []byte {
	return []byte("breakglass-code\x00" + strconv.FormatUint(generation, 10))
}

// Verifier returns the verifier of code under salt.
func Verifier(code protocol.RecoveryCode, salt []byte) ([]byte, error) {
	return protocol.Derive(code[:], protocol.LabelRecoveryVerifier, salt, 32)
}

// Ensure creates the first recovery code, or a new one if every stored
// code is used (it never is after Next; this repairs a store that lost
// its codes). It does nothing when an unused code exists.
func (k *Keeper) Ensure(ctx context.Context) error {
	return k.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		codes, err := tx.RecoveryCodes()
		if err != nil {
			return err
		}
		var top uint64
		if len(codes) > 0 {
			if codes[0].Used.IsZero() {
				return nil
			}
			top = codes[0].Generation
		}
		_, err = k.Next(tx, top)
		return err
	})
}

// Next creates generation after+1 in tx: a fresh code, its salt and
// verifier, and the code sealed for escrow. Generations below after are
// pruned; after itself stays, so that a second use of it is told from a
// wrong code.
func (k *Keeper) Next(tx *store.Tx, after uint64) (uint64, error) {
	var code protocol.RecoveryCode
	salt := make([]byte, SaltSize)
	if _, err := io.ReadFull(k.cfg.Rand, code[:]); err != nil {
		return 0, fmt.Errorf("breakglass: new code: %w", err)
	}
	defer clear(code[:])
	if _, err := io.ReadFull(k.cfg.Rand, salt); err != nil {
		return 0, fmt.Errorf("breakglass: new code: %w", err)
	}
	v, err := Verifier(code, salt)
	if err != nil {
		return 0, err
	}
	gen := after + 1
	sealed, err := k.cfg.Vault.Seal(code[:], SealContext(gen))
	if err != nil {
		return 0, fmt.Errorf("breakglass: seal code: %w", err)
	}
	if err := tx.AddRecoveryCode(store.RecoveryCode{Generation: gen, Salt: salt, Verifier: v, Created: k.cfg.Now(), Sealed: sealed}); err != nil {
		return 0, err
	}
	if err := tx.PruneRecoveryCodes(after); err != nil {
		return 0, err
	}
	return gen, nil
}

// Match returns the stored generation whose verifier code matches. Every
// stored verifier is computed and compared in constant time, whichever
// matches.
func Match(codes []store.RecoveryCode, code protocol.RecoveryCode) (store.RecoveryCode, bool) {
	var found store.RecoveryCode
	ok := false
	for _, c := range codes {
		v, err := Verifier(code, c.Salt)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(v, c.Verifier) == 1 {
			found, ok = c, true
		}
	}
	return found, ok
}

// pending returns the newest generation's code if it is unused and not
// yet acknowledged by the console, and every audit record the agent holds
// is acknowledged (SPEC.md 11.15: the console learns of a use before it
// receives the next code). Both are read in one transaction: a
// break-glass login commits its breakglass.used record and the next
// generation together, so a code read here never overtakes the record of
// the use that created it.
func (k *Keeper) pending(ctx context.Context) (protocol.RecoveryEscrow, bool, error) {
	var e protocol.RecoveryEscrow
	var top store.RecoveryCode
	var unacked bool
	err := k.cfg.Store.View(ctx, func(tx *store.Tx) error {
		rows, err := tx.Audit(0, 1, true)
		if err != nil {
			return err
		}
		unacked = len(rows) > 0
		codes, err := tx.RecoveryCodes()
		if err == nil && len(codes) > 0 {
			top = codes[0]
		}
		return err
	})
	if err != nil || unacked || top.Sealed == nil || !top.Used.IsZero() {
		return e, false, err
	}
	b, err := k.cfg.Vault.Open(top.Sealed, SealContext(top.Generation))
	if err != nil {
		return e, false, fmt.Errorf("breakglass: open sealed code: %w", err)
	}
	defer clear(b)
	if len(b) != len(e.Code) {
		return e, false, errors.New("breakglass: sealed code of the wrong size")
	}
	e.Generation = top.Generation
	copy(e.Code[:], b)
	return e, true, nil
}

// Pending reports whether a code awaits escrow now (none does while an
// audit record awaits its acknowledgement).
func (k *Keeper) Pending(ctx context.Context) (bool, error) {
	e, ok, err := k.pending(ctx)
	clear(e.Code[:])
	return ok, err
}

// Escrow hands the pending code, if any, to the console in a FlowAudit
// session (opened by conn only when there is one) and forgets the sealed
// copy once the console acknowledges that generation.
func (k *Keeper) Escrow(ctx context.Context, conn func(context.Context) (*channel.Conn, error)) error {
	e, ok, err := k.pending(ctx)
	defer clear(e.Code[:])
	if err != nil || !ok {
		return err
	}
	c, err := conn(ctx)
	if err != nil {
		return fmt.Errorf("breakglass: escrow: %w", err)
	}
	if err := c.Send(ctx, protocol.MsgRecoveryEscrow, &e); err != nil {
		return fmt.Errorf("breakglass: escrow: %w", err)
	}
	var ack protocol.RecoveryAck
	if err := c.Recv(ctx, protocol.MsgRecoveryAck, &ack); err != nil {
		return fmt.Errorf("breakglass: escrow: %w", err)
	}
	if err := ack.Check(); err != nil {
		return fmt.Errorf("breakglass: escrow: %w", err)
	}
	if ack.Generation != e.Generation {
		return fmt.Errorf("breakglass: escrow: console acknowledged generation %d, sent %d", ack.Generation, e.Generation)
	}
	if err := k.cfg.Store.Update(ctx, func(tx *store.Tx) error { return tx.RecoveryEscrowed(e.Generation) }); err != nil {
		return fmt.Errorf("breakglass: escrow: %w", err)
	}
	k.log.Info("recovery code escrowed at the console", "generation", e.Generation)
	return nil
}
