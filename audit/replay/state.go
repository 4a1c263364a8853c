package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// readAheadPages bounds the pages of events read ahead of the fold.
const readAheadPages = 2

// State is every aggregate as of a moment, folded from the whole log.
type State struct {
	Moment   Moment
	Events   uint64 // events folded
	Skipped  uint64 // events of a type or schema version the domain does not know
	Accounts map[domain.UserID]*domain.Account
	Jobs     map[domain.JobID]*domain.Job
	Nodes    map[domain.NodeID]*domain.Node
	Anchors  []domain.AnchorRecorded // in log order
}

// Options tune StateAt.
type Options struct {
	// Progress, when set, is called with the number of events read so far,
	// after each page.
	Progress func(events uint64)
}

// StateAt folds positions 1..m.Position of the log into every account, job
// and node, reading one page ahead of the fold. It returns the log's error
// (a *eventstore.CorruptionError for an entry that does not read back
// intact), a *MisfiledError, an error for an event that does not decode,
// or ctx's error.
func StateAt(ctx context.Context, store Store, m Moment, opts Options) (*State, error) {
	s := &State{
		Moment: m, Accounts: map[domain.UserID]*domain.Account{},
		Jobs: map[domain.JobID]*domain.Job{}, Nodes: map[domain.NodeID]*domain.Node{},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reader when the fold fails
	pages := make(chan page, readAheadPages)
	go readPages(ctx, store, 1, m.Position, pages)
	for p := range pages {
		if p.err != nil {
			return nil, p.err
		}
		for _, rec := range p.events {
			if err := s.fold(rec); err != nil {
				return nil, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(s.Events + s.Skipped)
		}
	}
	if got := s.Events + s.Skipped; got != m.Position {
		return nil, errors.Join(fmt.Errorf("replay read %d events, want %d", got, m.Position), ctx.Err())
	}
	return s, nil
}

// fold applies one event to the aggregate of its stream.
func (s *State) fold(rec eventstore.RecordedEvent) error {
	e, err := Decode(rec)
	if err != nil {
		return err
	}
	if e == nil {
		s.Skipped++
		return nil
	}
	s.Events++
	if user, ok := domain.AccountOf(e); ok {
		a := s.Accounts[user]
		if a == nil {
			a = domain.NewAccount(user)
			s.Accounts[user] = a
		}
		a.Apply(e)
		return nil
	}
	switch e := e.(type) {
	case domain.NodeEnrolled, domain.NodeCapabilitiesChanged, domain.NodeRetired:
		id := domain.NodeID(strings.TrimPrefix(rec.Stream, domain.NodeStream("")))
		n := s.Nodes[id]
		if n == nil {
			n = domain.NewNode(id)
			s.Nodes[id] = n
		}
		n.Apply(e)
	case domain.AnchorRecorded:
		s.Anchors = append(s.Anchors, e)
	default: // a job event: Decode checked it is in its job's stream
		id := domain.JobID(strings.TrimPrefix(rec.Stream, domain.JobStream("")))
		j := s.Jobs[id]
		if j == nil {
			j = domain.NewJob(id)
			s.Jobs[id] = j
		}
		j.Apply(e)
	}
	return nil
}

// page is a run of consecutive events, or the error that ended a read.
type page struct {
	events []eventstore.RecordedEvent
	err    error
}

// readPages sends positions from..to in pages, in order, and closes out.
func readPages(ctx context.Context, store Store, from, to uint64, out chan<- page) {
	defer close(out)
	for from <= to {
		n := int(min(uint64(eventstore.ReadEventsMax), to-from+1))
		recs, err := store.ReadAll(ctx, from, n)
		if err == nil && (len(recs) == 0 || recs[0].Position != from) {
			err = &eventstore.CorruptionError{Position: from, Reason: "missing from the log"}
		}
		if err != nil {
			err = fmt.Errorf("read the log from %d: %w", from, err)
		}
		select {
		case out <- page{events: recs, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		from = recs[len(recs)-1].Position + 1
	}
}

// Summary is the totals of a State.
type Summary struct {
	Moment  Moment `json:"moment"`
	Events  uint64 `json:"events"`
	Skipped uint64 `json:"skipped,omitempty"`

	Users     int            `json:"users"`
	Balance   domain.Credits `json:"balance"`
	Held      domain.Credits `json:"held"`
	Available domain.Credits `json:"available"`
	Purchased domain.Credits `json:"purchased"`
	Granted   domain.Credits `json:"granted"`
	Deducted  domain.Credits `json:"deducted"`
	Refunded  domain.Credits `json:"refunded"`

	Jobs         int                   `json:"jobs"`
	JobsByStatus map[domain.Status]int `json:"jobs_by_status"`
	Nodes        int                   `json:"nodes"`
	NodesRetired int                   `json:"nodes_retired"`
	Anchors      int                   `json:"anchors"`
	AnchoredSize uint64                `json:"anchored_size"` // the largest anchored tree size
}

// Summary returns the totals over every aggregate of s.
func (s *State) Summary() Summary {
	out := Summary{Moment: s.Moment, Events: s.Events, Skipped: s.Skipped, Users: len(s.Accounts),
		Jobs: len(s.Jobs), JobsByStatus: map[domain.Status]int{}, Nodes: len(s.Nodes), Anchors: len(s.Anchors)}
	for _, a := range s.Accounts {
		out.Balance += a.Balance()
		out.Held += a.Held()
		out.Available += a.Available()
		out.Purchased += a.Purchased()
		out.Granted += a.Granted()
		out.Deducted += a.Deducted()
		out.Refunded += a.Refunded()
	}
	for _, j := range s.Jobs {
		out.JobsByStatus[j.Status()]++
	}
	for _, n := range s.Nodes {
		if n.Retired() {
			out.NodesRetired++
		}
	}
	for _, a := range s.Anchors {
		out.AnchoredSize = max(out.AnchoredSize, a.TreeSize)
	}
	return out
}
