package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/node"
)

// guideJob is a job detail as the guide's examples read it.
type guideJob struct {
	ID           string `json:"id"`
	Type         string `json:"job_type"`
	Status       string `json:"status"`
	ResultSHA256 string `json:"result_sha256"`
}

// waitCompleted waits for a job to be COMPLETED and returns it.
func (s *server) waitCompleted(t *testing.T, tok, id string) guideJob {
	t.Helper()
	var j guideJob
	eventually(t, "job "+id+" completes", func() string {
		s.call(t, "GET", "/api/v1/jobs/"+id, tok, nil, &j)
		if j.Status != "COMPLETED" {
			return "status " + j.Status
		}
		return ""
	})
	return j
}

// downloadResult fetches a completed job's result through its link (no
// token) and checks it against the SHA-256 the job recorded.
func (s *server) downloadResult(t *testing.T, tok string, j guideJob) []byte {
	t.Helper()
	var link struct {
		DownloadURL string `json:"download_url"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs/"+j.ID+"/result", tok, nil, &link); st != 200 || link.ExpiresIn != 3600 {
		t.Fatalf("result link of %s: %d %+v", j.ID, st, link)
	}
	got := download(t, link.DownloadURL)
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != j.ResultSHA256 {
		t.Fatalf("downloaded %d bytes of %s, sha256 %x; the job recorded %s", len(got), j.ID, sum, j.ResultSHA256)
	}
	return got
}

// TestGuideExamples runs the creator guide's examples, as written, against
// `serve --dev` and its local node: 1. the curl shapes — register, buy
// credits, dispatch the guide's very first job ({"job_type": "render",
// "payload_ref": "s3://bucket/scene.blend"}, which no dev machine can
// fetch) and download its result, a demo PNG; 2. the job types as the
// guide writes them, in any case, with its cost table from GET jobs/types;
// 3. inference and generic jobs; 4. the Go SDK's walkthrough: login,
// submit with payload {"ref": …}, get, list by status, download.
func TestGuideExamples(t *testing.T) {
	s := startServer(t, func(c *Config) { c.NoLocalNode = false })
	tok := s.register(t, "guide@example.com").AccessToken
	if st := s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil); st != 200 {
		t.Fatalf("step 1: checkout %d", st)
	}
	var sub submitted
	eventually(t, "step 1: the guide's render example is accepted", func() string {
		if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": "s3://bucket/scene.blend"}, &sub); st != 201 {
			return "dispatch answered " + sub.Status
		}
		return ""
	})
	card := s.downloadResult(t, tok, s.waitCompleted(t, tok, sub.JobID))
	if _, err := png.Decode(bytes.NewReader(card)); err != nil {
		t.Fatalf("step 1: the render's result is not a PNG: %v", err)
	}
	if !bytes.Contains(card, []byte(node.DemoNote)) || !bytes.Contains(card, []byte("s3://bucket/scene.blend")) && !bytes.Contains(card, []byte("reference sha256:")) {
		t.Fatalf("step 1: the demo PNG does not say it is a demo made from the reference")
	}

	guideJobTypes(t, s, tok)

	for typ, body := range map[string]map[string]any{
		"inference": {"job_type": "Inference", "payload": map[string]string{"prompt": "a lighthouse at dusk"}},
		"generic":   {"job_type": "generic", "payload": map[string]string{"ref": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}},
	} {
		var sub submitted
		if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, body, &sub); st != 201 {
			t.Fatalf("step 3: %s dispatch %d", typ, st)
		}
		j := s.waitCompleted(t, tok, sub.JobID)
		if j.Type != typ {
			t.Errorf("step 3: job_type %q, want the canonical %q", j.Type, typ)
		}
		if out := s.downloadResult(t, tok, j); !bytes.Contains(out, []byte(`"executor":"demo"`)) {
			t.Errorf("step 3: %s result %s, want a labelled demo answer", typ, out)
		}
	}
	guideSDK(t, s)
}

// guideJobTypes is step 2: the cost table and case-insensitive types.
func guideJobTypes(t *testing.T, s *server, tok string) {
	var types struct {
		JobTypes []struct {
			JobType     string `json:"job_type"`
			DisplayName string `json:"display_name"`
			Cost        int    `json:"cost"`
		} `json:"job_types"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs/types", "", nil, &types); st != 200 {
		t.Fatalf("step 2: jobs/types %d", st)
	}
	table := map[string]int{}
	for _, jt := range types.JobTypes {
		table[jt.DisplayName] = jt.Cost
	}
	for name, cost := range map[string]int{"Render": 10, "AI Inference": 5, "CPU Benchmark": 1, "Echo (test)": 0} {
		if got, ok := table[name]; !ok || got != cost {
			t.Errorf("step 2: the guide's %q costs %d (listed %v), want %d", name, got, ok, cost)
		}
	}
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "CPU_Benchmark"}, &sub); st != 201 || sub.Cost != 1 {
		t.Fatalf("step 2: CPU_Benchmark without a payload: %d %+v", st, sub)
	}
	if j := s.waitCompleted(t, tok, sub.JobID); j.Type != "cpu_benchmark" {
		t.Errorf("step 2: job_type %q, want cpu_benchmark", j.Type)
	}
}

