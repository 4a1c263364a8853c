package commands_test

import (
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/commands"
)

// TestRefreshTokenConcurrentReuse: many concurrent refreshes with one token
// rotate it at most once, and since the others are reuses the family is
// revoked — including the successor issued to the one that won, whatever
// the interleaving (it used to be inserted after the revocation and stay
// valid).
func TestRefreshTokenConcurrentReuse(t *testing.T) {
	const rounds, racers = 40, 8
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		for round := 0; round < rounds; round++ {
			first, err := e.svc.IssueRefreshToken(ctx, "user-refresh")
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
					_, next, err := e.svc.RotateRefreshToken(ctx, first)
					if err != nil && err != commands.ErrInvalidToken {
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
			if _, _, err := e.svc.RotateRefreshToken(ctx, issued[0]); err != commands.ErrInvalidToken {
				t.Fatalf("round %d: the successor of a reused token still rotates (err %v): its family was not revoked", round, err)
			}
		}
	})
}
