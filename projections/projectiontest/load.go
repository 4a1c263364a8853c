package projectiontest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// loadWritersMax bounds the appends of one round in flight at once.
const loadWritersMax = 64

// EventData returns e ready to append: a fresh id, its type, the domain's
// schema version and its encoding. It panics if the domain cannot encode
// e (a bug in the simulation).
func EventData(e domain.Event) eventstore.EventData {
	data, err := domain.EncodeEvent(e)
	if err != nil {
		panic(fmt.Sprintf("projectiontest: encode %T: %v", e, err))
	}
	return eventstore.EventData{ID: eventstore.NewEventID(), Type: e.EventType(), SchemaVersion: domain.SchemaVersion, Data: data}
}

// AppendRound appends one round's appends concurrently and returns the
// highest position written. It fails with the first append error.
func AppendRound(ctx context.Context, store eventstore.Store, round []Append) (uint64, error) {
	var (
		mu    sync.Mutex
		last  uint64
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, loadWritersMax)
	for _, a := range round {
		data := make([]eventstore.EventData, len(a.Events))
		for i, e := range a.Events {
			data[i] = EventData(e)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := store.Append(ctx, a.Stream, eventstore.Exact(a.Expected), data...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("append %d events to %s at %d: %w", len(data), a.Stream, a.Expected, err)
			}
			last = max(last, res.LastPosition)
		}()
	}
	wg.Wait()
	return last, first
}

// Load runs sim and appends its rounds to store until sim has decided at
// least events more events. It returns the store's head.
func Load(ctx context.Context, store eventstore.Store, sim *Sim, events int) (uint64, error) {
	target := sim.Events() + events
	for sim.Events() < target {
		if _, err := AppendRound(ctx, store, sim.Round()); err != nil {
			return 0, err
		}
	}
	return store.Head(ctx)
}

// MustLoad is Load that fails tb on error.
func MustLoad(tb testing.TB, store eventstore.Store, sim *Sim, events int) uint64 {
	tb.Helper()
	head, err := Load(context.Background(), store, sim, events)
	if err != nil {
		tb.Fatalf("load %d events: %v", events, err)
	}
	return head
}
