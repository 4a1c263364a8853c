package operator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rendertrust/rendertrust/client"
)

// Limits of a load test's setup.
const (
	// loadtestCreditsTotal is shared among the creators, each funded with
	// at least one and at most loadtestDevCheckoutsMax dev packages' worth:
	// enough for every paid job a run on one machine submits.
	loadtestCreditsTotal = 1_000_000
	// loadtestDevPackage is the package the dev provider credits at once.
	loadtestDevPackage        = "credits_1000"
	loadtestDevPackageCredits = 1_000
	// loadtestDevCheckoutsMax bounds the dev checkouts per creator.
	loadtestDevCheckoutsMax = 200
	// loadtestSetupParallel bounds the creators registered at once
	// (registration hashes a password: CPU-bound on the server).
	loadtestSetupParallel = 8
	// loadtestResponseBytesMax bounds an answer read during setup.
	loadtestResponseBytesMax = 1 << 20
	// loadtestPollWait is the nodes' long poll.
	loadtestPollWait = 1
	adminPasswordEnv = "RENDERTRUST_ADMIN_PASSWORD"
)

// loadtestEnv is a prepared load test: its creators' tokens and, for the
// cycle workload, the admin's.
type loadtestEnv struct {
	base     string   // the first server: setup goes through it
	servers  []string // every server the clients load
	hc       *http.Client
	admin    string // the admin's access token, when given
	packages int    // dev packages' worth of credits each creator gets
	clients  int    // concurrent clients, which take the creators in turn
	tokens   []string
}

// prepareLoadtest logs the admin in (when given), registers f.users
// creators and funds them through the first server, and checks that every
// other server accepts their tokens.
func prepareLoadtest(ctx context.Context, f *loadtestFlags, progress io.Writer) (*loadtestEnv, error) {
	e := &loadtestEnv{base: f.servers[0], servers: f.servers, hc: &http.Client{Timeout: time.Minute}, packages: f.packages, clients: f.clients}
	if f.adminEmail != "" {
		password := f.adminPassword
		if password == "" {
			password = os.Getenv(adminPasswordEnv)
		}
		c, err := client.New(e.base, client.WithHTTPClient(e.hc))
		if err != nil {
			return nil, err
		}
		if _, err := c.Login(ctx, f.adminEmail, password); err != nil {
			return nil, fmt.Errorf("admin login: %w", err)
		}
		e.admin = c.Tokens().AccessToken
	}
	fmt.Fprintf(progress, "loadtest: registering and funding %d creators\n", f.users)
	e.tokens = make([]string, f.users)
	run := loadtestRunID()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadtestSetupParallel)
	for i := range e.tokens {
		g.Go(func() error {
			tok, err := e.newCreator(gctx, fmt.Sprintf("loadtest-%s-%d@example.invalid", run, i))
			e.tokens[i] = tok
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return e, e.checkTokensAccepted(ctx, f.servers[1:])
}

// checkTokensAccepted reads a creator's balance through each of servers,
// so that servers signing with different keys fail the run before it
// starts rather than as thousands of 401s.
func (e *loadtestEnv) checkTokensAccepted(ctx context.Context, servers []string) error {
	for _, s := range servers {
		if err := e.at(s).do(ctx, e.tokens[0], http.MethodGet, "/api/v1/credits/balance", nil, "", nil, nil); err != nil {
			return fmt.Errorf("%s refused a creator's token from %s (do the API processes share one --jwt-key-file?): %w", s, e.base, err)
		}
	}
	return nil
}

// newCreator registers a creator, funds it, and returns its access token.
func (e *loadtestEnv) newCreator(ctx context.Context, email string) (string, error) {
	c, err := client.New(e.base, client.WithHTTPClient(e.hc))
	if err != nil {
		return "", err
	}
	u, err := c.Register(ctx, email, "Load test", loadtestRunID()+loadtestRunID())
	if err != nil {
		return "", fmt.Errorf("register %s: %w", email, err)
	}
	packages := e.packages
	if e.admin != "" {
		grant := map[string]any{"user_id": u.ID, "amount": packages * loadtestDevPackageCredits, "reason": "load test"}
		return c.Tokens().AccessToken, e.post(ctx, e.admin, "/api/v1/admin/grants", grant, nil)
	}
	for range packages {
		if _, err := c.Checkout(ctx, loadtestDevPackage); err != nil {
			return "", fmt.Errorf("dev checkout for %s (is the server running with --dev?): %w", email, err)
		}
	}
	return c.Tokens().AccessToken, nil
}

// loadtestRunID returns 8 random hex characters.
func loadtestRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// at returns e sending to server instead of its first.
func (e *loadtestEnv) at(server string) *loadtestEnv {
	other := *e
	other.base = server
	return &other
}

// heartbeat heartbeats for the node with cred through every server, so
// that each API process knows it healthy from the first heartbeat on
// rather than once another process's heartbeat buffer reached it.
func (e *loadtestEnv) heartbeat(ctx context.Context, cred string) error {
	for _, s := range e.servers {
		if err := e.at(s).post(ctx, cred, "/api/v1/nodes/heartbeat", struct{}{}, nil); err != nil {
			return err
		}
	}
	return nil
}

// post sends body as JSON with token and decodes a 2xx answer into out.
func (e *loadtestEnv) post(ctx context.Context, token, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return e.do(ctx, token, http.MethodPost, path, bytes.NewReader(b), "application/json", nil, out)
}

func (e *loadtestEnv) do(ctx context.Context, token, method, path string, body io.Reader, contentType string, h http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return client.ErrorFromResponse(resp)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, loadtestResponseBytesMax))
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, loadtestResponseBytesMax)).Decode(out)
}

