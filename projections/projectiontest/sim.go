// Package projectiontest generates realistic event logs for the
// projections' tests and benchmarks: a simulation of users, nodes and jobs
// driven through the domain aggregates, appended to a real event store.
package projectiontest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Config shapes a simulation. Zero fields take the defaults.
type Config struct {
	Users   int           // accounts; default 20
	Nodes   int           // compute nodes; default 3
	Submits int           // jobs submitted per round; default max(1, Users/8)
	Seed    uint64        // random seed; default 1
	Start   time.Time     // simulated time of the first round; default 2026-03-06 00:00 UTC
	Step    time.Duration // simulated time between rounds; default 10 minutes
}

// Append is one append the simulation decided: events for one stream, at
// an exact expected version.
type Append struct {
	Stream   string
	Expected uint64 // the stream's version before the append
	Events   []domain.Event
}

// Sim is a running simulation. Each Round returns the appends of one step
// of simulated time; the appends of a round touch distinct streams and
// depend only on earlier rounds, so they may be appended concurrently.
// Cross-stream effects (a job submission after its hold, a deduction after
// a completion) always land in a later round, as the reactors would do.
type Sim struct {
	cfg   Config
	r     *rand.Rand
	round int
	now   time.Time

	Accounts []*domain.Account            // by user index
	Nodes    []*domain.Node               // by node index
	Jobs     map[domain.JobID]*domain.Job // every job submitted

	active     []domain.JobID      // jobs not yet ended
	submits    []pendingSubmit     // holds made last round: submit now
	settles    []domain.Settlement // job ends of last round: settle now
	refundable []refundable        // charged jobs that may get refunds
	seq        int                 // for unique ids
	events     int                 // events decided so far

	pending map[string]*Append // this round's appends, by stream
	order   []string           // streams in the order first touched
}

type pendingSubmit struct {
	id  domain.JobID
	sub domain.Submission
}

type refundable struct {
	user int
	job  domain.JobID
}

// NewSim returns a simulation with cfg's defaults filled in.
func NewSim(cfg Config) *Sim {
	if cfg.Users <= 0 {
		cfg.Users = 20
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.Submits <= 0 {
		cfg.Submits = max(1, cfg.Users/8)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Step <= 0 {
		cfg.Step = 10 * time.Minute
	}
	s := &Sim{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), Jobs: map[domain.JobID]*domain.Job{}}
	for i := range cfg.Users {
		s.Accounts = append(s.Accounts, domain.NewAccount(UserID(i)))
	}
	for i := range cfg.Nodes {
		s.Nodes = append(s.Nodes, domain.NewNode(domain.NodeID(fmt.Sprintf("n%03d", i))))
	}
	return s
}

// UserID returns the id of user i of a simulation.
func UserID(i int) domain.UserID { return domain.UserID(fmt.Sprintf("u%05d", i)) }

// Events returns how many events the simulation has decided so far.
func (s *Sim) Events() int { return s.events }

// Now returns the simulated time of the last round.
func (s *Sim) Now() time.Time { return s.now }

// Round advances simulated time by one step and returns the appends that
// step decided, in a fixed order.
func (s *Sim) Round() []Append {
	s.now = s.cfg.Start.Add(time.Duration(s.round) * s.cfg.Step)
	s.round++
	s.pending, s.order = map[string]*Append{}, nil
	if s.round == 1 {
		s.enrollNodes()
	}
	s.settle()
	s.submitHeld()
	s.stepJobs()
	s.holdNewJobs()
	s.moveCredits()
	s.changeNodes()
	out := make([]Append, 0, len(s.order))
	for _, stream := range s.order {
		out = append(out, *s.pending[stream])
	}
	return out
}

// at returns a decision time within the current round.
func (s *Sim) at() time.Time {
	return s.now.Add(time.Duration(s.r.Int64N(max(1, int64(s.cfg.Step/2/time.Second)))) * time.Second)
}

// record adds events decided on stream, whose aggregate is now at version.
func (s *Sim) record(stream string, version uint64, events []domain.Event) {
	if len(events) == 0 {
		return
	}
	a := s.pending[stream]
	if a == nil {
		a = &Append{Stream: stream, Expected: version - uint64(len(events))}
		s.pending[stream] = a
		s.order = append(s.order, stream)
	}
	a.Events = append(a.Events, events...)
	s.events += len(events)
}

// decide applies events to agg and records them, or does nothing when the
// decision failed (the simulation tries things that may be refused).
func decide[A interface {
	Apply(domain.Event)
	Version() uint64
}](s *Sim, agg A, stream string, events []domain.Event, err error) bool {
	if err != nil || len(events) == 0 {
		return false
	}
	for _, e := range events {
		agg.Apply(e)
	}
	s.record(stream, agg.Version(), events)
	return true
}

func (s *Sim) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%07d", prefix, s.seq)
}

func (s *Sim) enrollNodes() {
	types := domain.JobTypes()
	for i, n := range s.Nodes {
		caps := domain.Capabilities{JobTypes: types, GPU: true, Slots: 4}
		if i > 0 {
			caps = s.randomCapabilities()
		}
		ev, err := n.Enroll(domain.Enrollment{Name: "node " + string(n.ID()), Capabilities: caps}, s.at())
		decide(s, n, domain.NodeStream(n.ID()), ev, err)
	}
}

func (s *Sim) randomCapabilities() domain.Capabilities {
	types := domain.JobTypes()
	s.r.Shuffle(len(types), func(i, j int) { types[i], types[j] = types[j], types[i] })
	return domain.Capabilities{JobTypes: types[:1+s.r.IntN(len(types))], GPU: s.r.IntN(2) == 0, Slots: 1 + s.r.IntN(8)}
}

// sortedJobs returns ids in a fixed order.
func sortedJobs(ids []domain.JobID) []domain.JobID {
	return slices.Sorted(slices.Values(ids))
}