// guideSDK is step 4: the guide's Python walkthrough, with the Go SDK.
func guideSDK(t *testing.T, s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(s.base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "guide@example.com", "correct horse"); err != nil {
		t.Fatalf("step 4: login: %v", err)
	}
	types, err := c.JobTypes(ctx)
	if err != nil || len(types) != 5 {
		t.Fatalf("step 4: JobTypes %+v, %v", types, err)
	}
	result, err := c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobRender, Payload: map[string]string{"ref": "s3://your-bucket/scene.blend"}})
	if err != nil {
		t.Fatalf("step 4: submit: %v", err)
	}
	eventually(t, "step 4: the SDK's job completes", func() string {
		job, err := c.GetJob(ctx, result.JobID)
		if err != nil || job.Status != client.StatusCompleted {
			return "status " + string(job.Status)
		}
		return ""
	})
	done, err := c.ListJobs(ctx, client.StatusCompleted)
	if err != nil || !containsJob(done, result.JobID) {
		t.Fatalf("step 4: ListJobs(COMPLETED) lacks %s: %v", result.JobID, err)
	}
	path := filepath.Join(t.TempDir(), "output.png")
	if _, err := c.DownloadResult(ctx, result.JobID, path); err != nil {
		t.Fatalf("step 4: download: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Fatalf("step 4: output.png is not a PNG: %v", err)
	}
}

func containsJob(jobs []client.Job, id string) bool {
	for _, j := range jobs {
		if j.ID == id {
			return true
		}
	}
	return false
}

// attemptsView is a job detail with its attempts, as the app shows them.
type attemptsView struct {
	Status         string `json:"status"`
	Retrying       bool   `json:"retrying"`
	AttemptHistory []struct {
		Attempt     int    `json:"attempt"`
		NodeID      string `json:"node_id"`
		Outcome     string `json:"outcome"`
		Error       string `json:"error"`
		WillRetry   bool   `json:"will_retry"`
		InputSHA256 string `json:"input_sha256"`
		EndedAt     string `json:"ended_at"`
	} `json:"attempt_history"`
}

// TestFailedAttemptsVisible: the guide's "FAILED — may auto-retry" as a
// creator sees it. 1. A node reports the first attempt failed; 2. the job
// list marks the job retrying, and its detail lists the failed attempt
// with its node, error and time; 3. the second attempt completes with the
// input's SHA-256, which its attempt records.
func TestFailedAttemptsVisible(t *testing.T) {
	s := startServer(t, nil)
	tok := s.register(t, "retry@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	node := s.enrollNode(t, s.admin(t), 1)
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": "https://example.com/scene.blend"}, &sub); st != 201 || sub.NodeID == "" {
		t.Fatalf("step 1: dispatch %d %+v", st, sub)
	}
	s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil)
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/failed", node, map[string]string{"error": "fetch input: 404 not found"}, nil); st != 200 {
		t.Fatalf("step 1: failed: %d", st)
	}
	var page struct {
		Jobs []struct {
			ID       string `json:"id"`
			Retrying bool   `json:"retrying"`
		} `json:"jobs"`
	}
	s.call(t, "GET", "/api/v1/jobs", tok, nil, &page)
	if len(page.Jobs) != 1 || !page.Jobs[0].Retrying {
		t.Fatalf("step 2: list %+v, want the job marked retrying", page)
	}
	var j attemptsView
	s.call(t, "GET", "/api/v1/jobs/"+sub.JobID, tok, nil, &j)
	if len(j.AttemptHistory) != 2 || !j.Retrying {
		t.Fatalf("step 2: detail %+v, want the failed attempt and the redispatched one", j)
	}
	first := j.AttemptHistory[0]
	if first.Attempt != 1 || first.Outcome != "failed" || first.Error != "fetch input: 404 not found" || first.NodeID != sub.NodeID || first.EndedAt == "" || !first.WillRetry {
		t.Fatalf("step 2: first attempt %+v", first)
	}
	s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil)
	result, input := []byte("frame"), sha256.Sum256([]byte("scene"))
	sum := sha256.Sum256(result)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+sub.JobID+"/result", bytes.NewReader(result))
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	req.Header.Set("X-Input-SHA256", hex.EncodeToString(input[:]))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("step 3: upload: %v %v", err, resp.Status)
	}
	s.call(t, "GET", "/api/v1/jobs/"+sub.JobID, tok, nil, &j)
	if last := j.AttemptHistory[len(j.AttemptHistory)-1]; j.Status != "COMPLETED" || j.Retrying || last.Outcome != "completed" || last.InputSHA256 != hex.EncodeToString(input[:]) {
		t.Fatalf("step 3: detail %+v, want COMPLETED with the input's hash on the last attempt", j)
	}
}

