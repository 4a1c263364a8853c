package projections

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/eventstore"
)

// Store is the part of the event store projections read;
// eventstore.Store implements it.
type Store interface {
	// ReadAll returns up to max events with position ≥ from, in order.
	ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error)
	// Head returns the last committed position.
	Head(ctx context.Context) (uint64, error)
	// Subscribe follows the log from position from.
	Subscribe(ctx context.Context, from uint64) *eventstore.Subscription
}

const (
	// readChunkEvents is how many events one read-ahead read fetches.
	readChunkEvents = 2000
	// readAheadChunks bounds the chunks being read and decoded at once
	// while catching up; they run in parallel, one goroutine each.
	readAheadChunks = 3
	// catchUpEventsMin is the distance to the head from which the runner
	// catches up by reading ahead in parallel instead of subscribing.
	catchUpEventsMin = 4 * readChunkEvents
	// feedChunksMax bounds the decoded chunks queued for the writer.
	feedChunksMax = 4
)

// chunk is a run of consecutive decoded events, or the error that ended a
// feed.
type chunk struct {
	events []Event
	err    error
}

// send delivers c unless ctx ends first.
func send(ctx context.Context, out chan<- chunk, c chunk) bool {
	select {
	case out <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// readAhead reads and decodes positions from..to, several chunks at a time
// in parallel, and delivers them on out in order. It returns the next
// position, and false when it stopped early (ctx ended, or it delivered an
// error).
func readAhead(ctx context.Context, store Store, from, to uint64, out chan<- chunk) (uint64, bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the spawner when we return early
	pending := make(chan chan chunk, readAheadChunks)
	go func() {
		defer close(pending)
		for start := from; start <= to; start += readChunkEvents {
			res := make(chan chunk, 1)
			select {
			case pending <- res:
			case <-ctx.Done():
				return
			}
			n := int(min(uint64(readChunkEvents), to-start+1))
			go func() { res <- readChunk(ctx, store, start, n) }()
		}
	}()
	next := from
	for res := range pending {
		c := <-res
		if c.err == nil && (len(c.events) == 0 || c.events[0].Position != next) {
			c = chunk{err: fmt.Errorf("read log at %d: the log ends before its head %d", next, to)}
		}
		if !send(ctx, out, c) || c.err != nil {
			return next, false
		}
		next = c.events[len(c.events)-1].Position + 1
	}
	return next, ctx.Err() == nil
}

func readChunk(ctx context.Context, store Store, from uint64, n int) chunk {
	recs, err := store.ReadAll(ctx, from, n)
	if err != nil {
		return chunk{err: fmt.Errorf("read log from %d: %w", from, err)}
	}
	events, err := decodeEvents(recs)
	return chunk{events: events, err: err}
}

// follow delivers every event from position from on: first by reading
// ahead up to the head when far behind, then through a subscription that
// wakes on commits. It closes out when ctx ends or after delivering an
// error.
func follow(ctx context.Context, store Store, from uint64, out chan<- chunk) {
	defer close(out)
	head, err := store.Head(ctx)
	if err != nil {
		send(ctx, out, chunk{err: fmt.Errorf("read head: %w", err)})
		return
	}
	if head >= from+catchUpEventsMin {
		next, ok := readAhead(ctx, store, from, head, out)
		if !ok {
			return
		}
		from = next
	}
	sub := store.Subscribe(ctx, from)
	for {
		recs, err := sub.Next()
		if err != nil {
			if ctx.Err() == nil {
				send(ctx, out, chunk{err: fmt.Errorf("follow log at %d: %w", sub.Position(), err)})
			}
			return
		}
		events, err := decodeEvents(recs)
		if !send(ctx, out, chunk{events: events, err: err}) || err != nil {
			return
		}
	}
}
