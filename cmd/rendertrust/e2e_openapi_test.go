package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/node"
)

// exchange is one request and the answer it got.
type exchange struct {
	req  *http.Request
	resp *http.Response
	body []byte
}

// recorder is an http.RoundTripper that keeps every exchange, so the
// answers can be checked against the OpenAPI document afterwards.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

// RoundTrip sends req and records it with its answer.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err == nil {
		r.mu.Lock()
		r.exchanges = append(r.exchanges, exchange{req: req, resp: resp, body: body})
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) recorded() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exchanges...)
}

// TestOpenAPIValidatesRealResponses runs an end-to-end journey — a node
// agent, the Go SDK, an admin — through a recording transport, then
// checks every answer (status, content type, body) against the served
// OpenAPI 3.1 document with libopenapi-validator: 1. the node enrolls and
// runs the jobs; 2. a creator registers, reads the job types and
// packages, buys credits, submits a render, an inference and a
// cpu_benchmark, follows, lists, downloads, cancels; 3. reads balance,
// history, usage, and the proof and verification of an entry; 4. an admin
// grants credits and lists nodes and users; ops probes answer.
func TestOpenAPIValidatesRealResponses(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AnchorInterval = 300 * time.Millisecond })
	rec := &recorder{}
	hc := &http.Client{Transport: rec}
	token, _, err := s.m.Identity.IssueEnrollmentToken(context.Background(), "admin:openapi-test")
	if err != nil {
		t.Fatal(err)
	}
	startAgentWith(t, node.Config{Server: s.base, EnrollToken: token, Name: "openapi", Executors: node.Demo(),
		Inputs: &node.Fetcher{}, HTTPClient: hc, HeartbeatInterval: 200 * time.Millisecond, PollWait: time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(s.base, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	openAPIJourney(ctx, t, s, c, hc)
	validateExchanges(t, s, rec.recorded())
}

// openAPIJourney is steps 2 to 4.
func openAPIJourney(ctx context.Context, t *testing.T, s *server, c *client.Client, hc *http.Client) {
	if _, err := c.Register(ctx, "openapi@example.com", "Open API", "correct horse"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "job types", func() error { _, err := c.JobTypes(ctx); return err })
	mustOK(t, "packages", func() error { _, err := c.Packages(ctx); return err })
	mustOK(t, "checkout", func() error { _, err := c.Checkout(ctx, "credits_100"); return err })
	var ids []string
	for _, r := range []client.SubmitRequest{
		{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"},
		{JobType: "Inference", Payload: map[string]string{"prompt": "a cat"}},
		{JobType: client.JobCPUBenchmark},
	} {
		var sub client.Submitted
		eventually(t, "submit "+string(r.JobType), func() string {
			var err error
			if sub, err = c.SubmitJob(ctx, r); err != nil {
				return err.Error()
			}
			return ""
		})
		ids = append(ids, sub.JobID)
	}
	for _, id := range ids {
		eventually(t, "job "+id+" completes", func() string {
			j, err := c.GetJob(ctx, id)
			if err != nil || j.Status != client.StatusCompleted {
				return "not yet"
			}
			return ""
		})
	}
	mustOK(t, "list", func() error { _, err := c.ListJobs(ctx, client.StatusCompleted); return err })
	mustOK(t, "download", func() error { _, err := c.DownloadResult(ctx, ids[0], t.TempDir()+"/card.png"); return err })
	c.CancelJob(ctx, ids[0]) // a 409: the job completed
	mustOK(t, "balance", func() error { _, err := c.Balance(ctx); return err })
	mustOK(t, "usage", func() error { _, err := c.Usage(ctx, client.UsageQuery{Days: 7}); return err })
	page, err := c.Transactions(ctx, client.TransactionQuery{})
	if err != nil || len(page.Transactions) == 0 {
		t.Fatalf("transactions: %+v, %v", page, err)
	}
	entry := page.Transactions[len(page.Transactions)-1].EntryID
	eventually(t, "the purchase is anchored", func() string {
		if _, err := c.Proof(ctx, entry); err != nil {
			return err.Error()
		}
		return ""
	})
	mustOK(t, "verify", func() error { _, err := c.Verify(ctx, entry); return err })
	admin := s.admin(t)
	me, _ := c.Me(ctx)
	for _, call := range []struct{ method, path, body string }{
		{"POST", "/api/v1/admin/grants", `{"user_id":"` + me.ID + `","amount":5,"reason":"welcome"}`},
		{"GET", "/api/v1/admin/nodes", ""}, {"GET", "/api/v1/admin/users", ""},
		{"GET", "/healthz", ""}, {"GET", "/readyz", ""}, {"GET", "/api/v1/openapi.json", ""},
	} {
		req, _ := http.NewRequest(call.method, s.base+call.path, strings.NewReader(call.body))
		req.Header.Set("Authorization", "Bearer "+admin)
		if call.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %v %v", call.method, call.path, err, resp.Status)
		}
		resp.Body.Close()
	}
}

func mustOK(t *testing.T, what string, call func() error) {
	t.Helper()
	if err := call(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// validateExchanges checks every recorded answer against the document.
func validateExchanges(t *testing.T, s *server, exchanges []exchange) {
	t.Helper()
	doc, err := libopenapi.NewDocument(download(t, s.base+"/api/v1/openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	for _, x := range exchanges {
		x.resp.Body = io.NopCloser(bytes.NewReader(x.body))
		ok, verrs := v.ValidateHttpResponse(x.req, x.resp)
		op := x.req.Method + " " + x.req.URL.Path
		if !ok {
			for _, e := range verrs {
				t.Errorf("%s → %s: %s: %s (body %.300s)", op, x.resp.Status, e.Message, e.Reason, x.body)
			}
		}
	}
	if len(exchanges) < 30 {
		t.Errorf("only %d exchanges recorded: the journey did not run", len(exchanges))
	}
}

// startAgentWith runs a node agent configured by cfg until the test ends.
func startAgentWith(t *testing.T, cfg node.Config) {
	t.Helper()
	a, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
