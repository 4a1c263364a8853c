package dispatch

import (
	"container/heap"
	"slices"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Registry is the dispatcher's operational view of the network: which nodes
// exist and what they run (from node events), when each was last heard from
// (heartbeats: operational state, never events), which jobs each node holds
// and which jobs wait. Everything but heartbeats is rebuilt from the log. A
// command's own events are observed at once and again when the reactor
// reads them back, so Observe applies an event only if it is newer than
// what the registry has seen of its stream, and remembers ended jobs until
// the reactor has read past their end (Prune).
type Registry struct {
	mu      sync.Mutex
	nodes   map[domain.NodeID]*nodeState
	jobs    map[domain.JobID]*jobState // jobs not yet ended
	queue   waitQueue                  // the queued jobs without a node (kept by touch)
	ended   endedHeap                  // ended jobs not yet pruned, by end position
	changed chan struct{}              // closed and replaced when an assignment changes
	started time.Time                  // heartbeats before it are unknown (a restart)
	// silenceMax is how long a node may go unheard and still take jobs:
	// the health window, or less when lost nodes are detected sooner.
	silenceMax time.Duration
	// assignmentsOnly: the registry of a process that never leads the
	// dispatcher role (see Dispatcher.FollowAssignmentsOnly).
	assignmentsOnly bool
}

type nodeState struct {
	version  uint64 // of the node stream, as observed
	caps     domain.Capabilities
	retired  bool
	lastSeen time.Time
	assigned map[domain.JobID]bool
}

type jobState struct {
	version     uint64 // of the job stream, as observed
	ended       bool   // COMPLETED, CANCELLED or finally FAILED: kept until pruned
	endPosition uint64
	id          domain.JobID
	typ         domain.JobType
	gpu         bool
	priority    domain.Priority
	submittedAt time.Time
	status      domain.Status
	node        domain.NodeID // while DISPATCHED or RUNNING, or reserved
	dispatched  time.Time
	lastNode    domain.NodeID // the node of the last failed attempt
	queued      bool          // in the wait queue, at queueIndex
	queueIndex  int
}

// NewRegistry returns an empty registry; now is when it starts hearing
// heartbeats.
func NewRegistry(now time.Time) *Registry {
	return &Registry{nodes: map[domain.NodeID]*nodeState{}, jobs: map[domain.JobID]*jobState{}, queue: newWaitQueue(), changed: make(chan struct{}), started: now, silenceMax: domain.NodeHealthyWithin}
}

// Changed returns a channel that is closed at the next change of any job's
// assignment, for nodes long-polling for work.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// notify wakes Changed waiters; r.mu must be held.
func (r *Registry) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Observe folds one event of a job or node stream into the registry: the
// event at version of its stream, at position of the log. Older or repeated
// events are ignored.
func (r *Registry) Observe(e domain.Event, version, position uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := e.(type) {
	case domain.NodeEnrolled:
		r.observeNode(e.NodeID, version, func(n *nodeState) {
			n.caps = domain.Capabilities{JobTypes: e.JobTypes, GPU: e.GPU, Slots: e.Slots}
		})
	case domain.NodeCapabilitiesChanged:
		r.observeNode(e.NodeID, version, func(n *nodeState) {
			n.caps = domain.Capabilities{JobTypes: e.JobTypes, GPU: e.GPU, Slots: e.Slots}
		})
	case domain.NodeRetired:
		r.observeNode(e.NodeID, version, func(n *nodeState) { n.retired = true })
	case domain.JobSubmitted:
		if r.assignmentsOnly {
			return // a job is kept from its dispatch on
		}
		if j, ok := r.jobs[e.JobID]; ok && j.version == 0 {
			j.version = version // a reservation whose submission is now observed
		} else if !ok {
			j := &jobState{version: version, id: e.JobID, typ: e.Type, gpu: e.GPU, priority: e.Priority, submittedAt: e.At, status: domain.StatusQueued}
			r.jobs[e.JobID] = j
			r.touch(j)
			r.notify()
		}
	default:
		if j := r.newerJob(e, version); j != nil {
			r.observeJob(j, e, position)
		}
	}
}

func (r *Registry) observeNode(id domain.NodeID, version uint64, apply func(*nodeState)) {
	n := r.node(id)
	if version <= n.version {
		return
	}
	n.version = version
	apply(n)
}

// newerJob returns the job e belongs to if e is newer than what was seen.
func (r *Registry) newerJob(e domain.Event, version uint64) *jobState {
	id, isJob := domain.JobIDOf(e)
	if !isJob {
		return nil
	}
	j, ok := r.jobs[id]
	if !ok && r.assignmentsOnly && assigns(e) {
		j = &jobState{id: id, status: domain.StatusQueued}
		r.jobs[id] = j
	} else if !ok || version <= j.version {
		return nil
	}
	j.version = version
	return j
}

// assigns reports whether e gives its job a node.
func assigns(e domain.Event) bool {
	switch e.(type) {
	case domain.JobDispatched, domain.JobStarted:
		return true
	}
	return false
}

func (r *Registry) observeJob(j *jobState, e domain.Event, position uint64) {
	switch e := e.(type) {
	case domain.JobDispatched:
		r.assign(j, e.NodeID, domain.StatusDispatched, e.At)
	case domain.JobStarted:
		r.assign(j, e.NodeID, domain.StatusRunning, time.Time{})
	case domain.JobFailed:
		r.endAttempt(j, e.WillRetry, position)
	case domain.JobTimedOut:
		r.endAttempt(j, e.WillRetry, position)
	case domain.JobCompleted, domain.JobCancelled:
		r.endAttempt(j, false, position)
	}
}

// touch records whether j waits (QUEUED, no node, not ended) after a change.
func (r *Registry) touch(j *jobState) {
	waits := !j.ended && j.status == domain.StatusQueued && j.node == ""
	switch {
	case waits && !j.queued:
		r.queue.add(j)
	case !waits && j.queued:
		r.queue.remove(j)
	}
	j.queued = waits
}

// Prune forgets ended jobs whose end is at or before position: the log has
// been read past them, so none of their events will be observed again.
func (r *Registry) Prune(position uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.ended.Len() > 0 && r.ended[0].endPosition <= position {
		j := heap.Pop(&r.ended).(*jobState)
		if r.jobs[j.id] == j {
			delete(r.jobs, j.id)
		}
	}
}

func (r *Registry) node(id domain.NodeID) *nodeState {
	n, ok := r.nodes[id]
	if !ok {
		n = &nodeState{assigned: map[domain.JobID]bool{}}
		r.nodes[id] = n
	}
	return n
}

func (r *Registry) assign(j *jobState, node domain.NodeID, st domain.Status, at time.Time) {
	if j.node != "" && j.node != node {
		delete(r.node(j.node).assigned, j.id)
	}
	j.status, j.node = st, node
	if !at.IsZero() {
		j.dispatched = at
	}
	r.node(node).assigned[j.id] = true
	r.touch(j)
	r.notify()
}

// endAttempt frees the job's slot; the job waits again or has ended.
func (r *Registry) endAttempt(j *jobState, retry bool, position uint64) {
	if j.node != "" {
		delete(r.node(j.node).assigned, j.id)
	}
	r.notify()
	if !retry {
		j.ended, j.endPosition, j.node = true, position, ""
		heap.Push(&r.ended, j)
	} else {
		j.status, j.lastNode, j.node = domain.StatusQueued, j.node, ""
	}
	r.touch(j)
}

// Heartbeat records that node was heard from at now.
func (r *Registry) Heartbeat(node domain.NodeID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.node(node).lastSeen = now
}

// Heard records that node was heard from at at, by this or another process
// (shared heartbeats); an older time than the last one heard is ignored.
func (r *Registry) Heard(node domain.NodeID, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.node(node); at.After(n.lastSeen) {
		n.lastSeen = at
	}
}

// NodeStatus returns when node was last heard from and how many jobs it holds.
func (r *Registry) NodeStatus(node domain.NodeID) (lastSeen time.Time, load int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[node]; ok {
		return n.lastSeen, len(n.assigned)
	}
	return time.Time{}, 0
}

// HealthyFor reports whether any healthy, active node can run jobs of typ
// (with a GPU when gpu), busy or not.
func (r *Registry) HealthyFor(typ domain.JobType, gpu bool, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.nodes {
		if n.usable(typ, gpu, now, r.silenceMax) {
			return true
		}
	}
	return false
}

func (n *nodeState) usable(typ domain.JobType, gpu bool, now time.Time, silenceMax time.Duration) bool {
	return !n.retired && n.caps.Slots > 0 && domain.Healthy(n.lastSeen, now) && now.Sub(n.lastSeen) <= silenceMax &&
		slices.Contains(n.caps.JobTypes, typ) && (!gpu || n.caps.GPU)
}

// reserve picks a node for a waiting job and holds a slot on it (see
// reserveLocked). It returns false when no node fits.
func (r *Registry) reserve(job domain.JobID, now time.Time) (domain.NodeID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[job]
	if !ok || j.ended || j.status != domain.StatusQueued || j.node != "" {
		return "", false
	}
	return r.reserveLocked(j, now)
}

// reserveNext reserves a slot for the first waiting job, in dispatch order,
// that some node can take now. It returns false when none can.
func (r *Registry) reserveNext(now time.Time) (domain.JobID, domain.NodeID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.queue.next(func(c jobClass) bool { return r.freeSlotFor(c, now) })
	if !ok {
		return "", "", false
	}
	node, ok := r.reserveLocked(j, now)
	return j.id, node, ok
}

// freeSlotFor reports whether a node that can run class has a free slot.
func (r *Registry) freeSlotFor(c jobClass, now time.Time) bool {
	for _, n := range r.nodes {
		if n.usable(c.typ, c.gpu, now, r.silenceMax) && len(n.assigned) < n.caps.Slots {
			return true
		}
	}
	return false
}

// reserveLocked picks a node for waiting job j and holds a slot on it: a
// healthy node that runs the job's type (with a GPU when asked) and has a
// free slot, least loaded first, avoiding the node of the job's last failed
// attempt when another fits. It returns false when no node fits; r.mu must
// be held.
func (r *Registry) reserveLocked(j *jobState, now time.Time) (domain.NodeID, bool) {
	var best domain.NodeID
	var bestScore float64
	for id, n := range r.nodes {
		if !n.usable(j.typ, j.gpu, now, r.silenceMax) || len(n.assigned) >= n.caps.Slots {
			continue
		}
		score := float64(len(n.assigned)) / float64(n.caps.Slots)
		if id == j.lastNode {
			score += 2 // only when nothing else fits
		}
		if best == "" || score < bestScore || (score == bestScore && id < best) {
			best, bestScore = id, score
		}
	}
	if best == "" {
		return "", false
	}
	j.node = best
	r.nodes[best].assigned[j.id] = true
	r.touch(j)
	return best, true
}

// ReserveNew holds a slot for a job not submitted yet, so its submission
// can dispatch it in the same append. It declines (false) when any job
// waits — they go first — or no node fits.
func (r *Registry) ReserveNew(id domain.JobID, sub domain.Submission, now time.Time) (domain.NodeID, bool) {
	r.mu.Lock()
	if _, exists := r.jobs[id]; exists || r.waitingLocked() > 0 {
		r.mu.Unlock()
		return "", false
	}
	r.jobs[id] = &jobState{id: id, typ: sub.Type, gpu: sub.GPU, priority: sub.Priority, submittedAt: now, status: domain.StatusQueued}
	r.mu.Unlock()
	node, ok := r.reserve(id, now)
	if !ok {
		r.DropReservation(id, "")
	}
	return node, ok
}

// DropReservation undoes ReserveNew for a job whose submission did not
// dispatch it: the slot is freed, and the job forgotten unless its
// submission was observed meanwhile.
func (r *Registry) DropReservation(id domain.JobID, node domain.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if node != "" {
		delete(r.node(node).assigned, id)
	}
	j, ok := r.jobs[id]
	if !ok {
		return
	}
	if j.version == 0 {
		delete(r.jobs, id)
		if j.queued {
			r.queue.remove(j)
			j.queued = false
		}
		return
	}
	if j.status == domain.StatusQueued && j.node == node {
		j.node = ""
		r.touch(j)
	}
}

// unreserve gives back a slot reserve took, when the dispatch did not happen.
func (r *Registry) unreserve(job domain.JobID, node domain.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.node(node).assigned, job)
	if j, ok := r.jobs[job]; ok && !j.ended && j.status == domain.StatusQueued && j.node == node {
		j.node = ""
		r.touch(j)
	}
}

