package identity_test

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rendertrust/rendertrust/identity"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// clock is a settable time shared by the services of a test.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }
func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func limitsOn(tb testing.TB, db *sqldb.DB, c *clock) *identity.Service {
	tb.Helper()
	id, err := identity.New(ctx, identity.Config{DB: db, Now: c.Now, PasswordCost: bcrypt.MinCost})
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// limitsBackends open one state database per backend; "processes" open
// the same database again, as separate API processes do.
var limitsBackends = map[string]func(tb testing.TB) func() *sqldb.DB{
	"SQLite": func(tb testing.TB) func() *sqldb.DB {
		path := filepath.Join(tb.TempDir(), "state.db")
		return func() *sqldb.DB {
			db, err := sqldb.OpenSQLite(path)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			return db
		}
	},
	"PostgreSQL": func(tb testing.TB) func() *sqldb.DB {
		dsn := pgtest.NewDatabase(tb)
		return func() *sqldb.DB {
			db, err := sqldb.OpenPostgres(ctx, dsn)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			return db
		}
	},
}

func mustBegin(t *testing.T, id *identity.Service, account, address string) func(identity.LoginOutcome) {
	t.Helper()
	finish, err := id.BeginLogin(ctx, account, address)
	if err != nil {
		t.Fatalf("attempt on %s from %s refused: %v", account, address, err)
	}
	return func(o identity.LoginOutcome) { finish(ctx, o) }
}

func mustRefuse(t *testing.T, id *identity.Service, account, address string, wait time.Duration) {
	t.Helper()
	_, err := id.BeginLogin(ctx, account, address)
	rl, ok := err.(*identity.LoginRateLimitedError)
	if !ok || !identity.IsLoginRateLimited(err) || rl.Wait != wait {
		t.Fatalf("attempt on %s from %s: %v, want refused with a wait of %v", account, address, err, wait)
	}
}

// TestLoginLimitsAcrossProcesses: two services on one database (two API
// processes): 1. failures counted by either refuse at both past the
// account-and-address ceiling, with the rest of the window as the wait;
// 2. another address still gets in, and a success there forgets the
// account's failures; 3. after the window the account is admitted again.
func TestLoginLimitsAcrossProcesses(t *testing.T) {
	for name, open := range limitsBackends {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			dbOf := open(t)
			a, b := limitsOn(t, dbOf(), c), limitsOn(t, dbOf(), c)
			for i := range identity.AccountAddressFailuresMax {
				p := a
				if i%2 == 1 {
					p = b
				}
				mustBegin(t, p, "x@example.com", "10.0.0.1")(identity.LoginFailed)
				c.Advance(time.Second)
			}
			elapsed := time.Duration(identity.AccountAddressFailuresMax) * time.Second
			mustRefuse(t, a, "x@example.com", "10.0.0.1", identity.LoginWindow-elapsed)
			mustRefuse(t, b, "x@example.com", "10.0.0.1", identity.LoginWindow-elapsed)

			mustBegin(t, b, "x@example.com", "10.0.0.2")(identity.LoginSucceeded)
			mustRefuse(t, a, "x@example.com", "10.0.0.1", identity.LoginWindow-elapsed) // the (account, address) pair keeps its count
			c.Advance(identity.LoginWindow)
			mustBegin(t, a, "x@example.com", "10.0.0.1")(identity.LoginSucceeded)
		})
	}
}

// TestLoginLimitsOneVerificationAtATime: 1. 50 concurrent attempts on one
// account, spread over two processes, while none finishes: exactly one is
// admitted, the others refused with LoginBusyWait; 2. once it finishes the
// next is admitted; 3. a claim never finished (its process died) expires.
func TestLoginLimitsOneVerificationAtATime(t *testing.T) {
	for name, open := range limitsBackends {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			dbOf := open(t)
			procs := []*identity.Service{limitsOn(t, dbOf(), c), limitsOn(t, dbOf(), c)}
			var admitted []func(identity.LoginOutcome)
			var mu sync.Mutex
			var busy atomic.Int32
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					finish, err := procs[i%2].BeginLogin(ctx, "y@example.com", "10.0.0.9")
					if rl, ok := err.(*identity.LoginRateLimitedError); ok && rl.Wait == identity.LoginBusyWait {
						busy.Add(1)
						return
					}
					if err != nil {
						t.Errorf("attempt: %v", err)
						return
					}
					mu.Lock()
					admitted = append(admitted, func(o identity.LoginOutcome) { finish(ctx, o) })
					mu.Unlock()
				}()
			}
			wg.Wait()
			if len(admitted) != 1 || busy.Load() != 49 {
				t.Fatalf("step 1: %d admitted, %d busy; want 1 and 49", len(admitted), busy.Load())
			}
			mustRefuse(t, procs[1], "y@example.com", "10.0.0.9", identity.LoginBusyWait)
			admitted[0](identity.LoginFailed)
			mustBegin(t, procs[1], "y@example.com", "10.0.0.9") // step 3: never finished
			mustRefuse(t, procs[0], "y@example.com", "10.0.0.9", identity.LoginBusyWait)
			c.Advance(31 * time.Second)
			mustBegin(t, procs[0], "y@example.com", "10.0.0.9")(identity.LoginSucceeded)
		})
	}
}

// TestLoginLimitsSharedAddress: behind one address, one user's failures
// lock out only that user; the address as a whole is refused only past
// AddressFailuresMax; an erred attempt (the database failed) counts nothing.
func TestLoginLimitsSharedAddress(t *testing.T) {
	for name, open := range limitsBackends {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			id := limitsOn(t, open(t)(), c)
			for range identity.AccountAddressFailuresMax {
				mustBegin(t, id, "typo@example.com", "nat")(identity.LoginFailed)
			}
			mustRefuse(t, id, "typo@example.com", "nat", identity.LoginWindow)
			mustBegin(t, id, "other@example.com", "nat")(identity.LoginSucceeded)
			for range 10 {
				mustBegin(t, id, "erred@example.com", "nat")(identity.LoginErred)
			}
			// The address has counted typo's 5 (and the refused sixth not at
			// all); fill it up to its ceiling with distinct accounts.
			for i := range identity.AddressFailuresMax - identity.AccountAddressFailuresMax {
				mustBegin(t, id, "u"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.com", "nat")(identity.LoginFailed)
			}
			mustRefuse(t, id, "fresh@example.com", "nat", identity.LoginWindow)
			mustBegin(t, id, "fresh@example.com", "elsewhere")(identity.LoginSucceeded)
		})
	}
}
