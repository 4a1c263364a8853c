package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
)

var ctx = context.Background()

// mustSession starts a fake API with a registered, logged-in client.
func mustSession(tb testing.TB, opts ...client.Option) (*fakeAPI, *client.Client) {
	tb.Helper()
	api, srv := startFake()
	tb.Cleanup(srv.Close)
	c, err := client.New(srv.URL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Register(ctx, "ada@example.com", "Ada", "correct horse"); err != nil {
		tb.Fatal(err)
	}
	return api, c
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"HTTPS", "https://api.rendertrust.com", true},
		{"TrailingSlash", "http://127.0.0.1:8080/", true},
		{"NoScheme", "api.rendertrust.com", false},
		{"OtherScheme", "ftp://api.rendertrust.com", false},
		{"NoHost", "http://", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%q): err %v, want ok %v", tc.url, err, tc.ok)
			}
			if err == nil && c.BaseURL()[len(c.BaseURL())-1] == '/' {
				t.Fatalf("BaseURL %q ends with /", c.BaseURL())
			}
		})
	}
}

// TestAPIErrorIs checks every status and code maps to its sentinel, and
// only to it.
func TestAPIErrorIs(t *testing.T) {
	sentinels := []error{client.ErrInvalid, client.ErrUnauthorized, client.ErrInsufficientCredits, client.ErrForbidden,
		client.ErrNotFound, client.ErrConflict, client.ErrRateLimited, client.ErrNoHealthyNodes, client.ErrUnavailable}
	for _, tc := range []struct {
		name   string
		status int
		code   string
		want   error
	}{
		{"ErrInvalid", 400, "invalid", client.ErrInvalid},
		{"ErrUnauthorized", 401, "unauthorized", client.ErrUnauthorized},
		{"ErrInsufficientCredits", 402, "insufficient_credits", client.ErrInsufficientCredits},
		{"ErrForbidden", 403, "forbidden", client.ErrForbidden},
		{"ErrNotFound", 404, "not_found", client.ErrNotFound},
		{"ErrConflict", 409, "conflict", client.ErrConflict},
		{"ErrRateLimited", 429, "rate_limited", client.ErrRateLimited},
		{"ErrNoHealthyNodes", 503, "no_healthy_nodes", client.ErrNoHealthyNodes},
		{"ErrUnavailable", 503, "unavailable", client.ErrUnavailable},
		{"ProxyPage503", 503, "", client.ErrUnavailable},
		{"Internal", 500, "internal", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.code == "" {
					w.WriteHeader(tc.status)
					w.Write([]byte("<html>bad gateway</html>"))
					return
				}
				writeErr(w, tc.status, tc.code, "because")
			}))
			defer srv.Close()
			c, _ := client.New(srv.URL)
			_, err := c.Packages(ctx)
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Code != tc.code {
				t.Fatalf("err %v, want *APIError %d %q", err, tc.status, tc.code)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, s == tc.want)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"Seconds", "42", 42 * time.Second},
		{"None", "", 0},
		{"Garbage", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				writeErr(w, 429, "rate_limited", "too many login attempts")
			}))
			defer srv.Close()
			c, _ := client.New(srv.URL)
			_, err := c.Login(ctx, "ada@example.com", "wrong")
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrRateLimited) || apiErr.RetryAfter != tc.want {
				t.Fatalf("err %v (retry after %v), want ErrRateLimited after %v", err, apiErr.RetryAfter, tc.want)
			}
		})
	}
}

// TestRefreshOn401: 1. a request whose access token is refused is sent
// again after one refresh; 2. the rotated tokens reach the hook; 3. the
// spent refresh token is never presented again.
func TestRefreshOn401(t *testing.T) {
	var saved []client.Tokens
	api, c := mustSession(t, client.WithTokenHook(func(tk client.Tokens) { saved = append(saved, tk) }))
	before := c.Tokens()
	api.expireAccess()
	if _, err := c.Balance(ctx); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	after := c.Tokens()
	if after.RefreshToken == before.RefreshToken || api.refreshes != 1 {
		t.Fatalf("step 1: refresh token %q→%q after %d refreshes; want one rotation", before.RefreshToken, after.RefreshToken, api.refreshes)
	}
	if len(saved) != 2 || saved[1] != after {
		t.Fatalf("step 2: hook saw %+v, want register then %+v", saved, after)
	}
	if _, err := c.Balance(ctx); err != nil || api.refreshes != 1 {
		t.Fatalf("step 3: err %v after %d refreshes; want the new token to work", err, api.refreshes)
	}
}

