package daemon_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// TestCorruptDatabaseDisablesAccounts: the agent dies with a session
// enabled and its database is corrupt at the next start. Run stops with
// store.ErrCorrupt, but first disables and re-randomises every account
// carrying jitkey's full-name marker; an administrator's account is not
// touched.
func TestCorruptDatabaseDisablesAccounts(t *testing.T) {
	ctx := t.Context()
	msp := agenttest.NewMSP(t, "acme")
	pol := msp.Policy(1)
	a := agenttest.NewAgent(t, msp, &pol, store.Config{})
	be := accountstest.New(accountstest.Config{})
	mgr := lifecycle.New(lifecycle.Config{Backend: be, Store: a.Store, Audit: a.Audit, Rand: rand.Reader})
	g, err := mgr.Begin(ctx, lifecycle.Request{TechID: "id-nik", Username: "nik", Policy: &pol, Session: protocol.SessionID{1}, Action: protocol.ActionLogon})
	if err != nil {
		t.Fatal(err)
	}
	adminPW := password.FromBytes([]byte("Customer-Admin-Pass-4711"))
	if err := be.Create(ctx, "admin", "Customer admin", adminPW); err != nil {
		t.Fatal(err)
	}
	if err := be.Enable(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	// Grow the database past a few pages, then overwrite one: the
	// integrity check fails.
	err = a.Store.Update(ctx, func(tx *store.Tx) error {
		for i := range 200 {
			if err := tx.AppendAudit(store.AuditRow{Seq: uint64(i + 1000), Record: make([]byte, 500)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	a.Store.Close()
	f, err := os.OpenFile(filepath.Join(a.Dir, enroll.DBFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = 0x5a
	}
	if _, err := f.WriteAt(junk, 4096*3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	err = daemon.Run(ctx, daemon.Config{StateDir: a.Dir, Backend: be, MaxNameLen: accounts.MaxNameLinux, Logger: testLog("agent")})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Run = %v, want ErrCorrupt", err)
	}
	t.Logf("Run: %v", err)
	if i, err := be.Lookup(ctx, g.Account); err != nil || i.Enabled {
		t.Fatalf("%s after Run: %+v, %v; want disabled", g.Account, i, err)
	}
	if err := be.Login(ctx, g.Account, g.Password); err == nil {
		t.Fatal("the issued password still logs in")
	}
	if err := be.Login(ctx, "admin", adminPW); err != nil {
		t.Fatalf("administrator's account touched: %v", err)
	}
	if !slices.Equal(be.Names(), []string{"admin", g.Account}) {
		t.Fatalf("accounts %v", be.Names())
	}
}
