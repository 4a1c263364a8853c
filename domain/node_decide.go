package domain

import (
	"fmt"
	"slices"
	"time"
)

// Enroll registers the node and returns one NodeEnrolled. Job types are
// deduplicated and ordered as JobTypes(). It returns ErrNodeExists if the
// node was enrolled before, ErrInvalidID for a bad node id, ErrInvalidNode for
// an empty name, no job types or slots outside 1..SlotsMax, and
// ErrUnknownJobType.
func (n *Node) Enroll(e Enrollment, now time.Time) ([]Event, error) {
	if n.Enrolled() {
		return nil, fmt.Errorf("%w: %s", ErrNodeExists, n.id)
	}
	if err := checkID("node id", string(n.id)); err != nil {
		return nil, err
	}
	name := cleanText(e.Name, nameBytesMax)
	if name == "" {
		return nil, fmt.Errorf("%w: name is required", ErrInvalidNode)
	}
	c, err := e.Capabilities.normalize()
	if err != nil {
		return nil, err
	}
	return []Event{NodeEnrolled{
		NodeID: n.id, Name: name, JobTypes: c.JobTypes, GPU: c.GPU, Slots: c.Slots, At: stamp(now),
	}}, nil
}

// ChangeCapabilities sets the node's job types, GPU flag and slots and
// returns one NodeCapabilitiesChanged, or no events if nothing changes. It
// returns ErrNodeNotFound, ErrNodeRetired, and the validation errors of
// Enroll. Jobs already dispatched to the node are not affected.
func (n *Node) ChangeCapabilities(c Capabilities, now time.Time) ([]Event, error) {
	if err := n.expectActive(); err != nil {
		return nil, err
	}
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	if slices.Equal(c.JobTypes, n.jobTypes) && c.GPU == n.gpu && c.Slots == n.slots {
		return nil, nil
	}
	return []Event{NodeCapabilitiesChanged{
		NodeID: n.id, JobTypes: c.JobTypes, GPU: c.GPU, Slots: c.Slots, At: stamp(now),
	}}, nil
}

// Retire takes the node out of service for good and returns one NodeRetired.
// It returns ErrNodeNotFound, ErrNodeRetired if it was retired before, and
// ErrInvalidReason for an empty reason.
func (n *Node) Retire(reason string, now time.Time) ([]Event, error) {
	if err := n.expectActive(); err != nil {
		return nil, err
	}
	clean, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	return []Event{NodeRetired{NodeID: n.id, Reason: clean, At: stamp(now)}}, nil
}

// expectActive returns ErrNodeNotFound or ErrNodeRetired unless the node is
// enrolled and not retired.
func (n *Node) expectActive() error {
	switch {
	case !n.Enrolled():
		return fmt.Errorf("%w: %s", ErrNodeNotFound, truncate(string(n.id), 40))
	case n.retired:
		return fmt.Errorf("%w: %s", ErrNodeRetired, n.id)
	}
	return nil
}

// Apply folds one event into the node and increments its version. It is pure
// and never fails. It panics on an event that is not a node event.
func (n *Node) Apply(e Event) {
	switch e := e.(type) {
	case NodeEnrolled:
		n.id, n.name, n.enrolledAt, n.updatedAt = e.NodeID, e.Name, e.At, e.At
		n.jobTypes, n.gpu, n.slots = slices.Clone(e.JobTypes), e.GPU, e.Slots
	case NodeCapabilitiesChanged:
		n.jobTypes, n.gpu, n.slots, n.updatedAt = slices.Clone(e.JobTypes), e.GPU, e.Slots, e.At
	case NodeRetired:
		n.retired, n.retiredAt, n.updatedAt = true, e.At, e.At
	default:
		unknownEvent("node", e)
	}
	n.version++
}
