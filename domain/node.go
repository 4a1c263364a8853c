package domain

import (
	"fmt"
	"slices"
	"time"
)

// Limits on nodes.
const (
	// SlotsMax bounds how many jobs one node runs at once.
	SlotsMax = 256
	// NodeHealthyWithin is how recently a node must have sent a heartbeat to
	// count as healthy. Heartbeats are operational state, not events.
	NodeHealthyWithin = 30 * time.Second
)

// Healthy reports whether a node last heard from at lastSeen is healthy at
// now. A zero lastSeen is never healthy.
func Healthy(lastSeen, now time.Time) bool {
	return !lastSeen.IsZero() && now.Sub(lastSeen) <= NodeHealthyWithin
}

// Capabilities are what a node can run: job types, a GPU, and parallel slots.
type Capabilities struct {
	JobTypes []JobType
	GPU      bool
	Slots    int
}

// normalize validates c and returns it with job types deduplicated and in
// JobTypes() order. It returns ErrInvalidNode for no job types or slots
// outside 1..SlotsMax, and ErrUnknownJobType.
func (c Capabilities) normalize() (Capabilities, error) {
	if c.Slots < 1 || c.Slots > SlotsMax {
		return c, fmt.Errorf("%w: %d slots, want 1..%d", ErrInvalidNode, c.Slots, SlotsMax)
	}
	if len(c.JobTypes) == 0 {
		return c, fmt.Errorf("%w: no job types", ErrInvalidNode)
	}
	for _, t := range c.JobTypes {
		if !t.Valid() {
			return c, fmt.Errorf("node job type %q: %w", truncate(string(t), 40), ErrUnknownJobType)
		}
	}
	var types []JobType
	for _, t := range jobTypes {
		if slices.Contains(c.JobTypes, t) {
			types = append(types, t)
		}
	}
	c.JobTypes = types
	return c, nil
}

// Enrollment is what a node declares when it joins.
type Enrollment struct {
	Name string // display name, 1..128 bytes after trimming
	Capabilities
}

// Node is the aggregate of one compute node, folded from the node-{id}
// stream: enrolled, capabilities changed any number of times, retired once.
type Node struct {
	id         NodeID
	version    uint64
	name       string
	jobTypes   []JobType
	gpu        bool
	slots      int
	retired    bool
	enrolledAt time.Time
	retiredAt  time.Time
	updatedAt  time.Time
}

// NewNode returns the not-yet-enrolled node id, at version 0.
func NewNode(id NodeID) *Node { return &Node{id: id} }

// Snapshot returns a copy of n that shares nothing with it, for caching.
func (n *Node) Snapshot() *Node {
	c := *n
	c.jobTypes = slices.Clone(n.jobTypes)
	return &c
}

// ID returns the node's id.
func (n *Node) ID() NodeID { return n.id }

// Version returns the number of events applied (0 for a new stream), which is
// the stream's version: append what the node decides next with
// expected version Exact(Version()).
func (n *Node) Version() uint64 { return n.version }

// Enrolled reports whether the node was enrolled.
func (n *Node) Enrolled() bool { return n.version > 0 }

// Name returns the node's display name.
func (n *Node) Name() string { return n.name }

// JobTypes returns a copy of the job types the node serves, in JobTypes()
// order.
func (n *Node) JobTypes() []JobType { return slices.Clone(n.jobTypes) }

// GPU reports whether the node has a GPU.
func (n *Node) GPU() bool { return n.gpu }

// Slots returns how many jobs the node runs at once.
func (n *Node) Slots() int { return n.slots }

// Retired reports whether the node was retired.
func (n *Node) Retired() bool { return n.retired }

// EnrolledAt returns when the node was enrolled.
func (n *Node) EnrolledAt() time.Time { return n.enrolledAt }

// RetiredAt returns when the node was retired; zero if it is not.
func (n *Node) RetiredAt() time.Time { return n.retiredAt }

// UpdatedAt returns the time of the node's last event.
func (n *Node) UpdatedAt() time.Time { return n.updatedAt }

// Serves reports whether the node serves job type t.
func (n *Node) Serves(t JobType) bool { return slices.Contains(n.jobTypes, t) }

// CanRun reports whether the node may be given a job of type t: enrolled,
// not retired, serving t, and with a GPU if gpu is set. Health and free slots
// are the dispatcher's to check.
func (n *Node) CanRun(t JobType, gpu bool) bool {
	return n.Enrolled() && !n.retired && n.Serves(t) && (n.gpu || !gpu)
}
