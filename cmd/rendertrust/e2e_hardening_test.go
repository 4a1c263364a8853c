package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// login posts a login and returns the status.
func (s *server) login(tb testing.TB, email, password string) int {
	tb.Helper()
	return s.call(tb, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, nil)
}

// TestLoginParallelGuesses: 100 guesses of one account's password sent at
// once are counted before any is verified: at most five are verified (401),
// the others are refused (429), and so is the right password afterwards.
func TestLoginParallelGuesses(t *testing.T) {
	s := startServer(t, nil)
	s.register(t, "victim@example.com")
	const guesses = 100
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- s.login(t, "victim@example.com", fmt.Sprintf("guess %d", i))
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if count[401] > 5 || count[401]+count[429] != guesses {
		t.Fatalf("answers %v: want at most 5 verified (401), the rest 429", count)
	}
	if st := s.login(t, "victim@example.com", "correct horse"); st != 429 && count[401] == 5 {
		t.Fatalf("the right password after 5 failures: %d, want 429", st)
	}
}

// TestLoginSharedAddress: users behind one address (a NAT): one who mistypes
// until refused does not lock the others out.
func TestLoginSharedAddress(t *testing.T) {
	s := startServer(t, nil)
	s.register(t, "typo@example.com")
	s.register(t, "other@example.com")
	for range 6 {
		s.login(t, "typo@example.com", "wrong password")
	}
	if st := s.login(t, "typo@example.com", "correct horse"); st != 429 {
		t.Fatalf("the mistyping user after 6 failures: %d, want 429", st)
	}
	if st := s.login(t, "other@example.com", "correct horse"); st != 200 {
		t.Fatalf("another user at the same address: %d, want 200", st)
	}
}

