package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	rthttp "github.com/rendertrust/rendertrust/http"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
)

// How each worker role runs on PostgreSQL, where several processes may be
// given it: only while this process leads it (cluster.Elector.Lead), and
// how a deposed leader is kept from committing an effect:
//
//   - projections: the runner's batches run the term's fence
//     (cluster.Term.Fence) in their transaction, so a deposed leader
//     commits no row and no checkpoint.
//   - reactor: settlements are decided on the account's latest version and
//     written with ids derived from the job, so a deposed settler's repeat
//     is refused by the account (the hold is closed) or is a duplicate of
//     the same ids (commands.NewSettler); its checkpoint is saved behind the
//     fence.
//   - dispatcher: only the leader reserves slots (dispatch.Dispatcher
//     .SetLeading); it starts only once its registry has read the log up to
//     the head it found on winning. Each pass runs inside a transaction
//     holding the term's fence (fenceDispatches): a deposed leader's pass is
//     refused, and the successor's epoch bump — which comes before it reads
//     that head — waits for a pass that passed the fence to commit. A
//     submission does not reserve a slot for itself in the same append
//     while a fence is set (dispatch.Dispatcher.ReserveNew): that append is
//     not fenced, so the job is submitted QUEUED and the pass the
//     submission runs at once assigns it behind the fence.
//   - anchor: the contract accepts only strictly larger tree sizes, and the
//     anchor's record has an id derived from the anchor (anchor.RecordID), so a
//     deposed anchor worker's repeat is refused on chain or is a duplicate
//     in the log (anchor/ethchain TestTwoWorkersAnchorOnce).

// roleState is what /readyz reports: the roles this process runs and,
// among the worker roles, the ones it leads now.
type roleState struct {
	roles cluster.Roles
	mu    sync.Mutex
	led   map[cluster.Role]bool
}

func newRoleState(roles cluster.Roles) *roleState {
	return &roleState{roles: roles, led: map[cluster.Role]bool{}}
}

func (s *roleState) set(r cluster.Role, leading bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.led[r] = leading
}

// leads reports whether this process leads r now.
func (s *roleState) leads(r cluster.Role) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led[r]
}

// leading returns the worker roles led now, in cluster.AllRoles' order.
func (s *roleState) leading() cluster.Roles {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out cluster.Roles
	for _, r := range s.roles.Leaders() {
		if s.led[r] {
			out = append(out, r)
		}
	}
	return out
}

// Report is the roles part of /readyz.
func (s *roleState) Report() string {
	return fmt.Sprintf("roles: %s\nleading: %s", s.roles, s.leading())
}

// roles returns the roles this process runs: --roles (all when empty),
// less the roles that --no-projections, --no-reactor and --no-anchor give
// away. Fewer than all roles need PostgreSQL (cluster.ErrRolesNeedPostgres).
func (c *Config) roles() (cluster.Roles, error) {
	roles := cluster.AllRoles
	if c.Roles != "" && c.Roles != "all" {
		var err error
		if roles, err = cluster.ParseRoles(c.Roles); err != nil {
			return nil, err
		}
	}
	if !roles.All() && c.DatabaseURL == "" {
		return nil, cluster.ErrRolesNeedPostgres
	}
	return roles, nil
}

// clustered reports whether the worker roles are elected: on PostgreSQL,
// where other processes may run them too.
func (c *Config) clustered() bool { return c.DatabaseURL != "" }

// without returns roles less the worker roles the --no-* flags give away.
func (c *Config) without(roles cluster.Roles) cluster.Roles {
	return slices.DeleteFunc(slices.Clone(roles), func(r cluster.Role) bool {
		return (r == cluster.RoleProjections && c.NoProjections) || (r == cluster.RoleAnchor && c.NoAnchor) ||
			((r == cluster.RoleReactor || r == cluster.RoleDispatcher) && c.NoReactor)
	})
}

// startCluster starts the workers of a process on PostgreSQL: the shared
// heartbeats, the follower that feeds the dispatcher's registry from the
// log (its dispatches alone in a process without the dispatcher role), the watcher of other processes' projections, and a campaign for
// each worker role this process runs.
func (m *Main) startCluster(ctx context.Context) error {
	hb, err := cluster.NewHeartbeats(ctx, m.DB, m.Dispatcher.Registry().Heard, m.Logger)
	if err != nil {
		return err
	}
	m.heartbeats = hb
	if m.writeMarks, err = cluster.NewWriteMarks(ctx, m.DB); err != nil {
		return err
	}
	m.goWorker(func() error { return hb.Run(ctx) })
	if !m.roles.roles.Has(cluster.RoleDispatcher) {
		m.Dispatcher.FollowAssignmentsOnly() // it never reserves: the log's dispatches are all it needs
	}
	m.Follower = commands.NewFollower(m.Commands)
	m.goWorker(func() error { return m.Follower.Run(ctx) })
	if m.Watcher, err = projections.NewWatcher(m.DB, nil, m.Logger); err != nil {
		return err
	}
	if err := m.Watcher.Start(ctx); err != nil {
		return err
	}
	host, _ := os.Hostname()
	m.elector = cluster.NewElector(cluster.Config{DSN: m.Config.DatabaseURL, Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), Logger: m.Logger})
	for _, r := range m.roles.roles.Leaders() {
		if r == cluster.RoleAnchor {
			continue // startAnchoring campaigns once the chain is open
		}
		m.lead(ctx, r, m.workOf(r))
	}
	return nil
}

