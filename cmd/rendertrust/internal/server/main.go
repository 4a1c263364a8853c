// Package server is the wiring of the rendertrust binary: Main owns the
// configuration (Config: flags and their environment variables), the stores,
// the write side, the dispatcher, identity, the projections, the reactor, the
// anchoring and the HTTP server; Run starts them and Close stops them in
// reverse order. The operator tools open the stores through it
// (WithStores); nothing below cmd reads the environment.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rendertrust/rendertrust/blobstore"
	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/esdb"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/frontend"
	rthttp "github.com/rendertrust/rendertrust/http"
	"github.com/rendertrust/rendertrust/idempotency"
	"github.com/rendertrust/rendertrust/identity"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/payments"
	"github.com/rendertrust/rendertrust/projections"
)

// Main owns the server's configuration, stores, workers and listener. Run
// starts everything; Close stops it in reverse order.
type Main struct {
	Config Config
	Logger *slog.Logger

	Store      eventstore.Store
	DB         *sqldb.DB
	Dispatcher *dispatch.Dispatcher
	Commands   *commands.Service
	Identity   *identity.Service
	Runner     *projections.Runner
	Reader     *projections.Reader
	Reactor    *commands.Reactor // settles and dispatches; nil on PostgreSQL (see Follower)
	// Follower feeds the dispatcher's registry from the log on PostgreSQL,
	// where the settling runs in the reactor role's leader; nil on SQLite.
	Follower *commands.Reactor
	// Watcher follows the projections' checkpoints on PostgreSQL, whichever
	// process runs them (read-your-writes); nil on SQLite.
	Watcher *projections.Watcher
	HTTP    *rthttp.Server
	Anchor  *anchoring // nil without a chain

	listener net.Listener
	metrics  *http.Server // on Config.MetricsAddr; nil when /metrics is on the API
	metricsL net.Listener
	local    *localNode // the --dev local node; nil without one
	roles    *roleState
	elector  *cluster.Elector // on PostgreSQL
	// heartbeats shares node heartbeats with the other processes (PostgreSQL).
	heartbeats *cluster.Heartbeats
	// writeMarks shares read-your-writes marks with the other API
	// processes (PostgreSQL).
	writeMarks      *cluster.WriteMarks
	projectionsTerm atomic.Pointer[cluster.Term]
	cancel          context.CancelFunc
	workers         sync.WaitGroup
}

