// Package commands is RenderTrust's write side: one handler per command. A
// handler loads an aggregate from its stream, lets the domain decide, and
// appends the decided events with the aggregate's version as the expected
// version, deciding again after a lost race. Reactors follow the log to do
// every cross-stream effect (a completed job deducts its hold), and record
// the event that caused each effect as its causation id.
//
// Idempotency is part of the command: the Actor carries the request's
// idempotency key, and a command that creates something (a job, a grant, a
// refund) derives its id from it, so a retried request creates it once.
// Package idempotency keeps the first answer given to each key, for the API
// to replay.
//
// The dispatcher (package dispatch) decides which node runs a job. The
// wiring makes it and hands it over in Config, with the store it watches
// (dispatch.Dispatcher.Watch), so the dispatcher observes every job and node
// event appended here before the command answers; the service consults its
// registry, asks it for a dispatch pass where a command may have freed a
// slot or queued a job (a command's answer includes the dispatches it made
// possible), and carries out its dispatches (dispatch.Writer). Users, tokens
// and node credentials are mutable tables, not decisions: they live in
// package identity.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Service runs commands against the event log.
type Service struct {
	store  eventstore.Store
	db     *sqldb.DB
	prices domain.PriceTable
	now    func() time.Time
	log    *slog.Logger
	// dispatcher decides which node runs which job; registry is its view.
	dispatcher *dispatch.Dispatcher
	registry   *dispatch.Registry

	accounts *repo[*domain.Account]
	jobs     *repo[*domain.Job]
	nodes    *repo[*domain.Node]
}

// Config configures a Service. Store, DB and Dispatcher are required.
type Config struct {
	// Store is the event log as Dispatcher watches it (Dispatcher.Watch):
	// the dispatcher must observe what the commands append.
	Store      eventstore.Store
	DB         *sqldb.DB            // idempotency keys, reactor checkpoints (and identity's tables)
	Dispatcher *dispatch.Dispatcher // decides which node runs which job
	Prices     domain.PriceTable    // zero value: the default prices
	Now        func() time.Time     // nil: time.Now
	Log        *slog.Logger         // nil: slog.Default()
}

// New returns a Service, creating its tables if needed.
func New(ctx context.Context, c Config) (*Service, error) {
	if c.Dispatcher == nil {
		return nil, errors.New("commands: Config.Dispatcher is required")
	}
	if err := Migrate(ctx, c.DB); err != nil {
		return nil, err
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		store: c.Store, db: c.DB, prices: c.Prices, now: now, log: log,
		dispatcher: c.Dispatcher, registry: c.Dispatcher.Registry(),
	}
	s.accounts = newRepo(c.Store, func(id string) *domain.Account { return domain.NewAccount(domain.UserID(id)) }, (*domain.Account).Snapshot)
	s.jobs = newRepo(c.Store, func(id string) *domain.Job { return domain.NewJob(domain.JobID(id)) }, (*domain.Job).Snapshot)
	s.nodes = newRepo(c.Store, func(id string) *domain.Node { return domain.NewNode(domain.NodeID(id)) }, (*domain.Node).Snapshot)
	return s, nil
}

// Registry returns the view of nodes and waiting jobs of the dispatcher
// the service consults.
func (s *Service) Registry() *dispatch.Registry { return s.registry }

// Prices returns the price table jobs are charged by.
func (s *Service) Prices() domain.PriceTable { return s.prices }

// Account returns the user's account as of the latest event.
func (s *Service) Account(ctx context.Context, user domain.UserID) (*domain.Account, error) {
	return s.accounts.load(ctx, domain.AccountStream(user), string(user))
}

// Job returns the job as of the latest event; a job never submitted has
// Exists() false.
func (s *Service) Job(ctx context.Context, id domain.JobID) (*domain.Job, error) {
	if !domain.ValidID(string(id)) {
		return nil, fmt.Errorf("%w: job id", domain.ErrInvalidID)
	}
	return s.jobs.load(ctx, domain.JobStream(id), string(id))
}

// Node returns the node as of the latest event.
func (s *Service) Node(ctx context.Context, id domain.NodeID) (*domain.Node, error) {
	if !domain.ValidID(string(id)) {
		return nil, fmt.Errorf("%w: node id", domain.ErrInvalidID)
	}
	return s.nodes.load(ctx, domain.NodeStream(id), string(id))
}

// Actor identifies who issues a command, for event metadata, and carries the
// request's idempotency key: commands that create something (SubmitJob,
// Grant, Refund) derive its id from the key, so a retried request creates it
// once.
type Actor struct {
	ID             string // "user:{id}", "node:{id}", "admin:{id}", "system:{reactor}"
	CorrelationID  string // the request id
	CausationID    string // the id of the event that caused a reactor's effect
	IdempotencyKey string
}

func (a Actor) cause(key string) cause {
	return cause{actor: a.ID, correlation: a.CorrelationID, causation: a.CausationID, idemKey: a.IdempotencyKey, key: key}
}

// DeriveID returns an id derived from a command's scope and idempotency key,
// so a retried command creates the same job (and its events the same ids).
func DeriveID(kind, scope, key string) string { return eventstore.DeriveEventID(kind, scope, key) }

// newID returns the id of what a command creates: derived from the actor's
// idempotency key, so a retried request creates the same thing (never a
// second one), or a fresh UUIDv7 when there is no key.
func (a Actor) newID(kind, scope string) string {
	if a.IdempotencyKey == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return DeriveID(kind, scope, a.IdempotencyKey)
}
