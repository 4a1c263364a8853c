package commands_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// BenchmarkJobCycle measures complete job cycles — submit (hold + job +
// dispatch), start, complete, and the reactor's deduction — with 16
// concurrent creators, on each backend.
func BenchmarkJobCycle(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be)
			e.mustNode(b, "node-a", domain.SlotsMax, false)
			const creators = 16
			for i := range creators {
				e.mustGrant(b, domain.UserID(fmt.Sprint("u", i)), domain.Credits(b.N+1)*10)
			}
			r, stop := e.runReactor(b)
			defer stop()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range creators {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range (b.N + creators - 1) / creators {
						cycle(b, e, domain.UserID(fmt.Sprint("u", c)))
					}
				}()
			}
			wg.Wait()
			e.settle(b, r)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
		})
	}
}

func cycle(b *testing.B, e *env, user domain.UserID) {
	p, _ := domain.PayloadURI("s3://b/k")
	res, err := e.svc.SubmitJob(ctx, system, commands.SubmitJob{Owner: user, Type: domain.JobRender, Payload: p})
	if err != nil {
		b.Error(err)
		return
	}
	if _, err := e.svc.StartJob(ctx, system, res.NodeID, res.JobID); err != nil {
		b.Error(err)
		return
	}
	if _, err := e.svc.CompleteJob(ctx, system, res.NodeID, res.JobID, sha, 1); err != nil {
		b.Error(err)
	}
}

// BenchmarkAccountLoad measures loading an account whose stream holds
// 100,000 events: cold (a fresh service replays the whole stream) and warm
// (the cached snapshot plus the events since).
func BenchmarkAccountLoad(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be)
			const eventsN = 100_000
			acc, _ := e.svc.Account(ctx, "heavy")
			for acc.Version() < eventsN {
				var batch []domain.Event
				for range min(1000, eventsN-int(acc.Version())) {
					evs, err := acc.Grant(fmt.Sprint("g", acc.Version()), 1, "load", e.clock.Now())
					if err != nil {
						b.Fatal(err)
					}
					acc.Apply(evs[0])
					batch = append(batch, evs...)
				}
				appendDomain(b, e, domain.AccountStream("heavy"), acc.Version()-uint64(len(batch)), batch...)
			}
			b.Run("Cold", func(b *testing.B) {
				for b.Loop() {
					fresh, _ := newService(ctx, e.store, e.db, nil)
					if a, err := fresh.Account(ctx, "heavy"); err != nil || a.Version() != eventsN {
						b.Fatalf("loaded version %d, %v", a.Version(), err)
					}
				}
			})
			b.Run("Warm", func(b *testing.B) {
				e.svc.Account(ctx, "heavy")
				for b.Loop() {
					if a, err := e.svc.Account(ctx, "heavy"); err != nil || a.Version() != eventsN {
						b.Fatalf("loaded version %d, %v", a.Version(), err)
					}
				}
			})
		})
	}
}
