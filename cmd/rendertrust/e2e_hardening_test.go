package main

import (
	"fmt"
	"io"
	"net/http"
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
// become metric labels: they are counted as "other" and "unmatched".
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
	if !strings.Contains(body, `method="other",route="unmatched"`) {
		t.Fatalf("no request counted as method other, route unmatched:\n%s", grepLines(body, "rendertrust_http_requests_total"))
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
