// Package identity keeps RenderTrust's mutable identity tables: users and
// their passwords (login), refresh tokens, and node enrollment tokens and
// credentials. These are not event-sourced decisions: personal data lives
// here, never in the log, so a person can be erased without breaking it,
// and secrets are stored only as hashes.
//
// Where identity meets the log — a node enrolling with a token, a node
// retired — it calls the write side through Nodes, which *commands.Service
// implements. The tables live in the write side's state database
// (commands.Migrate creates them).
package identity

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Nodes is the write side's node lifecycle, as identity uses it.
type Nodes interface {
	Node(ctx context.Context, id domain.NodeID) (*domain.Node, error)
	EnrollNode(ctx context.Context, a commands.Actor, id domain.NodeID, e domain.Enrollment) (uint64, error)
	RetireNode(ctx context.Context, a commands.Actor, id domain.NodeID, reason string) (uint64, error)
}

var _ Nodes = (*commands.Service)(nil)

// Service manages users, tokens and node credentials.
type Service struct {
	db    *sqldb.DB
	nodes Nodes
	now   func() time.Time

	passwordCost  int
	loginAttempts atomic.Uint64 // since start: every loginPruneEvery-th prunes the counters
	dummyOnce     sync.Once
	dummy         []byte // see dummyHash
}

// Config configures a Service. DB and Nodes are required.
type Config struct {
	DB    *sqldb.DB // the write side's state database
	Nodes Nodes
	Now   func() time.Time // nil: time.Now
	// PasswordCost is the bcrypt cost; 0 means bcrypt.DefaultCost. Tests
	// lower it.
	PasswordCost int
}

// New returns a Service, creating its tables if needed.
func New(ctx context.Context, c Config) (*Service, error) {
	if err := commands.Migrate(ctx, c.DB); err != nil {
		return nil, err
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &Service{db: c.DB, nodes: c.Nodes, now: now, passwordCost: c.PasswordCost}, nil
}

// RetireNode revokes the node's credentials, then retires it on the write
// side (its jobs fail their attempt and are retried elsewhere). The
// credential goes first, so a retry after a failure finds it gone. It
// returns domain.ErrNodeNotFound and the errors of commands'
// RetireNode (domain.ErrNodeRetired, domain.ErrInvalidReason).
func (s *Service) RetireNode(ctx context.Context, a commands.Actor, id domain.NodeID, reason string) (uint64, error) {
	n, err := s.nodes.Node(ctx, id)
	if err != nil {
		return 0, err
	}
	if !n.Enrolled() {
		return 0, fmt.Errorf("%w: %s", domain.ErrNodeNotFound, id)
	}
	if err := s.revokeNodeCredentials(ctx, id); err != nil {
		return 0, err
	}
	return s.nodes.RetireNode(ctx, a, id, reason)
}
