package commands

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

const (
	// reactorName keys the reactor's checkpoint.
	reactorName = "settlement"
	// sweepInterval is how often timeouts, orphaned holds and waiting jobs
	// are looked at, besides whenever the log moves.
	sweepInterval = time.Second
	// readRetryMin and readRetryMax bound the wait before the reactor
	// reads the log again after a failed read (the database away).
	readRetryMin = 50 * time.Millisecond
	readRetryMax = 5 * time.Second
	// OrphanHoldGrace is how long a hold may wait for its job to appear
	// before the reactor releases it.
	OrphanHoldGrace = time.Minute
)

// Reactor follows the log and does every cross-stream effect: it deducts a
// completed job's hold, releases the hold of a cancelled or finally failed
// job, dispatches requeued jobs, times out jobs left DISPATCHED and releases
// holds whose job never appeared. Every effect is idempotent (decisions see
// the effect already made, event ids are derived), so the reactor may crash
// and restart at any point; its checkpoint only saves work.
//
// A Reactor has two duties, which one process may split between roles:
// settling (deductions, releases, orphaned holds, and the checkpoint that
// says how far they are done) and feeding the dispatcher (observing every
// job and node event into its registry, running its passes and sweeps).
// NewReactor does both, as one process running every role does; NewSettler
// and NewFollower do one each.
type Reactor struct {
	s     *Service
	grace time.Duration
	// settles: this reactor does the settlements and keeps the checkpoint.
	settles bool
	// dispatches: this reactor feeds the dispatcher's registry and runs its
	// passes and sweeps (which do nothing unless this process leads the
	// dispatcher role).
	dispatches bool
	// fence, when set, runs in the transaction that saves the checkpoint.
	fence func(ctx context.Context, tx *sqldb.Tx) error
	// types, when set, are the only event types read from the log: a
	// follower of a registry that follows assignments only.
	types []string

	pendingMu sync.Mutex
	pending   map[domain.JobID]pendingHold // holds whose job has not appeared yet

	checkpoint atomic.Uint64 // effects done through this position
	mu         sync.Mutex
	reached    *sync.Cond
}

type pendingHold struct {
	user  domain.UserID
	at    time.Time
	event string // the credits.held event's id: the cause of a release
}

// causedSettlement is a settlement and the id of the event that calls for it.
type causedSettlement struct {
	domain.Settlement
	causation string
}

// NewReactor returns a reactor for s. grace ≤ 0 means OrphanHoldGrace.
// It settles and feeds the dispatcher.
func NewReactor(s *Service, grace time.Duration) *Reactor {
	return newReactor(s, grace, true, true, nil)
}

// NewSettler returns a reactor for s that only settles: it deducts and
// releases holds, releases orphaned holds (grace ≤ 0 means
// OrphanHoldGrace) and saves its checkpoint, running fence (when not nil)
// in the checkpoint's transaction — the process that leads the reactor role
// passes its term's fence. It leaves the dispatcher to a Follower.
//
// Its settlements are not fenced: each is decided on the account's latest
// version and written with ids derived from the job ("settle/{job}"), so a
// deposed settler that settles a job again decides nothing (the hold is
// closed) or appends a duplicate of the same ids, which the store accepts
// as a no-op. Charging twice is impossible either way.
func NewSettler(s *Service, grace time.Duration, fence func(ctx context.Context, tx *sqldb.Tx) error) *Reactor {
	return newReactor(s, grace, true, false, fence)
}

// NewFollower returns a reactor for s that only feeds the dispatcher: it
// observes every job and node event of the log into the registry (so nodes
// long-polling this process are woken by dispatches made in another) and
// runs the dispatcher's passes and sweeps, which do nothing unless this
// process leads the dispatcher role (dispatch.Dispatcher.SetLeading). It
// settles nothing and saves no checkpoint: Position is how far it has read.
// For a dispatcher that follows assignments only, it reads only
// dispatch.AssignmentEvents.
func NewFollower(s *Service) *Reactor {
	r := newReactor(s, 0, false, true, nil)
	if s.dispatcher.FollowsAssignmentsOnly() {
		r.types = dispatch.AssignmentEvents // read filtered by the store where it can
	}
	return r
}

func newReactor(s *Service, grace time.Duration, settles, dispatches bool, fence func(context.Context, *sqldb.Tx) error) *Reactor {
	if grace <= 0 {
		grace = OrphanHoldGrace
	}
	r := &Reactor{s: s, grace: grace, settles: settles, dispatches: dispatches, fence: fence, pending: map[domain.JobID]pendingHold{}}
	r.reached = sync.NewCond(&r.mu)
	return r
}

