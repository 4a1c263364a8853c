package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults and limits of the agent.
const (
	// SlotsDefault is how many jobs a node runs at once when not told.
	SlotsDefault = 1
	// slotsMax is the server's bound on a node's slots.
	slotsMax = 256
	// HeartbeatIntervalDefault is how often the agent says it is alive; the
	// server counts a node healthy for 30 s after hearing from it.
	HeartbeatIntervalDefault = 10 * time.Second
	// PollWaitDefault is how long one long poll for work waits.
	PollWaitDefault = 25 * time.Second
	// DrainTimeoutDefault is how long running jobs may finish at shutdown
	// before they are interrupted and reported failed.
	DrainTimeoutDefault = 30 * time.Second
	// JobTimeoutDefault bounds one job's execution.
	JobTimeoutDefault = time.Hour
	// ResultBytesMaxDefault is the server's limit on a result.
	ResultBytesMaxDefault = 1 << 30
	// failureBytesMax bounds a failure report's message (the server keeps 2 KiB).
	failureBytesMax = 2 << 10
	// activeRepollDelay paces polls that return only jobs already being
	// taken on, so they do not spin.
	activeRepollDelay = 200 * time.Millisecond
)

// ErrNotEnrolled is returned by Run when the state holds no credential and
// no enrollment token was given.
var ErrNotEnrolled = errors.New("node is not enrolled: give an enrollment token (rendertrust admin issues them)")

// Config configures an Agent. Server and Executors are required.
type Config struct {
	// Server is the API's base URL ("https://api.rendertrust.com").
	Server string
	// EnrollToken is a one-time enrollment token; needed only when the
	// state holds no credential yet.
	EnrollToken string
	// StatePath is the file (0600) that keeps the credential and the jobs
	// in flight across restarts; "" keeps them in memory only.
	StatePath string
	// Name is the node's display name; "" means the host name.
	Name string
	// Slots is how many jobs run at once, 1..256; 0 means SlotsDefault.
	Slots int
	// GPU says the node has a GPU.
	GPU bool
	// Executors run the jobs, by job type; their types are what the node
	// enrolls for.
	Executors map[string]Executor
	// Inputs fetches the inputs (payload URIs) of the jobs whose executor
	// asks for them; nil fetches none (a required input then fails the job).
	Inputs InputFetcher
	// WorkDir holds the jobs' work directories and results; "" means a new
	// temporary directory, removed when Run returns.
	WorkDir string
	// ResultBytesMax bounds a result; 0 means ResultBytesMaxDefault.
	ResultBytesMax int64
	// JobTimeout bounds a job's execution; 0 means JobTimeoutDefault.
	JobTimeout time.Duration
	// HeartbeatInterval is how often to send heartbeats; 0 means
	// HeartbeatIntervalDefault.
	HeartbeatInterval time.Duration
	// PollWait is how long a long poll for work waits, 1 s to 30 s; 0 means
	// PollWaitDefault.
	PollWait time.Duration
	// DrainTimeout is how long running jobs may finish at shutdown; 0 means
	// DrainTimeoutDefault.
	DrainTimeout time.Duration
	// HTTPClient sends the requests; nil means a default client.
	HTTPClient *http.Client
	// Log receives the agent's log; nil means slog.Default().
	Log *slog.Logger
}