// WaitingCount returns how many queued jobs have no node.
func (r *Registry) WaitingCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitingLocked()
}

func (r *Registry) waitingLocked() int { return r.queue.len() }

// overdue returns the jobs DISPATCHED for longer than domain.DispatchTimeout.
func (r *Registry) overdue(now time.Time) []domain.JobID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []domain.JobID
	for _, j := range r.jobs {
		if !j.ended && j.status == domain.StatusDispatched && now.Sub(j.dispatched) >= domain.DispatchTimeout {
			ids = append(ids, j.id)
		}
	}
	return ids
}

// lostJob is a job whose node fell silent.
type lostJob struct {
	job     domain.JobID
	node    domain.NodeID
	retired bool // the node was retired (else it fell silent)
}

// lost returns the jobs DISPATCHED to or RUNNING on nodes not heard from
// for silence. A node never heard from since the registry started counts
// from the start, so a restart does not fail every running job at once.
func (r *Registry) lost(now time.Time, silence time.Duration) []lostJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []lostJob
	for id, n := range r.nodes {
		last := n.lastSeen
		if last.Before(r.started) {
			last = r.started
		}
		if now.Sub(last) < silence && !n.retired {
			continue
		}
		for job := range n.assigned {
			if j, ok := r.jobs[job]; ok && !j.ended && j.node == id && j.status != domain.StatusQueued {
				out = append(out, lostJob{job, id, n.retired})
			}
		}
	}
	return out
}

// JobsOf returns the jobs dispatched to node or running on it.
func (r *Registry) JobsOf(node domain.NodeID) []domain.JobID {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[node]
	if !ok {
		return nil
	}
	var out []domain.JobID
	for job := range n.assigned {
		if j, ok := r.jobs[job]; ok && !j.ended && j.node == node && j.status != domain.StatusQueued {
			out = append(out, job)
		}
	}
	return out
}

// Assigned returns the jobs dispatched to node that it has not started yet.
func (r *Registry) Assigned(node domain.NodeID) []domain.JobID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []domain.JobID
	if n, ok := r.nodes[node]; ok {
		for id := range n.assigned {
			if j, ok := r.jobs[id]; ok && !j.ended && j.status == domain.StatusDispatched && j.node == node {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// JobNode returns the node a job is dispatched to or running on, if any.
func (r *Registry) JobNode(job domain.JobID) domain.NodeID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j, ok := r.jobs[job]; ok && !j.ended && j.status != domain.StatusQueued {
		return j.node
	}
	return ""
}