// TestRefreshConcurrent: many requests refused at once share one refresh,
// so the rotating refresh token is used once and the session survives.
func TestRefreshConcurrent(t *testing.T) {
	api, c := mustSession(t)
	api.expireAccess()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Balance(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Balance: %v", err)
		}
	}
	if api.refreshes != 1 {
		t.Fatalf("%d refreshes, want 1", api.refreshes)
	}
}

// TestRefreshBeforeExpiry: a token the server says expires within the skew
// is refreshed before the request, not after a 401.
func TestRefreshBeforeExpiry(t *testing.T) {
	api, srv := startFake()
	defer srv.Close()
	api.ttl = 1 // already inside the refresh skew
	c, _ := client.New(srv.URL)
	c.Register(ctx, "ada@example.com", "Ada", "correct horse")
	if _, err := c.Balance(ctx); err != nil {
		t.Fatal(err)
	}
	if api.refreshes != 1 {
		t.Fatalf("%d refreshes, want 1", api.refreshes)
	}
}

// TestRefreshRevoked: a refused refresh ends the session with
// ErrUnauthorized and forgets the tokens.
func TestRefreshRevoked(t *testing.T) {
	api, c := mustSession(t)
	api.mu.Lock()
	clear(api.refresh)
	api.mu.Unlock()
	api.expireAccess()
	_, err := c.Balance(ctx)
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("err %v, want ErrUnauthorized", err)
	}
	if c.Tokens() != (client.Tokens{}) {
		t.Fatalf("tokens %+v kept after the session ended", c.Tokens())
	}
}

func TestWithTokensResumesSession(t *testing.T) {
	_, first := mustSession(t)
	c, _ := client.New(first.BaseURL(), client.WithTokens(first.Tokens()))
	if _, err := c.Balance(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper bool
		path   func(dir string) string
		want   error
	}{
		{"File", false, func(dir string) string { return filepath.Join(dir, "out.png") }, nil},
		{"IntoDirectory", false, func(dir string) string { return dir }, nil},
		{"ErrChecksumMismatch", true, func(dir string) string { return filepath.Join(dir, "out.png") }, client.ErrChecksumMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, c := mustSession(t)
			api.available = 10
			sub, err := c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"})
			if err != nil {
				t.Fatal(err)
			}
			api.tamper = tc.tamper
			dir := t.TempDir()
			d, err := c.DownloadResult(ctx, sub.JobID, tc.path(dir))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if api.downloadAuth != "" {
				t.Errorf("download sent Authorization %q; the link needs no token", api.downloadAuth)
			}
			entries, _ := os.ReadDir(dir)
			if tc.want != nil {
				if len(entries) != 0 {
					t.Fatalf("a failed download left %v", entries)
				}
				return
			}
			got, err := os.ReadFile(d.Path)
			if err != nil || string(got) != "s3://bucket/scene.blend" || len(entries) != 1 {
				t.Fatalf("read %s: %q, %v (dir holds %d entries)", d.Path, got, err, len(entries))
			}
		})
	}
}

func TestDownloadResultNotFound(t *testing.T) {
	_, c := mustSession(t)
	if _, err := c.DownloadResult(ctx, "nope", t.TempDir()); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}

func TestEmptyIDRefused(t *testing.T) {
	_, c := mustSession(t)
	for _, id := range []string{"", "..", " "} {
		if _, err := c.GetJob(ctx, id); err == nil {
			t.Errorf("GetJob(%q): no error", id)
		}
	}
}

func TestListJobsPages(t *testing.T) {
	api, c := mustSession(t)
	for range 5 {
		c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobEcho, Payload: map[string]int{"n": 1}})
	}
	api.mu.Lock()
	api.jobs[1].Status = "FAILED"
	api.mu.Unlock()
	for _, tc := range []struct {
		name     string
		statuses []client.Status
		want     []string
	}{
		{"All", nil, []string{"job-5", "job-4", "job-3", "job-2", "job-1"}},
		{"OneStatus", []client.Status{client.StatusFailed}, []string{"job-2"}},
		{"TwoStatuses", []client.Status{client.StatusFailed, client.StatusCompleted}, []string{"job-5", "job-4", "job-3", "job-2", "job-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobs, err := c.ListJobs(ctx, tc.statuses...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want client.Status
		ok   bool
	}{
		{"running", client.StatusRunning, true},
		{"COMPLETED", client.StatusCompleted, true},
		{"done", "", false},
	} {
		got, err := client.ParseStatus(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestProofUnavailable: proofs answer 503 unavailable while the anchoring
// service is off; that is ErrUnavailable, not ErrNoHealthyNodes.
func TestProofUnavailable(t *testing.T) {
	_, c := mustSession(t)
	_, err := c.Proof(ctx, "entry-1")
	if !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrNoHealthyNodes) {
		t.Fatalf("err %v, want ErrUnavailable only", err)
	}
}
