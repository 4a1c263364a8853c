package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// uploadRequest is a node's result upload of body for job.
func (s *server) uploadRequest(job, node string, body io.Reader, content []byte) *http.Request {
	sum := sha256.Sum256(content)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+job+"/result", body)
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	return req
}

// resultFiles lists the stored results of job (not uploads in progress).
func resultFiles(tb testing.TB, dir, job string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), job+".") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// runningJob submits an echo job and has node start it.
func (s *server) runningJob(tb testing.TB, owner, node string) string {
	tb.Helper()
	var sub submitted
	if st := s.call(tb, "POST", "/api/v1/jobs/dispatch", owner, map[string]any{"job_type": "echo", "payload_ref": "s3://b/k"}, &sub); st != 201 {
		tb.Fatalf("submit: %d", st)
	}
	if st := s.call(tb, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil); st != 200 {
		tb.Fatalf("started: %d", st)
	}
	return sub.JobID
}

// TestUploadLeavesNoOrphan: a result stored for a job that then cannot
// complete with it is not left behind.
//  1. a node's upload is under way when the job fails (its node reports
//     the failure): the upload is refused and its stored file removed
//     (it stayed, referenced by nothing);
//  2. two uploads of different content for one job race: one completes
//     the job, the other is refused, and the job's only stored result is
//     the one it completed with.
func TestUploadLeavesNoOrphan(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, func(c *Config) { c.DataDir = data })
	results := filepath.Join(data, "results")
	tok := s.register(t, "race@example.com").AccessToken
	if st := s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil); st != 200 {
		t.Fatalf("checkout: %d", st)
	}
	node := s.enrollNode(t, s.admin(t), 2)

	// 1.
	job := s.runningJob(t, tok, node)
	content := bytes.Repeat([]byte("a"), 64<<10)
	pr, pw := io.Pipe()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(s.uploadRequest(job, node, pr, content))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if _, err := pw.Write(content[:1024]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "step 1: the server storing the upload", func() string {
		entries, _ := os.ReadDir(results)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".upload-") {
				return ""
			}
		}
		return "no upload in progress in " + results
	})
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+job+"/failed", node, map[string]string{"error": "gave up"}, nil); st != 200 {
		t.Fatalf("step 1: failed: %d", st)
	}
	pw.Write(content[1024:])
	pw.Close()
	if st := <-answered; st != 409 {
		t.Fatalf("step 1: the upload for a job that failed meanwhile answered %d, want 409", st)
	}
	if files := resultFiles(t, results, job); len(files) != 0 {
		t.Fatalf("step 1: the refused upload left %v in the result store", files)
	}

	// 2.
	job = s.runningJob(t, tok, node)
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			content := []byte(fmt.Sprintf("result %d", i))
			resp, err := http.DefaultClient.Do(s.uploadRequest(job, node, bytes.NewReader(content), content))
			if err != nil {
				t.Errorf("step 2: upload %d: %v", i, err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	sort.Ints(statuses)
	if statuses[0] != 200 || statuses[1] != 409 {
		t.Fatalf("step 2: two racing uploads answered %v, want one 200 and one 409", statuses)
	}
	var j struct {
		ResultSHA256 string `json:"result_sha256"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs/"+job, tok, nil, &j); st != 200 || j.ResultSHA256 == "" {
		t.Fatalf("step 2: job %d %+v", st, j)
	}
	if files := resultFiles(t, results, job); len(files) != 1 || files[0] != job+"."+j.ResultSHA256 {
		t.Fatalf("step 2: stored results %v, want only %s.%s", files, job, j.ResultSHA256)
	}
}
