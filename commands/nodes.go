package commands

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
)

// EnrollNode records a node joining with its capabilities. It returns
// domain.ErrNodeExists, domain.ErrInvalidNode and domain.ErrUnknownJobType.
func (s *Service) EnrollNode(ctx context.Context, a Actor, id domain.NodeID, e domain.Enrollment) (uint64, error) {
	return s.nodeCommand(ctx, a, id, func(n *domain.Node) ([]domain.Event, error) { return n.Enroll(e, s.now()) })
}

// RetireNode stops a node for good: it takes no more jobs, and the jobs it
// holds fail their attempt so they are retried elsewhere (uncharged).
// identity.Service.RetireNode revokes the node's credentials first and then
// calls it. It returns domain.ErrNodeNotFound, domain.ErrNodeRetired and
// domain.ErrInvalidReason.
func (s *Service) RetireNode(ctx context.Context, a Actor, id domain.NodeID, reason string) (uint64, error) {
	n, err := s.Node(ctx, id)
	if err != nil {
		return 0, err
	}
	if !n.Enrolled() {
		return 0, fmt.Errorf("%w: %s", domain.ErrNodeNotFound, id)
	}
	pos, err := s.nodeCommand(ctx, a, id, func(n *domain.Node) ([]domain.Event, error) { return n.Retire(reason, s.now()) })
	if err != nil {
		return 0, err
	}
	for _, job := range s.registry.JobsOf(id) {
		p, err := s.FailJob(ctx, a, id, job, "node "+string(id)+" retired")
		if err != nil && !isDecisionError(err) {
			return pos, fmt.Errorf("fail job %s of the retired node: %w", job, err)
		}
		pos = max(pos, p)
	}
	return pos, nil
}

// Heartbeat records that an enrolled node is alive (operational state, not an
// event) and dispatches waiting jobs it may take. It returns
// domain.ErrNodeNotFound for a node never enrolled.
func (s *Service) Heartbeat(ctx context.Context, id domain.NodeID) error {
	n, err := s.Node(ctx, id)
	if err != nil {
		return err
	}
	if !n.Enrolled() {
		return fmt.Errorf("%w: %s", domain.ErrNodeNotFound, id)
	}
	if n.Retired() {
		return fmt.Errorf("%w: %s", domain.ErrNodeRetired, id)
	}
	s.registry.Heartbeat(id, s.now())
	_, err = s.DispatchWaiting(ctx)
	return err
}

func (s *Service) nodeCommand(ctx context.Context, a Actor, id domain.NodeID, decide decision[*domain.Node]) (uint64, error) {
	if !domain.ValidID(string(id)) {
		return 0, fmt.Errorf("%w: node id", domain.ErrInvalidID)
	}
	res, err := s.nodes.update(ctx, domain.NodeStream(id), string(id), a.cause(""), decide)
	return res.LastPosition, err
}