// TestNodeFetchesInputs: a real node with a real command. 1. A render
// job's https:// input is fetched and handed to the command as {input};
// the result is the input, and the completion records its SHA-256; 2. a
// job whose input is missing fails each attempt with the reason, ends
// FAILED and is not charged.
func TestNodeFetchesInputs(t *testing.T) {
	scene := []byte("BLENDER scene for the e2e test")
	inputs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/scene.blend" {
			http.NotFound(w, r)
			return
		}
		w.Write(scene)
	}))
	defer inputs.Close()
	s := startServer(t, nil)
	tok := s.register(t, "inputs@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	cat, err := node.ParseCommand("cat {input}", 0)
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, s, map[string]node.Executor{"render": cat}, &node.Fetcher{HTTP: inputs.Client()})
	var ok, missing submitted
	eventually(t, "step 1: the node is up", func() string {
		if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": inputs.URL + "/scene.blend"}, &ok); st != 201 {
			return "dispatch answered " + ok.Status
		}
		return ""
	})
	j := s.waitCompleted(t, tok, ok.JobID)
	if got := s.downloadResult(t, tok, j); !bytes.Equal(got, scene) {
		t.Fatalf("step 1: result %q, want the fetched input", got)
	}
	var detail attemptsView
	s.call(t, "GET", "/api/v1/jobs/"+ok.JobID, tok, nil, &detail)
	if want := sha256.Sum256(scene); detail.AttemptHistory[0].InputSHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("step 1: attempts %+v, want the input's SHA-256 recorded", detail.AttemptHistory)
	}
	s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": inputs.URL + "/gone.blend"}, &missing)
	eventually(t, "step 2: the job with a missing input fails", func() string {
		s.call(t, "GET", "/api/v1/jobs/"+missing.JobID, tok, nil, &detail)
		if detail.Status != "FAILED" {
			return "status " + detail.Status
		}
		return ""
	})
	for _, a := range detail.AttemptHistory {
		if a.Outcome != "failed" || !strings.Contains(a.Error, "input not found") {
			t.Errorf("step 2: attempt %+v, want failed with \"input not found\"", a)
		}
	}
	// The failed job's hold is released by the settlement reactor, after
	// the failure the job's status shows: wait for it.
	eventually(t, "step 2: only the completed render charged", func() string {
		var b balance
		s.call(t, "GET", "/api/v1/credits/balance", tok, nil, &b)
		if b.Balance != 90 || b.Held != 0 {
			return fmt.Sprintf("balance %+v", b)
		}
		return ""
	})
}

// startAgent runs a node agent with executors and a fetcher in this
// process until the test ends.
func startAgent(t *testing.T, s *server, execs map[string]node.Executor, inputs node.InputFetcher) {
	t.Helper()
	token, _, err := s.m.Identity.IssueEnrollmentToken(context.Background(), "admin:guide-test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Server: s.base, EnrollToken: token, Name: "guide-test", Executors: execs, Inputs: inputs,
		HeartbeatInterval: 200 * time.Millisecond, PollWait: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
