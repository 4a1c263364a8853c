// Package http is RenderTrust's REST API (echo): the creator guide's every
// path, the node and admin endpoints, and the one JSON error shape. Handlers
// parse and validate, call a command or a projection query, and answer;
// business rules live in domain and commands.
package http

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/payments"
)

// Limits of the API.
const (
	// bodyBytesMax bounds a JSON request body.
	bodyBytesMax = 256 << 10
	// resultBytesMax bounds a job result a node uploads.
	resultBytesMax = 1 << 30
	// readWaitMax bounds how long a write waits for the read models to show
	// its effect (read-your-writes).
	readWaitMax = 2 * time.Second
	// assignmentWaitMax bounds a node's long poll for work.
	assignmentWaitMax = 30 * time.Second
	// resultLinkTTL is how long a result download link works.
	resultLinkTTL = time.Hour
	// shutdownTimeout bounds how long in-flight requests may finish.
	shutdownTimeout = 15 * time.Second
	// resultCleanupTimeout bounds deleting the result of an upload the job
	// could not complete with.
	resultCleanupTimeout = 10 * time.Second
)

// Ledger serves Merkle proofs of log entries; *anchor.Service implements
// it. Proofs and results are anchor/proof's public format, rendered as JSON
// as they are.
type Ledger interface {
	Proof(ctx context.Context, entryID string) (*proof.Inclusion, error)
	Verify(ctx context.Context, entryID string) (*proof.Result, error)
	Consistency(ctx context.Context, from, to uint64) (*proof.Consistency, error)
	// EntryStream names the stream of an entry, for access checks.
	EntryStream(ctx context.Context, entryID string) (string, error)
	// AnchoredSize is the tree size of the latest confirmed anchor.
	AnchoredSize() uint64
}

// Results stores job results and makes their download links: the local
// directory (blobstore.Local, whose links this API serves) or an
// S3-compatible bucket (blobstore.S3, presigned links).
type Results interface {
	Put(name string, r io.Reader, maxBytes int64, wantSHA256 string) (string, int64, error)
	URL(ctx context.Context, name, base string, expires time.Time) (string, error)
	// Delete removes a blob; a missing one is not an error.
	Delete(ctx context.Context, name string) error
}

// localResults is a Results whose links this API serves itself.
type localResults interface {
	Check(name, expires, signature string, now time.Time) error
	Open(name string) (io.ReadSeekCloser, int64, error)
}

// Config is everything the API needs: the services it calls, each as the
// narrow interface its handlers use (services.go). Jobs, Credits, Users,
// Nodes, Assignments, Reader, Runner, Tokens and Results are required; a nil
// Ledger, Checkout or StripeWebhook answers 503.
type Config struct {
	Jobs        JobService
	Credits     CreditService
	Users       UserService
	Nodes       NodeService
	Assignments Assignments
	Reader      ReadModels
	Runner      interface {
		WaitFor(context.Context, uint64) error
	}
	Tokens *Tokens
	// WriteMarks shares read-your-writes marks with the other API
	// processes; nil keeps them in this process.
	WriteMarks WriteMarks
	// Answers keeps the first answer to each Idempotency-Key; nil replays
	// nothing (commands still write once per key).
	Answers       AnswerCache
	Results       Results
	Ledger        Ledger
	Checkout      payments.Provider
	StripeWebhook StripeWebhook
	Registerer    prometheus.Registerer
	Gatherer      prometheus.Gatherer
	Log           *slog.Logger
	CORSOrigins   []string
	// PublicURL prefixes download links ("https://api.example.com"); empty
	// means the address Serve listens on (loopback for every interface),
	// never the request's Host.
	PublicURL string
	// Head returns the event log's last position (read-your-writes after
	// effects whose position a command does not report).
	Head func(context.Context) (uint64, error)
	// App serves the Creator app at / (frontend.Handler); nil serves none.
	App http.Handler
	// Chain describes the anchoring chain for clients that check proofs
	// themselves (GET /api/v1/ledger/chain); nil answers 503.
	Chain *ChainInfo
	// Ready reports whether the server can serve (for /readyz).
	Ready func(context.Context) error
	// Roles, when set, says which roles this process runs and leads, in
	// lines that /readyz adds after its "ok" (for load balancers and
	// operators: only processes running the api role take clients).
	Roles func() string
	// HealthOnly serves /healthz, /readyz and /metrics alone: a process
	// that does not run the api role takes no clients.
	HealthOnly bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; with none, the connection's peer is the client (a
	// client's own X-Forwarded-For is ignored).
	TrustedProxies []*net.IPNet
	// MetricsElsewhere leaves /metrics off the API: the caller serves
	// MetricsHandler on another address.
	MetricsElsewhere bool
	// ReadTimeout bounds the reading of a whole request but a result
	// upload (held to a minimum rate instead); 0 means 30 s.
	ReadTimeout time.Duration
	Now         func() time.Time
}

// Server is the API over HTTP.
type Server struct {
	Config
	echo    *echo.Echo
	log     *slog.Logger
	metrics *metrics
	server  *http.Server
	closing chan struct{} // closed when shutdown starts: long polls answer at once
	once    sync.Once
	writes  *writeMarks
	uploads jobLocks // one result upload per job at a time
	// listenBase is the URL of the address Serve listens on: download
	// links' prefix without PublicURL.
	listenBase string
}

// New returns a Server with every route registered.
func New(c Config) *Server {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registerer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	}
	s := &Server{Config: c, echo: echo.New(), log: c.Log, closing: make(chan struct{}), writes: newWriteMarks()}
	s.metrics = newMetrics(c.Registerer)
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.errorHandler
	s.echo.IPExtractor = ipExtractor(c.TrustedProxies)
	s.routes()
	// Made here, not in Serve: a Shutdown that comes before Serve has
	// started must still stop it (Serve then returns at once).
	s.server = s.newHTTPServer()
	return s
}

// ipExtractor returns how the client's address is found: the peer's, or,
// behind trusted proxies, the first address in X-Forwarded-For that is not
// one of them.
func ipExtractor(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(p))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// MetricsHandler serves the Prometheus metrics of Gatherer.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers requests on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.listenBase = listenURL(l.Addr()) // before any request is accepted
	err := s.server.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits (bounded) for in-flight ones.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() { close(s.closing) })
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	return s.server.Shutdown(ctx)
}

func (s *Server) headPosition(ctx context.Context) (uint64, error) {
	if s.Head == nil {
		return 0, nil
	}
	return s.Head(ctx)
}

func itoa(n int) string { return strconv.Itoa(n) }

// waitRead waits, bounded, until the read models show the log up to
// position, so the client's next request sees its own write. A timeout is
// not an error: the write happened; the read models will follow.
func (s *Server) waitRead(ctx context.Context, position uint64) {
	if position == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, readWaitMax)
	defer cancel()
	s.Runner.WaitFor(ctx, position)
}