// TestLoginTimingHidesAccounts: a login with an unknown email spends as long
// as one with a wrong password (the same bcrypt cost), so its timing does
// not tell which emails have accounts.
func TestLoginTimingHidesAccounts(t *testing.T) {
	s := startServer(t, nil)
	s.register(t, "known@example.com")
	fastest := func(emails ...string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for _, email := range emails {
			start := time.Now()
			if st := s.login(t, email, "wrong password"); st != 401 {
				t.Fatalf("login %s: %d, want 401", email, st)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known := fastest("known@example.com", "known@example.com")
	unknown := fastest("nobody1@example.com", "nobody2@example.com")
	if unknown < known/4 {
		t.Fatalf("an unknown email answers in %v, a known one in %v: the timing tells them apart", unknown, known)
	}
}

// TestMetricsLabelsBounded: requests with made-up methods and paths do not
// become metric labels: they are counted as method "other" on a fixed route
// label ("unmatched", or the app's "/*").
func TestMetricsLabelsBounded(t *testing.T) {
	s := startServer(t, nil)
	for i := range 20 {
		req, _ := http.NewRequest(fmt.Sprintf("MADEUP%d", i), s.base+fmt.Sprintf("/madeup/%d", i), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	body := getMetrics(t, s.base)
	if strings.Contains(body, "MADEUP") || strings.Contains(body, "/madeup/") {
		t.Fatalf("made-up methods or paths became metric labels:\n%s", grepLines(body, "madeup"))
	}
	// With the Creator app served at /, every path has a route, "/*": a
	// made-up method on it is a 405 of that route, still a fixed label.
	if !strings.Contains(body, `method="other",route="unmatched"`) && !strings.Contains(body, `method="other",route="/*"`) {
		t.Fatalf("no request counted as method other on a fixed route label:\n%s", grepLines(body, "rendertrust_http_requests_total"))
	}
}

// TestMetricsAddr: with --metrics-addr, /metrics is served there and not
// on the API's address.
func TestMetricsAddr(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
	if st := s.call(t, "GET", "/metrics", "", nil, nil); st != 404 {
		t.Fatalf("GET /metrics on the API: %d, want 404", st)
	}
	if body := getMetrics(t, "http://"+s.m.MetricsAddr()); !strings.Contains(body, "rendertrust_http_requests_total") {
		t.Fatalf("the metrics address serves no API metrics:\n%.500s", body)
	}
}

// TestPprof: --pprof serves the profiles, mutex and block included, on the
// metrics address only, and refuses to start without one.
func TestPprof(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MetricsAddr, c.Pprof = "127.0.0.1:0", true })
	// The API's address answers every path with the Creator app's page.
	if st, body := getBody(t, s.base+"/debug/pprof/mutex?debug=1"); st == 200 && strings.Contains(body, "--- mutex:") {
		t.Fatal("the profiles are served on the API's address")
	}
	for _, profile := range []string{"mutex", "block", "heap"} {
		// The text form of each profile names its kind in its header
		// ("--- mutex:", "--- contention:", "heap profile:").
		st, body := getBody(t, "http://"+s.m.MetricsAddr()+"/debug/pprof/"+profile+"?debug=1")
		if st != 200 || !strings.Contains(body, map[string]string{"mutex": "--- mutex:", "block": "--- contention:", "heap": "heap profile:"}[profile]) {
			t.Fatalf("GET /debug/pprof/%s: %d\n%.300s", profile, st, body)
		}
	}
	m := &Main{Config: Config{DataDir: t.TempDir(), Pprof: true}}
	if err := m.Run(t.Context()); !errors.Is(err, errPprofWithoutMetricsAddr) {
		t.Fatalf("--pprof without --metrics-addr: %v, want errPprofWithoutMetricsAddr", err)
	}
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/metrics: %s", base, resp.Status)
	}
	return string(b)
}

// grepLines returns the lines of s that contain sub, case-insensitively.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(l), strings.ToLower(sub)) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// nodeID returns the id of the node a credential belongs to.
func (s *server) nodeID(t *testing.T, cred string) string {
	t.Helper()
	id, err := s.m.Commands.AuthenticateNode(t.Context(), cred)
	if err != nil {
		t.Fatal(err)
	}
	return string(id)
}

// TestRetireAndRotateNode:
//  1. node A runs a job;
//  2. an admin retires A: its credential is refused at once, and the job
//     goes to node B, uncharged so far;
//  3. an admin rotates B's credential: the old one is refused, the new one
//     works; a retired node's credential cannot be rotated (409).
func TestRetireAndRotateNode(t *testing.T) {
	s := startServer(t, nil)
	admin := s.admin(t)
	tok := s.register(t, "owner@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	// 1.
	a := s.enrollNode(t, admin, 1)
	if st := s.call(t, "POST", "/api/v1/nodes/heartbeat", a, nil, nil); st != 200 && st != 204 {
		t.Fatalf("step 1: heartbeat %d", st)
	}
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "echo", "payload": map[string]string{"x": "y"}}, &sub); st != 201 {
		t.Fatalf("step 1: submit %d", st)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", a, nil, nil); st != 200 {
		t.Fatalf("step 1: started %d", st)
	}
	b := s.enrollNode(t, admin, 1)
	// 2.
	idA := s.nodeID(t, a)
	if st := s.call(t, "POST", "/api/v1/admin/nodes/"+idA+"/retire", admin, map[string]string{"reason": "compromised"}, nil); st != 200 {
		t.Fatalf("step 2: retire %d", st)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/heartbeat", a, nil, nil); st != 401 {
		t.Fatalf("step 2: the retired node's credential answered %d, want 401", st)
	}
	eventually(t, "step 2: the job assigned to node B", func() string {
		var as struct {
			Jobs []struct {
				JobID string `json:"job_id"`
			}
		}
		s.call(t, "GET", "/api/v1/nodes/assignments?wait=1", b, nil, &as)
		for _, j := range as.Jobs {
			if j.JobID == sub.JobID {
				return ""
			}
		}
		return fmt.Sprintf("B was assigned %+v", as.Jobs)
	})
	// 3.
	idB := s.nodeID(t, b)
	var rot struct{ NodeID, Credential string }
	if st := s.call(t, "POST", "/api/v1/admin/nodes/"+idB+"/credential", admin, nil, &rot); st != 200 || rot.Credential == "" || rot.Credential == b {
		t.Fatalf("step 3: rotate %d %+v", st, rot)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/heartbeat", b, nil, nil); st != 401 {
		t.Fatalf("step 3: the old credential answered %d, want 401", st)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/heartbeat", rot.Credential, nil, nil); st != 200 && st != 204 {
		t.Fatalf("step 3: the new credential answered %d", st)
	}
	if st := s.call(t, "POST", "/api/v1/admin/nodes/"+idA+"/credential", admin, nil, nil); st != 409 {
		t.Fatalf("step 3: rotating a retired node's credential answered %d, want 409", st)
	}
}

// TestAssignmentsWaitZero: a node's poll without waiting answers at once
// (it answered 500: the heartbeat ran under the expired wait).
func TestAssignmentsWaitZero(t *testing.T) {
	s := startServer(t, nil)
	node := s.enrollNode(t, s.admin(t), 1)
	if st := s.call(t, "GET", "/api/v1/nodes/assignments?wait=0", node, nil, nil); st != 200 {
		t.Fatalf("GET assignments?wait=0: %d, want 200", st)
	}
}

// TestRequestIDValidated: a client's X-Request-Id that is not a valid id
// (here 300 bytes) does not fail the write and never reaches the log; the
// server makes its own.
func TestRequestIDValidated(t *testing.T) {
	s := startServer(t, nil)
	tok := s.register(t, "rid@example.com").AccessToken
	req, _ := http.NewRequest("POST", s.base+"/api/v1/credits/checkout", strings.NewReader(`{"package_id":"credits_100"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	long := strings.Repeat("r", 300)
	req.Header.Set("X-Request-Id", long)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == long {
		t.Fatalf("checkout with a 300-byte X-Request-Id: %s, answered request id %.20q…", resp.Status, resp.Header.Get("X-Request-Id"))
	}
}

// TestResultNotSniffed: a result that looks like HTML is served as
// application/octet-stream, nosniff, as an attachment.
func TestResultNotSniffed(t *testing.T) {
	s := startServer(t, nil)
	tok := s.register(t, "sniff@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	node := s.enrollNode(t, s.admin(t), 1)
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "echo", "payload_ref": "s3://b/k"}, &sub); st != 201 {
		t.Fatalf("submit: %d", st)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil); st != 200 {
		t.Fatalf("started: %d", st)
	}
	page := []byte("<html><script>alert(document.cookie)</script></html>")
	sum := sha256.Sum256(page)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+sub.JobID+"/result", bytes.NewReader(page))
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	var link struct {
		URL string `json:"download_url"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs/"+sub.JobID+"/result", tok, nil, &link); st != 200 {
		t.Fatalf("result link: %d", st)
	}
	resp, err = http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if h.Get("Content-Type") != "application/octet-stream" || h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("result served with Content-Type %q, X-Content-Type-Options %q, Content-Disposition %q", h.Get("Content-Type"), h.Get("X-Content-Type-Options"), h.Get("Content-Disposition"))
	}
}

// TestGrantToUnknownUser: an admin grant to a user who does not exist is
// refused (404) and writes nothing.
func TestGrantToUnknownUser(t *testing.T) {
	s := startServer(t, nil)
	admin := s.admin(t)
	head, _ := s.m.Store.Head(t.Context())
	if st := s.call(t, "POST", "/api/v1/admin/grants", admin, map[string]any{"user_id": "no-such-user", "amount": 50, "reason": "typo"}, nil); st != 404 {
		t.Fatalf("grant to an unknown user: %d, want 404", st)
	}
	if after, _ := s.m.Store.Head(t.Context()); after != head {
		t.Fatalf("the refused grant wrote %d events", after-head)
	}
}

// TestEnrollmentTokenNotKept: an enrollment token issued under an
// Idempotency-Key is not stored in the idempotency table.
func TestEnrollmentTokenNotKept(t *testing.T) {
	s := startServer(t, nil)
	admin := s.admin(t)
	req, _ := http.NewRequest("POST", s.base+"/api/v1/admin/enrollment-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Idempotency-Key", "enroll-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var et struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&et)
	resp.Body.Close()
	if et.Token == "" {
		t.Fatalf("no token: %s", resp.Status)
	}
	var n int
	// The answer (the token) would be stored base64-encoded: no answer may be kept at all.
	if err := s.m.DB.QueryRow(t.Context(), "SELECT COUNT(*) FROM idempotency_keys WHERE key = ? AND response IS NOT NULL", "enroll-1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the idempotency table kept the answer holding the enrollment token (%d rows, %v)", n, err)
	}
}

// TestDataDirOwnerOnly: the data dir and the files in it (events, state,
// keys) end up readable by their owner alone, even when the directory
// existed with a looser mode.
func TestDataDirOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "leftover"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	startServer(t, func(c *Config) { c.DataDir = dir })
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, _ := e.Info(); e.Type().IsRegular() && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: readable by others", e.Name(), info.Mode().Perm())
		}
	}
}