// withDefaults returns c with defaults filled in, or an error naming what
// is invalid.
func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(strings.TrimRight(c.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("node: server %q: want http(s)://host", c.Server)
	}
	c.Server = u.String()
	if len(c.Executors) == 0 {
		return c, errors.New("node: no executors")
	}
	if c.Slots == 0 {
		c.Slots = SlotsDefault
	}
	if c.Slots < 1 || c.Slots > slotsMax {
		return c, fmt.Errorf("node: %d slots, want 1..%d", c.Slots, slotsMax)
	}
	if c.PollWait == 0 {
		c.PollWait = PollWaitDefault
	}
	if c.PollWait < time.Second || c.PollWait > pollWaitMax {
		return c, fmt.Errorf("node: poll wait %s, want 1s..%s", c.PollWait, pollWaitMax)
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	c.ResultBytesMax = cmpOr(c.ResultBytesMax, ResultBytesMaxDefault)
	c.JobTimeout = cmpOr(c.JobTimeout, JobTimeoutDefault)
	c.HeartbeatInterval = cmpOr(c.HeartbeatInterval, HeartbeatIntervalDefault)
	c.DrainTimeout = cmpOr(c.DrainTimeout, DrainTimeoutDefault)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

// cmpOr returns v, or def when v is not positive.
func cmpOr[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Agent is a compute node: it enrolls once, then heartbeats, long-polls for
// assignments, runs them with at most Slots at once, and reports each
// one's start, result or failure — retrying reports through transient
// errors. It uploads a result only when its executor produced the whole of
// it, and reports every other outcome as a failure, so the server retries
// the job (elsewhere) and never charges for work that was not done.
type Agent struct {
	cfg   Config
	api   *api
	state *stateFile
	log   *slog.Logger

	slots   chan struct{} // one token per running job
	jobs    sync.WaitGroup
	workDir string

	mu        sync.Mutex
	active    map[string]bool // jobs taken on and not yet reported
	fatal     error           // why the agent must stop, if it must
	stopRun   context.CancelFunc
	interrupt context.CancelFunc
}

// New returns an agent for cfg, with its state loaded. It returns an error
// for an invalid Config or an unreadable state file.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		return nil, err
	}
	return &Agent{
		cfg: cfg, api: &api{base: cfg.Server, http: cfg.HTTPClient}, state: st, log: cfg.Log,
		slots: make(chan struct{}, cfg.Slots), active: map[string]bool{},
	}, nil
}

// NodeID returns the node's id once enrolled (after Run has started), or "".
func (a *Agent) NodeID() string { return a.state.get().NodeID }

// JobTypes returns the job types the node runs, sorted.
func (a *Agent) JobTypes() []string { return slices.Sorted(maps.Keys(a.cfg.Executors)) }

// Run enrolls if needed, reports jobs a previous run left unfinished as
// failed, then takes and runs work until ctx ends. Then it stops taking
// work, lets running jobs finish for up to DrainTimeout, interrupts the
// rest (reporting them failed), and returns nil. It returns ErrNotEnrolled,
// ErrCredentialRejected, an enrollment's *client.APIError, or a state file
// error.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.prepareWorkDir(); err != nil {
		return err
	}
	defer a.cleanWorkDir()
	if err := a.enroll(ctx); err != nil {
		return err
	}
	a.log = a.log.With("node", a.NodeID())
	runCtx, stopRun := context.WithCancel(ctx)
	workCtx, interrupt := context.WithCancel(context.WithoutCancel(ctx))
	lifeCtx, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	defer interrupt()
	a.mu.Lock()
	a.stopRun, a.interrupt = stopRun, interrupt
	a.mu.Unlock()

	var heartbeats sync.WaitGroup
	heartbeats.Go(func() { a.heartbeatLoop(lifeCtx) }) // until every report is made
	a.reportLeftovers(lifeCtx, reportAttemptsMax)
	a.log.Info("node agent running", "server", a.cfg.Server, "job_types", a.JobTypes(), "slots", a.cfg.Slots)
	a.pollLoop(runCtx, workCtx)
	a.drain()
	endLife()
	heartbeats.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatal
}

// Interrupt ends running jobs now, instead of letting them finish; they are
// reported failed. Run still has to be stopped through its context.
func (a *Agent) Interrupt() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.interrupt != nil {
		a.interrupt()
	}
}

// stop makes Run return err once running jobs are dealt with.
func (a *Agent) stop(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fatal == nil {
		a.fatal = err
		a.log.Error("node agent stopping", "err", err)
	}
	if a.stopRun != nil {
		a.stopRun()
	}
}

// prepareWorkDir creates the work dir, or clears a configured one of the
// job dirs and results a crashed run left.
func (a *Agent) prepareWorkDir() error {
	if a.cfg.WorkDir != "" {
		a.workDir = a.cfg.WorkDir
		if err := os.MkdirAll(a.workDir, 0o700); err != nil {
			return err
		}
		for _, pattern := range []string{jobDirPattern, resultFilePattern} {
			stale, _ := filepath.Glob(filepath.Join(a.workDir, strings.ReplaceAll(pattern, "*", "")+"*"))
			for _, p := range stale {
				os.RemoveAll(p)
			}
		}
		return nil
	}
	dir, err := os.MkdirTemp("", "rendertrust-node-")
	a.workDir = dir
	return err
}

func (a *Agent) cleanWorkDir() {
	if a.cfg.WorkDir == "" {
		os.RemoveAll(a.workDir)
	}
}