// NewMain returns a Main with defaults; the caller sets Config.
func NewMain() *Main {
	return &Main{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
}

// Open opens the event store, the state database, the command service and
// identity.
// Commands that only need the stores (admin, projections) stop here.
func (m *Main) Open(ctx context.Context) error {
	m.Logger = NewLogger(m.Config.LogLevel)
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if m.Store, m.DB, err = m.OpenStores(ctx); err != nil {
		return err
	}
	// The dispatcher watches the write side's appends: it sees each
	// command's effect before the command answers.
	m.Dispatcher = dispatch.New(time.Now, m.Config.NodeLostAfter, m.Logger)
	if m.Config.clustered() {
		m.Dispatcher.SetLeading(false) // until this process wins the dispatcher role
	}
	m.Commands, err = commands.New(ctx, commands.Config{Store: m.Dispatcher.Watch(m.Store), DB: m.DB, Dispatcher: m.Dispatcher, Log: m.Logger})
	if err != nil {
		return err
	}
	if m.Identity, err = identity.New(ctx, identity.Config{DB: m.DB, Nodes: m.Commands}); err != nil {
		return err
	}
	// After the first writes: the SQLite driver creates its files (and
	// their -wal and -shm) lazily, with the umask's modes.
	return ownerOnly(m.Config.DataDir)
}

// OpenStores opens the event store (SQLite in the data dir, PostgreSQL or
// EventStoreDB by URL) and the state database, as configured.
func (m *Main) OpenStores(ctx context.Context) (eventstore.Store, *sqldb.DB, error) {
	if m.Config.EventStoreURL != "" {
		return m.openEventStoreDB(ctx)
	}
	if u := m.Config.DatabaseURL; u != "" {
		store, err := postgres.Open(ctx, u)
		if err != nil {
			return nil, nil, err
		}
		db, err := sqldb.OpenPostgres(ctx, u)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		return store, db, nil
	}
	store, err := sqlite.Open(ctx, m.Config.DataPath("events.db"))
	if err != nil {
		return nil, nil, err
	}
	db, err := sqldb.OpenSQLite(m.Config.DataPath("state.db"))
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, db, nil
}

// openEventStoreDB keeps the events in EventStoreDB and everything else in
// PostgreSQL.
func (m *Main) openEventStoreDB(ctx context.Context) (eventstore.Store, *sqldb.DB, error) {
	if m.Config.DatabaseURL == "" {
		return nil, nil, errors.New("EVENTSTORE_URL needs DATABASE_URL: read models, identity and the audit log live in PostgreSQL")
	}
	store, err := esdb.Open(ctx, m.Config.EventStoreURL)
	if err != nil {
		return nil, nil, err
	}
	db, err := sqldb.OpenPostgres(ctx, m.Config.DatabaseURL)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, db, nil
}

// ownerOnly makes dir and the files directly in it readable by their owner
// alone: they hold the ledger, password hashes and signing keys, and
// MkdirAll and the database drivers leave an existing directory's mode and
// the umask's file modes alone.
func ownerOnly(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict data dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("restrict data dir: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), info.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("restrict %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// Run opens everything and starts serving; it returns once the server is
// listening (Addr says where). Workers run until Close.
func (m *Main) Run(ctx context.Context) error {
	if m.Config.Pprof && m.Config.MetricsAddr == "" {
		return ErrPprofWithoutMetricsAddr
	}
	roles, err := m.Config.roles()
	if err != nil {
		return err
	}
	m.roles = newRoleState(m.Config.without(roles))
	if err := m.Open(ctx); err != nil {
		return err
	}
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Before any worker starts: a process refused for its keys or result
	// store must not lead a role meanwhile.
	api, err := m.openAPIKeys(ctx)
	if err != nil {
		return err
	}
	if err := m.startWorkers(ctx, reg); err != nil {
		return err
	}
	srv, err := m.newHTTP(api, reg)
	if err != nil {
		return err
	}
	m.HTTP = srv
	if m.listener, err = net.Listen("tcp", m.Config.Addr); err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.goWorker(func() error { return m.HTTP.Serve(m.listener) })
	if err := m.serveMetrics(); err != nil {
		return err
	}
	if m.Config.Dev && !m.Config.NoLocalNode {
		if err := m.startLocalNode(ctx); err != nil {
			return err
		}
	}
	m.Logger.Info("serving", "addr", m.Addr(), "dev", m.Config.Dev, "data_dir", m.Config.DataDir, "postgres", m.Config.DatabaseURL != "", "roles", roles)
	return nil
}

// metricsReadHeaderTimeout bounds the request head of a /metrics scrape.
const metricsReadHeaderTimeout = 10 * time.Second

// Sampling rates of the mutex and block profiles under --pprof: one
// contention event in profileMutexFraction, one blocking event per
// profileBlockRate nanoseconds blocked. Coarse enough to cost little under
// load, fine enough to rank the locks.
const (
	profileMutexFraction = 100
	profileBlockRate     = 10_000
)

// ErrPprofWithoutMetricsAddr: the profiles are never served on the public
// API address.
var ErrPprofWithoutMetricsAddr = errors.New("--pprof needs --metrics-addr: the profiles are never served on the API's address")

// serveMetrics serves /metrics (and, with --pprof, /debug/pprof/) on
// Config.MetricsAddr when it is set.
func (m *Main) serveMetrics() error {
	if m.Config.MetricsAddr == "" {
		return nil
	}
	l, err := net.Listen("tcp", m.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.HTTP.MetricsHandler())
	if m.Config.Pprof {
		servePprof(mux)
	}
	m.metricsL, m.metrics = l, &http.Server{Handler: mux, ReadHeaderTimeout: metricsReadHeaderTimeout}
	m.goWorker(func() error {
		if err := m.metrics.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// servePprof adds Go's profiles to mux and turns on the mutex and block
// profiles, which are off by default.
func servePprof(mux *http.ServeMux) {
	runtime.SetMutexProfileFraction(profileMutexFraction)
	runtime.SetBlockProfileRate(profileBlockRate)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// MetricsAddr is the address /metrics is served on when Config.MetricsAddr
// is set, "" otherwise.
func (m *Main) MetricsAddr() string {
	if m.metricsL == nil {
		return ""
	}
	return m.metricsL.Addr().String()
}

// startWorkers starts the projections runner, the reactor and the
// anchoring: in this process (SQLite), or each while this process leads
// its role (PostgreSQL: startCluster).
func (m *Main) startWorkers(ctx context.Context, reg prometheus.Registerer) error {
	pc := projections.Config{DB: m.DB, Store: m.Store, Projections: projections.All(), Registerer: reg, Logger: m.Logger}
	if m.Config.clustered() {
		pc.Fence = m.fenceProjections
	}
	var err error
	if m.Runner, err = projections.NewRunner(pc); err != nil {
		return err
	}
	m.Reader = projections.NewReader(m.DB)
	if m.Config.clustered() {
		if err := m.startCluster(ctx); err != nil {
			return err
		}
		m.Anchor, err = m.startAnchoring(ctx)
		return err
	}
	for _, r := range m.roles.roles.Leaders() {
		m.roles.set(r, true) // one process on SQLite: it leads every role it runs
	}
	if !m.Config.NoProjections {
		if err := m.Runner.Start(ctx); err != nil {
			return err
		}
	}
	m.Reactor = commands.NewReactor(m.Commands, 0)
	if !m.Config.NoReactor {
		m.goWorker(func() error { return m.Reactor.Run(ctx) })
	}
	m.Anchor, err = m.startAnchoring(ctx)
	return err
}

// goWorker runs f until Close; an error other than cancellation is logged.
func (m *Main) goWorker(f func() error) {
	m.workers.Add(1)
	go func() {
		defer m.workers.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("worker stopped", "err", err)
		}
	}()
}

// apiKeys are the API's token keys and result store.
type apiKeys struct {
	key      ed25519.PrivateKey
	accepted []ed25519.PublicKey // besides key's own public half
	results  rthttp.Results
}

// openAPIKeys loads the token keys and opens the result store; on
// PostgreSQL an API process then joins the others, or is refused
// (joinAPIProcesses).
func (m *Main) openAPIKeys(ctx context.Context) (apiKeys, error) {
	var a apiKeys
	var err error
	if a.key, err = rthttp.LoadOrCreateKey(m.Config.JWTKeyPath(), m.Config.JWTKeyFile == ""); err != nil {
		return a, err
	}
	if a.accepted, err = rthttp.LoadPublicKeys(splitList(m.Config.JWTVerifyKeyFiles)); err != nil {
		return a, fmt.Errorf("--jwt-verify-key-files: %w", err)
	}
	var resultsID string
	if a.results, resultsID, err = m.openResults(ctx); err != nil {
		return a, err
	}
	return a, m.joinAPIProcesses(ctx, a.key, a.accepted, resultsID)
}

func (m *Main) newHTTP(api apiKeys, reg *prometheus.Registry) (*rthttp.Server, error) {
	provider, webhook, err := m.openPayments()
	if err != nil {
		return nil, err
	}
	var stripeWebhook rthttp.StripeWebhook // stays nil (503) without Stripe: a nil *Webhook is not a nil interface
	if webhook != nil {
		stripeWebhook = webhook
	}
	tokens := rthttp.NewTokens(api.key, nil)
	tokens.Accept(api.accepted...)
	if m.Config.AccessTokenTTL != 0 {
		if err := tokens.SetTTL(m.Config.AccessTokenTTL); err != nil {
			return nil, fmt.Errorf("--access-token-ttl: %w", err)
		}
	}
	answers, err := idempotency.New(context.Background(), m.DB, nil)
	if err != nil {
		return nil, err
	}
	var led rthttp.Ledger
	if m.Anchor != nil {
		led = m.Anchor.service
	}
	proxies, err := m.Config.trustedProxies()
	if err != nil {
		return nil, err
	}
	return rthttp.New(rthttp.Config{
		TrustedProxies: proxies, MetricsElsewhere: m.Config.MetricsAddr != "",
		Ledger: led,
		Jobs:   m.jobService(), Credits: m.Commands, Users: m.Identity, Nodes: m.Identity, Assignments: m.Dispatcher.Registry(),
		Answers: answers, Reader: m.Reader, Runner: m.projected(), WriteMarks: m.sharedWriteMarks(), Tokens: tokens,
		Results: api.results, Checkout: provider, StripeWebhook: stripeWebhook, Registerer: reg, Gatherer: reg, Log: m.Logger,
		CORSOrigins: splitList(m.Config.CORSOrigins), PublicURL: m.Config.PublicURL, Head: m.Store.Head,
		Ready: func(ctx context.Context) error { _, err := m.Store.Head(ctx); return err },
		Roles: m.roles.Report, HealthOnly: !m.roles.roles.Has(cluster.RoleAPI),
		App: frontend.Handler(), Chain: m.chainInfo(),
	}), nil
}

// openResults opens the result store: an S3-compatible bucket when one is
// configured, else a directory. It also returns what identifies the store
// among processes (Config.s3Identity, dirIdentity).
func (m *Main) openResults(ctx context.Context) (rthttp.Results, string, error) {
	if m.Config.S3Bucket != "" {
		s3, err := blobstore.OpenS3(ctx, blobstore.S3Config{Bucket: m.Config.S3Bucket, Endpoint: m.Config.S3Endpoint,
			Region: m.Config.S3Region, PathStyle: m.Config.S3PathStyle, TempDir: m.Config.DataDir})
		return s3, m.Config.s3Identity(), err
	}
	return m.openBlobs()
}

// openBlobs opens the local result store; its link-signing key lives
// beside it (results.key in the data dir), or in it with --results-dir, so
// that a shared directory shares its key.
func (m *Main) openBlobs() (*blobstore.Local, string, error) {
	dir, keyPath := m.Config.ResultsPath(), m.Config.DataPath("results.key")
	if m.Config.ResultsDir != "" {
		keyPath = filepath.Join(dir, resultsKeyName)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create results dir: %w", err)
	}
	key, err := readOrCreate(keyPath, func() []byte { k := make([]byte, 32); rand.Read(k); return k })
	if err != nil {
		return nil, "", fmt.Errorf("results signing key: %w", err)
	}
	blobs, err := blobstore.OpenLocal(dir, key)
	if err != nil {
		return nil, "", err
	}
	id, err := dirIdentity(dir, key)
	return blobs, id, err
}

// openPayments returns Stripe when keys are configured, the dev provider
// under --dev, and nothing otherwise (checkout then answers 503).
func (m *Main) openPayments() (payments.Provider, *payments.Webhook, error) {
	c := payments.Config{
		SecretKey: m.Config.StripeSecretKey, WebhookSecrets: payments.ParseWebhookSecrets(m.Config.StripeWebhookSecret),
		APIURL: m.Config.StripeAPIURL, SuccessURL: m.Config.StripeSuccessURL, CancelURL: m.Config.StripeCancelURL,
		Tolerance: m.Config.StripeTolerance,
	}
	if c.StripeConfigured() {
		provider, err := payments.NewStripe(c, m.Logger)
		if err != nil {
			return nil, nil, err
		}
		webhook, err := payments.NewWebhook(c, m.Commands, m.Logger)
		return provider, webhook, err
	}
	if m.Config.Dev {
		dev, err := payments.NewDev(c, m.Commands, m.Logger)
		return dev, nil, err
	}
	return nil, nil, nil
}

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// Close stops serving (letting in-flight requests finish), stops the
// workers and closes the stores.
func (m *Main) Close() error {
	m.stopLocalNode() // first: its running jobs upload through the API
	if m.HTTP != nil {
		m.HTTP.Shutdown(context.Background())
		m.Logger.Debug("shutdown: the API stopped")
	}
	if m.metrics != nil {
		m.metrics.Close()
	}
	if m.cancel != nil {
		m.cancel()
	}
	if m.Runner != nil {
		m.Runner.Stop()
	}
	if m.Watcher != nil {
		m.Watcher.Stop()
	}
	m.workers.Wait()
	m.Logger.Debug("shutdown: the workers stopped")
	if m.Anchor != nil {
		m.Anchor.close()
		m.Logger.Debug("shutdown: the chain client closed")
	}
	var errs []error
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

// NewLogger returns the text logger to stderr of level (debug, info, warn
// or error; anything else is info).
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
