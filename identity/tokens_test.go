package identity_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/identity"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// newPostgresService is newService on a fresh PostgreSQL database.
func newPostgresService(tb testing.TB) *identity.Service {
	tb.Helper()
	dsn := pgtest.NewDatabase(tb)
	store, err := postgres.Open(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqldb.OpenPostgres(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	id, _ := newServiceOn(tb, store, db)
	return id
}

// TestRefreshTokenConcurrentReuse: many concurrent refreshes with one token
// rotate it at most once, and since the others are reuses the family is
// revoked — including the successor issued to the one that won, whatever
// the interleaving (it used to be inserted after the revocation and stay
// valid; the race showed on PostgreSQL).
func TestRefreshTokenConcurrentReuse(t *testing.T) {
	const rounds, racers = 40, 8
	backends := map[string]func(testing.TB) *identity.Service{
		"SQLite":     func(tb testing.TB) *identity.Service { id, _ := newService(tb); return id },
		"PostgreSQL": newPostgresService,
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ids := open(t)
			for round := 0; round < rounds; round++ {
				first, err := ids.IssueRefreshToken(ctx, "user-refresh")
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var issued []string
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := 0; i < racers; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, next, err := ids.RotateRefreshToken(ctx, first)
						if err != nil && !errors.Is(err, identity.ErrInvalidToken) {
							t.Errorf("rotate: %v", err)
						}
						if err == nil {
							mu.Lock()
							issued = append(issued, next)
							mu.Unlock()
						}
					}()
				}
				close(start)
				wg.Wait()
				if len(issued) != 1 {
					t.Fatalf("round %d: %d concurrent refreshes with one token succeeded, want exactly 1", round, len(issued))
				}
				if _, _, err := ids.RotateRefreshToken(ctx, issued[0]); !errors.Is(err, identity.ErrInvalidToken) {
					t.Fatalf("round %d: the successor of a reused token still rotates (err %v): its family was not revoked", round, err)
				}
			}
		})
	}
}