// enroll uses the state's credential, or trades the enrollment token for
// one and saves it before anything else happens. It returns ErrNotEnrolled
// without either, and an error when the state belongs to another server.
func (a *Agent) enroll(ctx context.Context) error {
	s := a.state.get()
	switch {
	case s.Credential != "" && s.Server != a.cfg.Server:
		return fmt.Errorf("node: state file %s holds an enrollment with %s, not %s: use another state file", a.cfg.StatePath, s.Server, a.cfg.Server)
	case s.Credential != "":
		if a.cfg.EnrollToken != "" {
			a.log.Info("already enrolled; the enrollment token is not used", "node", s.NodeID)
		}
		a.api.credential = s.Credential
		return nil
	case a.cfg.EnrollToken == "":
		return ErrNotEnrolled
	}
	if err := a.state.update(func(*state) {}); err != nil {
		return err // find out the state cannot be saved before spending the token
	}
	e := enrollment{Token: a.cfg.EnrollToken, Name: a.cfg.Name, JobTypes: a.JobTypes(), GPU: a.cfg.GPU, Slots: a.cfg.Slots}
	var id, cred string
	err := a.retryCall(ctx, "enroll", func(ctx context.Context) (err error) {
		id, cred, err = a.api.enroll(ctx, e)
		return err
	})
	if err != nil {
		return fmt.Errorf("node: enroll: %w", err)
	}
	a.api.credential = cred
	a.log.Info("enrolled", "node", id, "job_types", e.JobTypes)
	return a.state.update(func(s *state) { *s = state{Server: a.cfg.Server, NodeID: id, Credential: cred} })
}

// retryCall runs call until it succeeds, fails with anything but a
// transient error, or ctx ends, backing off between attempts.
func (a *Agent) retryCall(ctx context.Context, what string, call func(context.Context) error) error {
	b := newBackoff()
	for {
		err := call(ctx)
		if err == nil || classify(err) != retry || ctx.Err() != nil {
			return err
		}
		a.log.Warn(what+" failed; retrying", "err", err, "in", b.next(err))
		if !b.wait(ctx, err) {
			return ctx.Err()
		}
	}
}

// heartbeatLoop tells the server the node is alive every HeartbeatInterval
// until ctx ends, and retries reports that could not be made before. A
// refused credential stops the agent.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		err := a.api.heartbeat(ctx)
		switch {
		case err == nil:
		case classify(err) == fatal:
			a.stop(ErrCredentialRejected)
			return
		case ctx.Err() == nil:
			a.log.Warn("heartbeat failed", "err", err)
		}
		a.reportLeftovers(ctx, 1)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollLoop long-polls for work whenever a slot is free and starts what
// arrives, until runCtx ends. Jobs run under workCtx.
func (a *Agent) pollLoop(runCtx, workCtx context.Context) {
	b := newBackoff()
	for a.acquire(runCtx) {
		jobs, err := a.api.assignments(runCtx, a.cfg.PollWait)
		if err != nil {
			a.release()
			if runCtx.Err() != nil {
				return
			}
			if classify(err) == fatal {
				a.stop(ErrCredentialRejected)
				return
			}
			a.log.Warn("polling for work failed", "err", err, "retry_in", b.next(err))
			b.wait(runCtx, err)
			continue
		}
		b.reset()
		if started := a.start(workCtx, jobs); started == 0 && len(jobs) > 0 {
			sleep(runCtx, activeRepollDelay)
		}
	}
}

// start runs the assignments not already taken on, the first in the slot
// the caller holds, the others while slots are free; the rest stay
// DISPATCHED and come back in a later poll. It releases the caller's slot
// if unused and returns how many jobs it started.
func (a *Agent) start(workCtx context.Context, jobs []assignment) int {
	n := 0
	for _, j := range jobs {
		if !a.take(j.JobID) {
			continue
		}
		if n > 0 && !a.tryAcquire() {
			a.done(j.JobID)
			break
		}
		n++
		a.jobs.Add(1)
		go a.runJob(workCtx, j)
	}
	if n == 0 {
		a.release()
	}
	return n
}

// drain waits for running jobs, interrupting them after DrainTimeout.
func (a *Agent) drain() {
	finished := make(chan struct{})
	go func() { a.jobs.Wait(); close(finished) }()
	select {
	case <-finished:
		return
	case <-time.After(a.cfg.DrainTimeout):
	}
	a.log.Warn("interrupting running jobs", "after", a.cfg.DrainTimeout)
	a.Interrupt()
	<-finished
}

func (a *Agent) acquire(ctx context.Context) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *Agent) tryAcquire() bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (a *Agent) release() { <-a.slots }

// take marks a job as taken on; it returns false if it already was.
func (a *Agent) take(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active[id] {
		return false
	}
	a.active[id] = true
	return true
}

// done forgets a job taken on.
func (a *Agent) done(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.active, id)
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
