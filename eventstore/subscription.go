package eventstore

import (
	"context"
	"slices"
	"sync"
	"time"
)

// HeadSignal broadcasts advances of the log's head to waiting readers.
// The zero value is ready to use.
type HeadSignal struct {
	mu   sync.Mutex
	head uint64
	ch   chan struct{}
}

// Advance records that the log reached head and wakes every waiter.
func (s *HeadSignal) Advance(head uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if head <= s.head {
		return
	}
	s.head = head
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Wait returns the last head seen and a channel closed at the next advance.
func (s *HeadSignal) Wait() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.head, s.ch
}

// ReadAllFunc reads the log from a position; Store.ReadAll has this shape.
type ReadAllFunc func(ctx context.Context, from uint64, max int) ([]RecordedEvent, error)

// subscriptionBatchMax bounds the events one Next returns.
const subscriptionBatchMax = 1000

// Subscription follows the log from a position: it catches up on stored
// events, then waits for new ones. It is not safe for concurrent use.
type Subscription struct {
	ctx    context.Context
	read   ReadAllFunc
	signal *HeadSignal
	poll   time.Duration
	next   uint64
	// keep, when set, are the only event types delivered: read by
	// filtered where the backend filters, or by read and filtered here.
	keep     []string
	filtered FilteredReadFunc
}

// NewSubscription follows read from position from (0 and 1 both mean the
// start), woken by signal. poll > 0 also re-reads at that interval, for
// backends where other processes append without waking signal.
func NewSubscription(ctx context.Context, read ReadAllFunc, signal *HeadSignal, from uint64, poll time.Duration) *Subscription {
	return &Subscription{ctx: ctx, read: read, signal: signal, poll: poll, next: max(from, 1)}
}

// Next blocks until at least one event at or after the subscription's
// position is committed and returns up to subscriptionBatchMax of them, in
// position order. It fails with the subscription's context error when that
// ends, or with the read's error (a *CorruptionError is never skipped).
func (s *Subscription) Next() ([]RecordedEvent, error) {
	for {
		// Take the wake-up channel before reading, so an append that
		// commits between the read and the wait still wakes us.
		_, woken := s.signal.Wait()
		events, moved, err := s.readNext()
		if err != nil {
			return nil, err
		}
		if len(events) > 0 {
			return events, nil
		}
		if moved {
			continue // past events of other types only: the log may hold more
		}
		if err := s.wait(woken); err != nil {
			return nil, err
		}
	}
}

// readNext reads the next batch and moves the position past what it
// looked at; moved reports whether it did.
func (s *Subscription) readNext() (events []RecordedEvent, moved bool, err error) {
	if s.filtered != nil {
		events, through, err := s.filtered(s.ctx, s.next, subscriptionBatchMax, s.keep)
		if err != nil || through < s.next {
			return nil, false, err
		}
		s.next = through + 1
		return events, true, nil
	}
	events, err = s.read(s.ctx, s.next, subscriptionBatchMax)
	if err != nil || len(events) == 0 {
		return nil, false, err
	}
	s.next = events[len(events)-1].Position + 1
	if s.keep != nil {
		events = slices.DeleteFunc(events, func(e RecordedEvent) bool { return !slices.Contains(s.keep, e.Type) })
	}
	return events, true, nil
}

// Position returns the next position the subscription will deliver (for a
// subscription to some types: the next it will look at).
func (s *Subscription) Position() uint64 { return s.next }

func (s *Subscription) wait(woken <-chan struct{}) error {
	var tick <-chan time.Time
	if s.poll > 0 {
		t := time.NewTimer(s.poll)
		defer t.Stop()
		tick = t.C
	}
	select {
	case <-woken:
	case <-tick:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	return nil
}
