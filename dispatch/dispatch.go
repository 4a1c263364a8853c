// Package dispatch decides which node runs which job. Its Registry is the
// operational view of the network (nodes, their heartbeats and load, the
// jobs waiting in priority order), rebuilt from the log; its Dispatcher runs
// the passes that give waiting jobs to free slots and the sweeps that fail
// the jobs of lost nodes and time out dispatches nobody started.
//
// The dispatcher decides nothing about a job itself: every dispatch,
// failure and timeout is a command of the write side (Writer, which
// *commands.Service implements), and the domain's job aggregate has the
// last word. It learns what happened through one method, Observe: the
// store the wiring gives the write side (Watch) calls it for every job and
// node event appended, before the append returns (so a command's effect is
// seen at once and each stream's events in order), and the reactor for every
// event it reads from the log (what other processes wrote, and the whole
// log at start).
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Writer is the write side, as the dispatcher drives it.
type Writer interface {
	// Dispatch assigns a waiting job to node.
	Dispatch(ctx context.Context, job domain.JobID, node domain.NodeID) (uint64, error)
	// FailLostJob fails the attempt of a job whose node was lost or
	// retired, so it is retried elsewhere.
	FailLostJob(ctx context.Context, node domain.NodeID, job domain.JobID, message string) (uint64, error)
	// TimeOutJob ends an attempt left DISPATCHED for domain.DispatchTimeout.
	TimeOutJob(ctx context.Context, job domain.JobID) (uint64, error)
}

// Dispatcher holds the registry and runs its passes and sweeps.
type Dispatcher struct {
	registry *Registry
	// idle is set while this process does not lead the dispatcher role
	// (another process assigns slots): passes, sweeps and reservations at
	// submission then do nothing, so only the leader ever holds a slot.
	idle atomic.Bool
	// assignmentsOnly: see FollowAssignmentsOnly.
	assignmentsOnly atomic.Bool
	fence           atomic.Pointer[Fence] // see SetFence
	pass            chan struct{}         // a one-slot semaphore: one dispatch pass at a time
	now             func() time.Time
	nodeLostAfter   time.Duration
	log             *slog.Logger
}

// NodeLostAfterDefault is twice the health window: a node missing two
// windows of heartbeats has lost its jobs.
const NodeLostAfterDefault = 2 * domain.NodeHealthyWithin

// New returns a dispatcher whose registry starts hearing heartbeats now
// (nil: time.Now). A node silent for nodeLostAfter (≤ 0:
// NodeLostAfterDefault) has lost its jobs, and is never given new ones once
// silent for the health window or nodeLostAfter, whichever is shorter. A nil
// log is slog.Default().
func New(now func() time.Time, nodeLostAfter time.Duration, log *slog.Logger) *Dispatcher {
	if now == nil {
		now = time.Now
	}
	if nodeLostAfter <= 0 {
		nodeLostAfter = NodeLostAfterDefault
	}
	if log == nil {
		log = slog.Default()
	}
	r := NewRegistry(now())
	r.silenceMax = min(domain.NodeHealthyWithin, nodeLostAfter) // never dispatch to a node about to be declared lost
	return &Dispatcher{registry: r, pass: make(chan struct{}, 1), now: now, nodeLostAfter: nodeLostAfter, log: log}
}

// AssignmentEvents are the event types a registry that only follows
// assignments needs (FollowAssignmentsOnly): a node's capabilities and
// retirement (health answers) and every change of a job's node.
var AssignmentEvents = []string{
	domain.EventNodeEnrolled, domain.EventNodeCapabilitiesChanged, domain.EventNodeRetired,
	domain.EventJobDispatched, domain.EventJobStarted, domain.EventJobFailed, domain.EventJobTimedOut,
	domain.EventJobCompleted, domain.EventJobCancelled,
}

// FollowAssignmentsOnly is for a process that never leads the dispatcher
// role (an API process of several): it will never reserve a slot, so its
// registry keeps only what answers nodes and creators — nodes, their
// heartbeats, and the jobs dispatched to them — learnt from the log in its
// order alone (the reactor reading AssignmentEvents), not from this
// process's own appends. It then costs the process the log's dispatches,
// not the whole log: waiting jobs and money are the leader's business.
// Call it before the first append.
func (d *Dispatcher) FollowAssignmentsOnly() {
	d.SetLeading(false)
	d.assignmentsOnly.Store(true)
	d.registry.mu.Lock()
	defer d.registry.mu.Unlock()
	d.registry.assignmentsOnly = true
}

// FollowsAssignmentsOnly reports whether FollowAssignmentsOnly was called.
func (d *Dispatcher) FollowsAssignmentsOnly() bool { return d.assignmentsOnly.Load() }

// Registry returns the dispatcher's view of nodes and waiting jobs.
func (d *Dispatcher) Registry() *Registry { return d.registry }

// SetLeading says whether this process assigns slots: true (the default)
// when it leads the dispatcher role — the only process of an installation
// whose registry reserves slots — false while another process does. A
// process that is not leading still observes every event, so its registry
// answers nodes' long polls and health questions.
// SetLeading(false) returns once the pass in flight, if any, has ended, so a
// deposed leader's last dispatches are in the log before it resigns.
func (d *Dispatcher) SetLeading(leading bool) {
	d.idle.Store(!leading)
	if !leading {
		d.pass <- struct{}{}
		<-d.pass
	}
}

// Leading reports whether this process assigns slots (see SetLeading).
func (d *Dispatcher) Leading() bool { return !d.idle.Load() }

