//go:build linux

package domain

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// BenchmarkInventory lists JITKEY_BENCH_ACCOUNTS (default 5000) JIT
// accounts with the paged search. The accounts are created once, in the
// benchmark only (creating 5 000 takes minutes), with the attributes
// Ensure writes, in an OU of their own.
func BenchmarkInventory(b *testing.B) {
	n := 5000
	if s := os.Getenv("JITKEY_BENCH_ACCOUNTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ou := "OU=Bench," + "DC=jitkey,DC=test"
	start := time.Now()
	if err := adminDo(func(c *ldap.Conn) error {
		a := ldap.NewAddRequest(ou, nil)
		a.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := c.Add(a); err != nil {
			return err
		}
		for i := range n {
			name := fmt.Sprintf("msp-b%05d", i)
			a := ldap.NewAddRequest("CN="+name+","+ou, nil)
			a.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
			a.Attribute("sAMAccountName", []string{name})
			a.Attribute("description", []string{Marker(name)})
			a.Attribute("userAccountControl", []string{"1049090"})
			a.Attribute("accountExpires", []string{"1"})
			if err := c.Add(a); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d accounts in %v", n, time.Since(start))
	d := newBenchDir(b, ou)
	b.ResetTimer()
	for b.Loop() {
		inv, err := d.Inventory(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(inv) != n {
			b.Fatalf("inventory has %d accounts, want %d", len(inv), n)
		}
	}
}

// BenchmarkDomainLogin measures one session on an existing account:
// Begin (enable, password, accountExpires, membership, read-back) and
// End (disable, password, membership, read-back) over LDAPS.
func BenchmarkDomainLogin(b *testing.B) {
	d := newBenchDir(b, testOU)
	ctx := b.Context()
	if _, err := d.Ensure(ctx, "msp-bench"); err != nil {
		b.Fatal(err)
	}
	var begin, end time.Duration
	for b.Loop() {
		t0 := time.Now()
		pw, err := d.Begin(ctx, "msp-bench", time.Now().Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		pw.Wipe()
		t1 := time.Now()
		if err := d.End(ctx, "msp-bench"); err != nil {
			b.Fatal(err)
		}
		begin += t1.Sub(t0)
		end += time.Since(t1)
	}
	b.ReportMetric(float64(begin.Milliseconds())/float64(b.N), "begin-ms/op")
	b.ReportMetric(float64(end.Milliseconds())/float64(b.N), "end-ms/op")
}

func newBenchDir(b *testing.B, ou string) *Directory {
	cfg := testConfig()
	cfg.OU = ou
	d, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
