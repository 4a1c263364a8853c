package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// WaitMax bounds how long WaitFor waits for the projections to reach a
// position.
const WaitMax = 5 * time.Second

// ErrWaitTimeout is returned (wrapped) by WaitFor when the projections did
// not reach the position within WaitMax.
var ErrWaitTimeout = errors.New("projections did not catch up in time")

// WaitFor returns nil once every projection of the runner has applied the
// log up to position, so a query sees the effect of a command that
// appended at or before it. It fails with an error wrapping ErrWaitTimeout
// after WaitMax, or wrapping ctx.Err() when ctx ends first; the caller may
// then serve what the projections have. It is woken by the runner's
// commits, never by polling.
func (r *Runner) WaitFor(ctx context.Context, position uint64) error {
	return r.applied.waitFor(ctx, position, WaitMax)
}

// waitFor returns nil once the lowest position reaches position, or an
// error wrapping ErrWaitTimeout after limit or ctx.Err() when ctx ends.
func (p *progress) waitFor(ctx context.Context, position uint64, limit time.Duration) error {
	var timeout <-chan time.Time
	for {
		lowest, changed := p.wait()
		if lowest >= position {
			return nil
		}
		if timeout == nil {
			t := time.NewTimer(limit)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for projections to reach %d (at %d): %w", position, lowest, ctx.Err())
		case <-timeout:
			return fmt.Errorf("wait for projections to reach %d (at %d after %s): %w", position, lowest, limit, ErrWaitTimeout)
		}
	}
}

// progress is the applied position of each projection, with a channel that
// is closed whenever the lowest one rises.
type progress struct {
	mu        sync.Mutex
	positions map[string]uint64
	blocked   map[string]bool // stale projections: they count as 0
	excluded  map[string]bool // failing projections: WaitFor does not wait for them
	low       uint64
	changed   chan struct{}
}

func newProgress(names []string) *progress {
	p := &progress{positions: map[string]uint64{}, blocked: map[string]bool{}, excluded: map[string]bool{}, changed: make(chan struct{})}
	for _, n := range names {
		p.positions[n] = 0
	}
	return p
}

// advance raises positions (never lowers them) and wakes the waiters when
// the lowest position rose.
func (p *progress) advance(positions map[string]uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, pos := range positions {
		if cur, ok := p.positions[name]; ok && pos > cur {
			p.positions[name] = pos
		}
	}
	p.update()
}

// block makes a stale projection count as position 0 until unblocked.
func (p *progress) block(name string, blocked bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[name] = blocked
	p.update()
}

// exclude leaves a failing projection out of the lowest position, so that
// queries of the others are not held up by it, until included again.
func (p *progress) exclude(name string, excluded bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.excluded[name] = excluded
	p.update()
}

// update recomputes the lowest position, waking the waiters if it rose.
func (p *progress) update() {
	low, first := uint64(0), true
	for name, pos := range p.positions {
		if p.excluded[name] {
			continue
		}
		if p.blocked[name] {
			pos = 0
		}
		if first || pos < low {
			low, first = pos, false
		}
	}
	if first {
		return // every projection is failing
	}
	if low < p.low {
		p.low = low // a projection became stale
	}
	if low > p.low {
		p.low = low
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// wait returns the lowest position and a channel closed when it rises.
func (p *progress) wait() (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.low, p.changed
}

func (p *progress) snapshot() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.positions)
}