// lead campaigns for role in the background, running work while this
// process leads it. The work says when it acts for the role (m.roles.set),
// for /readyz; the role is reported as not led once the work returns.
func (m *Main) lead(ctx context.Context, role cluster.Role, work func(context.Context, *cluster.Term) error) {
	m.goWorker(func() error {
		m.elector.Lead(ctx, role, func(ctx context.Context, t *cluster.Term) error {
			defer m.roles.set(role, false)
			return work(ctx, t)
		})
		return nil
	})
}

func (m *Main) workOf(r cluster.Role) func(context.Context, *cluster.Term) error {
	switch r {
	case cluster.RoleProjections:
		return m.leadProjections
	case cluster.RoleReactor:
		return m.leadReactor
	case cluster.RoleDispatcher:
		return m.leadDispatcher
	}
	panic("server: no work for role " + string(r))
}

// leadProjections runs the projections under t's fence until ctx ends.
func (m *Main) leadProjections(ctx context.Context, t *cluster.Term) error {
	m.projectionsTerm.Store(t)
	if err := m.Runner.Start(ctx); err != nil {
		return err
	}
	m.roles.set(cluster.RoleProjections, true)
	<-ctx.Done()
	m.roles.set(cluster.RoleProjections, false) // first: API waits turn to the Watcher
	return m.Runner.Stop()
}

// fenceProjections is the runner's fence: the current projections term's.
func (m *Main) fenceProjections(ctx context.Context, tx *sqldb.Tx) error {
	t := m.projectionsTerm.Load()
	if t == nil {
		return cluster.ErrDeposed
	}
	return t.Fence(ctx, tx.Tx)
}

// leadReactor settles under t's fence until ctx ends.
func (m *Main) leadReactor(ctx context.Context, t *cluster.Term) error {
	fence := func(ctx context.Context, tx *sqldb.Tx) error { return t.Fence(ctx, tx.Tx) }
	m.roles.set(cluster.RoleReactor, true)
	return commands.NewSettler(m.Commands, 0, fence).Run(ctx)
}

// leadDispatcher assigns slots until ctx ends, once this process's
// registry has read the log up to the head found on winning: what the
// previous leader dispatched is then known, and no slot is given twice.
func (m *Main) leadDispatcher(ctx context.Context, t *cluster.Term) error {
	head, err := m.Store.Head(ctx)
	if err != nil {
		return err
	}
	if err := m.Follower.WaitFor(ctx, head); err != nil {
		return err
	}
	m.Dispatcher.SetFence(m.fenceDispatches(t))
	defer m.Dispatcher.SetFence(nil)
	m.Dispatcher.SetLeading(true)
	defer m.Dispatcher.SetLeading(false)
	m.roles.set(cluster.RoleDispatcher, true)
	if _, err := m.Commands.DispatchWaiting(ctx); err != nil && ctx.Err() == nil {
		m.Logger.Warn("dispatch on taking the dispatcher role", "err", err) // the follower's next sweep tries again
	}
	<-ctx.Done()
	return nil
}

// fenceDispatches runs each dispatch pass inside a transaction that holds
// t's epoch row (cluster.Term.Fence): a pass of a deposed term is refused,
// and a successor cannot bump the epoch — so cannot read the head it
// catches up to — before a pass that passed the fence has committed its
// dispatches.
func (m *Main) fenceDispatches(t *cluster.Term) dispatch.Fence {
	return func(ctx context.Context, effect func() error) error {
		return m.DB.InTx(ctx, func(tx *sqldb.Tx) error {
			if err := t.Fence(ctx, tx.Tx); err != nil {
				return err
			}
			return effect()
		})
	}
}

// projected is what the API waits on for read-your-writes: the runner in
// this process (SQLite), or on PostgreSQL the runner while this process
// leads the projections and otherwise the checkpoints whichever process
// leads them commits.
func (m *Main) projected() interface {
	WaitFor(context.Context, uint64) error
} {
	if m.Watcher == nil {
		return m.Runner
	}
	return projectedWaiter{m}
}

// projectedWaiter waits on the runner while this process leads the
// projections (no round trip through NOTIFY), on the Watcher otherwise.
type projectedWaiter struct{ m *Main }

// WaitFor is projections.Runner.WaitFor or projections.Watcher.WaitFor.
func (w projectedWaiter) WaitFor(ctx context.Context, position uint64) error {
	if w.m.roles.leads(cluster.RoleProjections) {
		return w.m.Runner.WaitFor(ctx, position)
	}
	return w.m.Watcher.WaitFor(ctx, position)
}

// jobService is the write side as the API calls it; on PostgreSQL a node's
// heartbeat is also shared with the other processes.
func (m *Main) jobService() rthttp.JobService {
	if m.heartbeats == nil {
		return m.Commands
	}
	return sharedHeartbeats{Service: m.Commands, heartbeats: m.heartbeats}
}

// sharedHeartbeats is the write side with heartbeats shared through
// cluster.Heartbeats.
type sharedHeartbeats struct {
	*commands.Service
	heartbeats *cluster.Heartbeats
}

// Heartbeat records the heartbeat here and for the other processes.
func (s sharedHeartbeats) Heartbeat(ctx context.Context, id domain.NodeID) error {
	if err := s.Service.Heartbeat(ctx, id); err != nil {
		return err
	}
	s.heartbeats.Record(id, time.Now())
	return nil
}