// Run follows the log until ctx ends. It first replays the whole log into
// the dispatcher's registry (doing effects only past its checkpoint), then
// follows live appends. Failed reads and effects (the database away) are
// retried with backoff. It returns ctx's error, or the first error it could
// not retry (a corrupt log).
func (r *Reactor) Run(ctx context.Context) error {
	if r.settles {
		from, err := r.loadCheckpoint(ctx)
		if err != nil {
			return err
		}
		r.reach(from)
	}
	batches := make(chan readBatch)
	errs := make(chan error, 1)
	go func() {
		sub := r.subscribe(ctx)
		backoff := readRetryMin
		for {
			b, err := sub.Next()
			if err != nil && ctx.Err() == nil && !errors.Is(err, eventstore.ErrCorrupt) {
				// The database went away for a while: the subscription keeps
				// its position, so reading again loses nothing.
				r.s.log.Warn("reactor: reading the log failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				backoff = min(2*backoff, readRetryMax)
				continue
			}
			if err != nil {
				errs <- err
				return
			}
			backoff = readRetryMin
			select {
			case batches <- readBatch{b, sub.Position() - 1}:
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	for {
		select {
		case b := <-batches:
			if err := r.handle(ctx, b.events, b.through); err != nil {
				return err
			}
		case <-tick.C:
			r.Sweep(ctx)
		case err := <-errs:
			return err
		case <-ctx.Done():
			// The reader may stop on ctx without a word on errs.
			return ctx.Err()
		}
	}
}

// subscribe follows the whole log, or the events of r.types.
func (r *Reactor) subscribe(ctx context.Context) *eventstore.Subscription {
	if r.types != nil {
		return eventstore.SubscribeTypes(ctx, r.s.store, 1, r.types...)
	}
	return r.s.store.Subscribe(ctx, 1)
}

// readBatch is what the reactor read: events, and the position it read
// the log through (past its last event when it reads some types only).
type readBatch struct {
	events  []eventstore.RecordedEvent
	through uint64
}

// handle observes a batch, read through the log's position last, and does
// the effects of its events past the checkpoint.
func (r *Reactor) handle(ctx context.Context, batch []eventstore.RecordedEvent, last uint64) error {
	done := r.checkpoint.Load()
	var settlements []causedSettlement
	for _, rec := range batch {
		e, err := domain.DecodeEvent(rec.Type, rec.Data)
		if err != nil {
			continue // not a domain event (an anchor record): nothing to react to
		}
		if r.dispatches {
			r.s.dispatcher.Observe(e, rec.Version, rec.Position)
		}
		if !r.settles {
			continue
		}
		r.track(e, rec.ID)
		if st, ok := domain.SettlementOf(e); ok && rec.Position > done {
			settlements = append(settlements, causedSettlement{st, rec.ID})
		}
	}
	if err := r.settleAll(ctx, settlements); err != nil {
		return err
	}
	if r.dispatches {
		r.s.registry.Prune(last)
	}
	if last <= done {
		return nil
	}
	if r.dispatches {
		// Before the checkpoint moves: whoever waits for the reactor to pass
		// a failure must find the job it freed a slot for already dispatched
		// (a pass is idempotent, so a crash before the save only repeats it).
		r.s.DispatchWaiting(ctx)
	}
	return r.retry(ctx, func() error { return r.saveCheckpoint(ctx, last) })
}

// settleWorkersMax bounds the accounts settled at once.
const settleWorkersMax = 64

// settleAll settles a batch's jobs, accounts in parallel (so their appends
// share group commits) and each account's jobs in log order.
func (r *Reactor) settleAll(ctx context.Context, settlements []causedSettlement) error {
	byOwner := map[domain.UserID][]causedSettlement{}
	for _, st := range settlements {
		byOwner[st.Owner] = append(byOwner[st.Owner], st)
	}
	sem := make(chan struct{}, settleWorkersMax)
	errs := make(chan error, len(byOwner))
	var wg sync.WaitGroup
	for _, sts := range byOwner {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, st := range sts {
				if err := r.retry(ctx, func() error { _, err := r.s.settle(ctx, st.Settlement, st.causation); return err }); err != nil {
					errs <- fmt.Errorf("settle job %s: %w", st.Job, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// track keeps the holds still waiting for their job; id is e's event id.
func (r *Reactor) track(e domain.Event, id string) {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	switch e := e.(type) {
	case domain.CreditsHeld:
		r.pending[e.JobID] = pendingHold{user: e.UserID, at: e.At, event: id}
	case domain.JobSubmitted:
		delete(r.pending, e.JobID)
	}
}

// retry runs an effect until it succeeds, the domain refuses it (logged: the
// decision stands), or ctx ends. Store errors are retried with backoff.
func (r *Reactor) retry(ctx context.Context, effect func() error) error {
	backoff := 10 * time.Millisecond
	for {
		err := effect()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if isDecisionError(err) {
			r.s.log.Warn("reactor effect refused", "err", err)
			return nil
		}
		if errors.Is(err, eventstore.ErrCorrupt) {
			return err
		}
		r.s.log.Warn("reactor effect failed; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Sweep runs the dispatcher's sweep (jobs of lost nodes fail, dispatches
// left too long time out), releases holds whose job never appeared within
// the grace period, and dispatches waiting jobs.
func (r *Reactor) Sweep(ctx context.Context) {
	if r.dispatches {
		r.s.dispatcher.Sweep(ctx, r.s)
	}
	if r.settles {
		r.releaseOrphans(ctx)
	}
	if r.dispatches {
		r.s.DispatchWaiting(ctx)
	}
}

// releaseOrphans releases the holds whose job never appeared within the
// grace period.
func (r *Reactor) releaseOrphans(ctx context.Context) {
	now := r.s.now()
	for job, h := range r.expiredHolds(now) {
		if err := r.releaseIfOrphaned(ctx, job, h); err != nil {
			r.s.log.Warn("release orphaned hold", "job", job, "err", err)
			continue
		}
		r.pendingMu.Lock()
		delete(r.pending, job)
		r.pendingMu.Unlock()
	}
}

// expiredHolds returns the pending holds older than the grace period.
func (r *Reactor) expiredHolds(now time.Time) map[domain.JobID]pendingHold {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	out := map[domain.JobID]pendingHold{}
	for job, h := range r.pending {
		if now.Sub(h.at) >= r.grace {
			out[job] = h
		}
	}
	return out
}

func (r *Reactor) releaseIfOrphaned(ctx context.Context, job domain.JobID, h pendingHold) error {
	j, err := r.s.Job(ctx, job)
	if err != nil || (j.Exists() && j.Owner() == h.user) {
		return err // a job of another owner is not this hold's: it never appeared
	}
	_, err = r.s.releaseOrphan(ctx, h.user, job, h.event)
	return err
}

// Position returns the last log position whose effects are done.
func (r *Reactor) Position() uint64 { return r.checkpoint.Load() }

// WaitFor blocks until the reactor has handled position, or ctx ends.
func (r *Reactor) WaitFor(ctx context.Context, position uint64) error {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.reached.Broadcast()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.checkpoint.Load() < position {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.reached.Wait()
	}
	return nil
}

func (r *Reactor) loadCheckpoint(ctx context.Context) (uint64, error) {
	var pos int64
	err := r.s.db.QueryRow(ctx, `SELECT position FROM reactor_checkpoints WHERE name = ?`, reactorName).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read reactor checkpoint: %w", err)
	}
	return uint64(pos), nil
}

// saveCheckpoint records that the effects through pos are done: in the
// database when the reactor settles (behind its fence), in memory only
// when it just follows the log for the dispatcher.
func (r *Reactor) saveCheckpoint(ctx context.Context, pos uint64) error {
	var err error
	switch {
	case r.settles && r.fence != nil:
		err = r.s.db.InTx(ctx, func(tx *sqldb.Tx) error { return r.storeCheckpoint(ctx, tx, pos) })
	case r.settles:
		_, err = r.s.db.Exec(ctx, upsertCheckpoint, reactorName, int64(pos))
	}
	if err != nil {
		return fmt.Errorf("save reactor checkpoint: %w", err)
	}
	r.reach(pos)
	return nil
}

// reach records that the reactor has handled the log up to pos and wakes
// WaitFor's callers: the checkpoint Run starts from too, since a caller
// may be waiting for a position the reactor's previous run already saved.
func (r *Reactor) reach(pos uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoint.Store(pos)
	r.reached.Broadcast()
}

const upsertCheckpoint = `INSERT INTO reactor_checkpoints (name, position) VALUES (?, ?)
	ON CONFLICT (name) DO UPDATE SET position = excluded.position`

// storeCheckpoint saves pos behind the fence, in tx.
func (r *Reactor) storeCheckpoint(ctx context.Context, tx *sqldb.Tx, pos uint64) error {
	if err := r.fence(ctx, tx); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, upsertCheckpoint, reactorName, int64(pos))
	return err
}