// runNodes enrolls f.nodes nodes that run every job type and completes
// what is dispatched to them at once, counting completions in cycles. The
// returned stop ends them.
func (e *loadtestEnv) runNodes(ctx context.Context, f *loadtestFlags, cycles *atomic.Int64) (stop func(), err error) {
	creds, err := e.enrollNodes(ctx, f.jobType, f.nodes)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, cred := range creds {
		wg.Add(1)
		go func() { defer wg.Done(); e.runNode(nctx, cred, cycles) }()
	}
	return func() { cancel(); wg.Wait() }, nil
}

// loadtestIdleHeartbeat is how often an idle node heartbeats: well inside
// the server's default node-lost timeout.
const loadtestIdleHeartbeat = 5 * time.Second

// runIdleNodes enrolls n nodes that heartbeat and never take work: the job
// type stays available, so submissions are accepted and wait QUEUED, and no
// executor competes with the server for the cores. The returned stop ends
// them.
func (e *loadtestEnv) runIdleNodes(ctx context.Context, jobType string, n int) (stop func(), err error) {
	creds, err := e.enrollNodes(ctx, jobType, n)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(loadtestIdleHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-nctx.Done():
				return
			case <-t.C:
				for _, cred := range creds {
					e.heartbeat(nctx, cred)
				}
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}

// enrollNodes enrolls n nodes of loadtestNodeSlots slots that run jobType,
// each heartbeating once, and returns their credentials.
func (e *loadtestEnv) enrollNodes(ctx context.Context, jobType string, n int) ([]string, error) {
	creds := make([]string, n)
	for i := range creds {
		var tok struct {
			Token string `json:"token"`
		}
		if err := e.post(ctx, e.admin, "/api/v1/admin/enrollment-tokens", struct{}{}, &tok); err != nil {
			return nil, fmt.Errorf("enrollment token: %w", err)
		}
		var enrolled struct {
			Credential string `json:"credential"`
		}
		enroll := map[string]any{"token": tok.Token, "name": fmt.Sprintf("loadtest-%d", i), "job_types": []string{jobType}, "slots": loadtestNodeSlots}
		if err := e.post(ctx, "", "/api/v1/nodes/enroll", enroll, &enrolled); err != nil {
			return nil, fmt.Errorf("enroll node: %w", err)
		}
		creds[i] = enrolled.Credential
		if err := e.heartbeat(ctx, creds[i]); err != nil {
			return nil, fmt.Errorf("node heartbeat: %w", err)
		}
	}
	return creds, nil
}

// runNode long-polls one node's assignments and completes each at once
// with a tiny result, loadtestNodeSlots at a time, heartbeating as it goes.
func (e *loadtestEnv) runNode(ctx context.Context, cred string, cycles *atomic.Int64) {
	work := make(chan string)
	var mu sync.Mutex
	inFlight := map[string]bool{} // taken, not yet started: the next poll lists them again
	var wg sync.WaitGroup
	for range loadtestNodeSlots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range work {
				if e.complete(ctx, cred, job) == nil {
					cycles.Add(1)
				}
				mu.Lock()
				delete(inFlight, job)
				mu.Unlock()
			}
		}()
	}
	defer func() { close(work); wg.Wait() }()
	for ctx.Err() == nil {
		var a struct {
			Jobs []struct {
				JobID string `json:"job_id"`
			} `json:"jobs"`
		}
		if err := e.do(ctx, cred, http.MethodGet, fmt.Sprintf("/api/v1/nodes/assignments?wait=%d", loadtestPollWait), nil, "", nil, &a); err != nil {
			continue
		}
		e.post(ctx, cred, "/api/v1/nodes/heartbeat", struct{}{}, nil)
		for _, j := range a.Jobs {
			mu.Lock()
			taken := inFlight[j.JobID]
			inFlight[j.JobID] = true
			mu.Unlock()
			if taken {
				continue
			}
			select {
			case work <- j.JobID:
			case <-ctx.Done():
				return
			}
		}
	}
}

// complete starts a job and uploads its result: the job's id.
func (e *loadtestEnv) complete(ctx context.Context, cred, job string) error {
	path := "/api/v1/nodes/jobs/" + url.PathEscape(job)
	if err := e.post(ctx, cred, path+"/started", struct{}{}, nil); err != nil {
		return err // another slot's loop took it first, or it was cancelled
	}
	sum := sha256.Sum256([]byte(job))
	h := http.Header{"X-Result-Sha256": {hex.EncodeToString(sum[:])}}
	return e.do(ctx, cred, http.MethodPut, path+"/result", bytes.NewReader([]byte(job)), "application/octet-stream", h, nil)
}
