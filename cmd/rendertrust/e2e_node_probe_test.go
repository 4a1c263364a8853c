package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rawCall sends a request with a raw body and returns the status and body.
func (s *server) rawCall(tb testing.TB, method, path, token string, body []byte, header http.Header) (int, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if strings.HasPrefix(string(body), "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestNodeCannotProbeJobs: a node's reports on a job assigned to another
// node answer exactly as for a job that does not exist, whatever that job's
// status (they answered 403 wrong node or 409 with the job's status).
func TestNodeCannotProbeJobs(t *testing.T) {
	s := startServer(t, nil)
	admin := s.admin(t)
	tok := s.register(t, "probe@example.com").AccessToken
	if st := s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil); st != 200 {
		t.Fatalf("checkout: %d", st)
	}
	a := s.enrollNode(t, admin, 1)
	running := s.runningJob(t, tok, a)
	const missing = "01a23f5a-0000-7000-8000-000000000000"
	probes := []struct {
		name, method, suffix string
		body                 []byte
		header               http.Header
	}{
		{"Started", "POST", "/started", nil, nil},
		{"Failed", "POST", "/failed", []byte(`{"error":"x"}`), nil},
		{"Result", "PUT", "/result", []byte("r"), http.Header{"X-Result-Sha256": {strings.Repeat("0", 64)}}},
	}
	b := s.enrollNode(t, admin, 1)
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			wantStatus, wantBody := s.rawCall(t, p.method, "/api/v1/nodes/jobs/"+missing+p.suffix, b, p.body, p.header)
			status, body := s.rawCall(t, p.method, "/api/v1/nodes/jobs/"+running+p.suffix, b, p.body, p.header)
			if wantStatus != 404 || status != wantStatus || errorOf(body, running) != errorOf(wantBody, missing) {
				t.Fatalf("another node's job answered %d %s; a missing job %d %s", status, body, wantStatus, wantBody)
			}
		})
	}
	// The job was left alone: node A still completes it.
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+running+"/failed", a, map[string]string{"error": "done"}, nil); st != 200 {
		t.Fatalf("node A's own report: %d", st)
	}
}

// errorOf is the error of an API answer, with id replaced by "ID".
func errorOf(body []byte, id string) string {
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(body, &e)
	return e.Error.Code + ": " + strings.ReplaceAll(e.Error.Message, id, "ID")
}

// TestResultLinkIgnoresHost: without --public-url a download link names
// the address the server listens on, whatever Host the request carries
// (the link, signature included, pointed at the request's Host).
func TestResultLinkIgnoresHost(t *testing.T) {
	s := startServer(t, nil)
	tok := s.register(t, "host@example.com").AccessToken
	if st := s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil); st != 200 {
		t.Fatalf("checkout: %d", st)
	}
	node := s.enrollNode(t, s.admin(t), 1)
	job := s.runningJob(t, tok, node)
	content := []byte("result")
	resp, err := http.DefaultClient.Do(s.uploadRequest(job, node, bytes.NewReader(content), content))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, h := range []http.Header{{"Host": {"attacker.example"}}, {"X-Forwarded-Host": {"attacker.example"}, "X-Forwarded-Proto": {"https"}}} {
		st, body := s.rawCall(t, "GET", "/api/v1/jobs/"+job+"/result", tok, nil, h)
		var link struct {
			URL string `json:"download_url"`
		}
		json.Unmarshal(body, &link)
		if st != 200 || !strings.HasPrefix(link.URL, s.base+"/api/v1/results/") {
			t.Fatalf("with %v the link is %d %q, want it under %s", h, st, link.URL, s.base)
		}
	}
}