// ReserveNew holds a slot for a job not submitted yet, so its submission
// can dispatch it in the same append (Registry.ReserveNew). It declines
// (false) when this process does not lead the dispatcher role, and when it
// leads behind a Fence (several processes): the submission's append is not
// fenced, so the job is submitted QUEUED and assigned by a pass, which is.
// The write side runs that pass as soon as the submission is appended, so
// the submitter still gets its answer from it.
func (d *Dispatcher) ReserveNew(id domain.JobID, sub domain.Submission, now time.Time) (domain.NodeID, bool) {
	if !d.Leading() || d.hasFence() {
		return "", false
	}
	return d.registry.ReserveNew(id, sub, now)
}

// Observe folds one event of a job or node stream into the registry: the
// event at version of its stream, at position of the log. Older or repeated
// events are ignored, so the same event may be observed twice (once when
// appended, once when read back).
func (d *Dispatcher) Observe(e domain.Event, version, position uint64) {
	d.registry.Observe(e, version, position)
}

// DispatchWaiting assigns waiting jobs to nodes with free slots through w,
// highest priority first, until no waiting job fits. Slots are reserved in
// priority order, then the dispatches are appended concurrently so they
// share group commits. One pass runs at a time; a caller that finds one
// running waits for it, so it sees its outcome. It returns the last log
// position written (0 if none), and the first error of the store. A process
// that does not lead the dispatcher role (SetLeading) dispatches nothing; a
// pass that has slots to give runs behind the Fence (SetFence), and gives
// them back (logged, no error) when the fence refuses it.
func (d *Dispatcher) DispatchWaiting(ctx context.Context, w Writer) (uint64, error) {
	if !d.Leading() {
		return 0, nil
	}
	select {
	case d.pass <- struct{}{}:
		defer func() { <-d.pass }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	rs := d.reserveWaiting()
	if len(rs) == 0 {
		return 0, nil
	}
	var last uint64
	ran := false
	err := d.fenced(ctx, func() error {
		ran = true
		var err error
		last, err = d.dispatchAll(ctx, w, rs)
		return err
	})
	if !ran {
		// Deposed (or the database away): the slots go back, and the
		// leader — this process again, or its successor — dispatches them.
		for _, r := range rs {
			d.registry.unreserve(r.job, r.node)
		}
		d.log.Info("dispatch pass not fenced; its slots given back", "jobs", len(rs), "err", err)
		return 0, nil
	}
	return last, err
}

// reservation is a slot a pass holds for a waiting job.
type reservation struct {
	job  domain.JobID
	node domain.NodeID
}

// reserveWaiting reserves a slot for every waiting job that fits one, in
// dispatch order.
func (d *Dispatcher) reserveWaiting() []reservation {
	var rs []reservation
	for now := d.now(); ; {
		id, node, ok := d.registry.reserveNext(now)
		if !ok {
			return rs // no waiting job fits a free slot
		}
		rs = append(rs, reservation{id, node})
	}
}

// dispatchAll appends the reserved dispatches concurrently, giving back the
// slot of each that fails.
func (d *Dispatcher) dispatchAll(ctx context.Context, w Writer, rs []reservation) (uint64, error) {
	positions := make([]uint64, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if positions[i], errs[i] = w.Dispatch(ctx, r.job, r.node); errs[i] != nil {
				d.registry.unreserve(r.job, r.node)
			}
		}()
	}
	wg.Wait()
	var last uint64
	for i, err := range errs {
		if err != nil && !refused(err) {
			return last, err
		}
		last = max(last, positions[i])
	}
	return last, nil
}

// Fence runs effect only while this process's term as the dispatcher's
// leader lasts, and keeps a successor from starting before effect has
// returned (cluster.Term.Fence held in a transaction around it). It returns
// an error without running effect when the term has ended.
type Fence func(ctx context.Context, effect func() error) error

// SetFence makes every pass that dispatches run behind f (nil: none, as in
// one process that runs every role).
func (d *Dispatcher) SetFence(f Fence) { d.fence.Store(&f) }

func (d *Dispatcher) fenced(ctx context.Context, effect func() error) error {
	if d.hasFence() {
		return (*d.fence.Load())(ctx, effect)
	}
	return effect()
}

// hasFence reports whether passes run behind a Fence.
func (d *Dispatcher) hasFence() bool {
	f := d.fence.Load()
	return f != nil && *f != nil
}

// Sweep fails, through w, the jobs of nodes that fell silent for the lost
// window or were retired (so they retry elsewhere, uncharged), and times out
// jobs left DISPATCHED too long. Failures are logged: the next sweep tries
// again. A process that does not lead the dispatcher role sweeps nothing.
func (d *Dispatcher) Sweep(ctx context.Context, w Writer) {
	if !d.Leading() {
		return
	}
	now := d.now()
	for _, l := range d.registry.lost(now, d.nodeLostAfter) {
		msg := fmt.Sprintf("node %s lost: no heartbeat for %s", l.node, d.nodeLostAfter)
		if l.retired {
			msg = fmt.Sprintf("node %s retired", l.node)
		}
		if _, err := w.FailLostJob(ctx, l.node, l.job, msg); err != nil && !refused(err) {
			d.log.Warn("fail job of lost node", "job", l.job, "node", l.node, "err", err)
		}
	}
	for _, id := range d.registry.overdue(now) {
		if _, err := w.TimeOutJob(ctx, id); err != nil && !refused(err) {
			d.log.Warn("time out job", "job", id, "err", err)
		}
	}
}

// refused reports whether err is the domain refusing a command (or a lost
// race): the decision stands, and there is nothing to retry.
func refused(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) || errors.Is(err, eventstore.ErrConflict)
}
