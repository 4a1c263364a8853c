package main

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestDevQuickStart is the README's quick start: `serve --dev` alone gives
// a working system. 1. Register and buy credits (dev provider); 2. submit an
// echo job, which the built-in local node runs; 3. download its result: the
// payload, with the SHA-256 the job recorded.
func TestDevQuickStart(t *testing.T) {
	s := startServer(t, func(c *Config) { c.NoLocalNode = false })
	tok := s.register(t, "quick@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	var sub submitted
	eventually(t, "step 2: the local node is up", func() string {
		if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "echo", "payload": map[string]string{"hello": "world"}}, &sub); st != 201 {
			return "dispatch answered " + sub.Status
		}
		return ""
	})
	var j jobView
	eventually(t, "step 2: echo job completes", func() string {
		s.call(t, "GET", "/api/v1/jobs/"+sub.JobID, tok, nil, &j)
		if j.Status != "COMPLETED" {
			return "status " + j.Status
		}
		return ""
	})
	var link struct {
		DownloadURL string `json:"download_url"`
	}
	s.call(t, "GET", "/api/v1/jobs/"+sub.JobID+"/result", tok, nil, &link)
	got := download(t, link.DownloadURL)
	sum := sha256.Sum256(got)
	if string(got) != `{"hello":"world"}` || hex.EncodeToString(sum[:]) != j.ResultSHA256 {
		t.Fatalf("step 3: downloaded %q (sha %x), job recorded %s", got, sum, j.ResultSHA256)
	}
}
