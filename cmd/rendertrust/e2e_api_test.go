package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/identity"
)

// server is the real Main on a loopback port with a temporary data dir.
type server struct {
	m    *Main
	base string
}

func startServer(tb testing.TB, configure func(*Config)) *server {
	tb.Helper()
	m := NewMain()
	m.Config = Config{Addr: "127.0.0.1:0", DataDir: tb.TempDir(), Dev: true, NoLocalNode: true, LogLevel: "warn", CORSOrigins: "app://rendertrust"}
	if configure != nil {
		configure(&m.Config)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("run: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return &server{m: m, base: "http://" + m.Addr()}
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (s *server) call(tb testing.TB, method, path, token string, body any, out any) int {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, s.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// errCode is the code of an error answer.
type errorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type tokens struct {
	AccessToken  string        `json:"access_token"`
	RefreshToken string        `json:"refresh_token"`
	TokenType    string        `json:"token_type"`
	ExpiresIn    int           `json:"expires_in"`
	User         identity.User `json:"user"`
}

func (s *server) register(tb testing.TB, email string) tokens {
	tb.Helper()
	var tok tokens
	if st := s.call(tb, "POST", "/api/v1/auth/register", "", map[string]string{"email": email, "name": "Creator", "password": "correct horse"}, &tok); st != 201 {
		tb.Fatalf("register %s: status %d", email, st)
	}
	return tok
}

// admin creates an operator and returns its access token.
func (s *server) admin(tb testing.TB) string {
	tb.Helper()
	if _, err := s.m.Identity.Register(context.Background(), "ops@example.com", "Ops", "operator password", identity.RoleAdmin); err != nil {
		tb.Fatal(err)
	}
	var tok tokens
	if st := s.call(tb, "POST", "/api/v1/auth/login", "", map[string]string{"email": "ops@example.com", "password": "operator password"}, &tok); st != 200 {
		tb.Fatalf("admin login: %d", st)
	}
	return tok.AccessToken
}

// enrollNode enrolls a node through the API and returns its credential.
func (s *server) enrollNode(tb testing.TB, adminToken string, slots int) string {
	tb.Helper()
	var et struct{ Token string }
	if st := s.call(tb, "POST", "/api/v1/admin/enrollment-tokens", adminToken, nil, &et); st != 201 {
		tb.Fatalf("enrollment token: %d", st)
	}
	var en struct{ NodeID, Credential string }
	body := map[string]any{"token": et.Token, "name": "test node", "job_types": []string{"render", "inference", "generic", "cpu_benchmark", "echo"}, "slots": slots}
	if st := s.call(tb, "POST", "/api/v1/nodes/enroll", "", body, &en); st != 201 {
		tb.Fatalf("enroll: %d", st)
	}
	if st := s.call(tb, "POST", "/api/v1/nodes/heartbeat", en.Credential, nil, nil); st != 200 {
		tb.Fatalf("heartbeat: %d", st)
	}
	return en.Credential
}

type submitted struct {
	JobID  string `json:"job_id"`
	NodeID string `json:"node_id"`
	Status string `json:"status"`
	Cost   int    `json:"cost"`
}

type balance struct{ Balance, Held, Available int }

// eventually retries check until it returns "" or the deadline passes.
func eventually(tb testing.TB, what string, check func() string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCreatorJourney follows the creator guide over HTTP on the embedded
// default: 1. register (logged in at once) and log in; 2. no node: 503;
// 3. buy credits (dev provider); 4. a node enrolls; 5. submit every job
// type, in each payload form; 6. list with filters, cancel; 7. the node runs
// a render job to completion and uploads its result; 8. download it without
// a token, refused once altered; 9. the deduction and the usage chart move;
// 10. out of credits: 402; another user's job: 404.
func TestCreatorJourney(t *testing.T) {
	s := startServer(t, nil)
	user := s.register(t, "creator@example.com")
	if user.TokenType != "Bearer" || user.ExpiresIn <= 0 || user.User.ID == "" {
		t.Fatalf("step 1: register answered %+v", user)
	}
	var login tokens
	if st := s.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "CREATOR@example.com", "password": "correct horse"}, &login); st != 200 {
		t.Fatalf("step 1: login %d", st)
	}
	tok := login.AccessToken
	var e errorAnswer
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "echo", "payload_ref": "s3://b/k"}, &e); st != 503 || e.Error.Code != "no_healthy_nodes" {
		t.Fatalf("step 2: %d %+v, want 503 no_healthy_nodes", st, e)
	}
	// Too few credits is said first, whatever the nodes: 402, not 503.
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": "s3://b/k"}, &e); st != 402 || e.Error.Code != "insufficient_credits" {
		t.Fatalf("step 2: render without credits or nodes: %d %+v, want 402 insufficient_credits", st, e)
	}
	var co struct{ Dev bool }
	if st := s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, &co); st != 200 || !co.Dev {
		t.Fatalf("step 3: checkout %d %+v", st, co)
	}
	var b balance
	s.call(t, "GET", "/api/v1/credits/balance", tok, nil, &b)
	if b != (balance{100, 0, 100}) {
		t.Fatalf("step 3: balance %+v, want 100 available", b)
	}
	node := s.enrollNode(t, s.admin(t), 8)
	jobs := s.submitEveryType(t, tok)
	s.listAndCancel(t, tok, jobs)
	s.runToCompletion(t, tok, node, jobs["render"], 4)
	eventually(t, "step 9: deduction", func() string {
		s.call(t, "GET", "/api/v1/credits/balance", tok, nil, &b)
		if b.Balance != 90 {
			return fmt.Sprintf("balance %+v, want 90 after the render's deduction", b)
		}
		return ""
	})
	var usage struct {
		Days []struct {
			Date    string
			Credits int
		}
		Total int
	}
	s.call(t, "GET", "/api/v1/credits/usage?days=7&tz=America/New_York", tok, nil, &usage)
	if len(usage.Days) != 7 || usage.Total != 10 || usage.Days[6].Credits+usage.Days[5].Credits != 10 {
		t.Fatalf("step 9: usage %+v, want 7 days totalling 10", usage)
	}
	s.outOfCreditsAndOthers(t, jobs["render"])
}

// submitEveryType submits one job of each type and returns their ids by type.
func (s *server) submitEveryType(t *testing.T, tok string) map[string]string {
	bodies := map[string]map[string]any{
		"render":        {"job_type": "render", "payload_ref": "s3://bucket/scene.blend"},
		"inference":     {"job_type": "inference", "payload": map[string]string{"ref": "ipfs://bafybeigdyrzt5"}, "gpu_required": false},
		"generic":       {"job_type": "generic", "payload": map[string]any{"steps": []int{1, 2, 3}}, "priority": "high"},
		"cpu_benchmark": {"job_type": "cpu_benchmark", "payload": map[string]int{"rounds": 1}, "priority": "low"},
		"echo":          {"job_type": "echo", "payload": map[string]string{"hello": "world"}},
	}
	costs := map[string]int{"render": 10, "inference": 5, "generic": 1, "cpu_benchmark": 1, "echo": 0}
	ids := map[string]string{}
	for typ, body := range bodies {
		var sub submitted
		if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, body, &sub); st != 201 {
			t.Fatalf("step 5: submit %s: %d", typ, st)
		}
		if sub.Status != "DISPATCHED" || sub.NodeID == "" || sub.Cost != costs[typ] {
			t.Fatalf("step 5: %s answered %+v, want DISPATCHED with a node, cost %d", typ, sub, costs[typ])
		}
		ids[typ] = sub.JobID
	}
	return ids
}

type jobView struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	NodeID       string `json:"node_id"`
	ResultSHA256 string `json:"result_sha256"`
	Charged      int    `json:"charged"`
}

func (s *server) listAndCancel(t *testing.T, tok string, jobs map[string]string) {
	var page struct {
		Jobs []jobView `json:"jobs"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs?status=dispatched", tok, nil, &page); st != 200 || len(page.Jobs) != 5 {
		t.Fatalf("step 6: list DISPATCHED: %d, %d jobs; want 5", st, len(page.Jobs))
	}
	var cancelled struct{ Status string }
	if st := s.call(t, "POST", "/api/v1/jobs/"+jobs["echo"]+"/cancel", tok, nil, &cancelled); st != 200 || cancelled.Status != "CANCELLED" {
		t.Fatalf("step 6: cancel: %d %+v", st, cancelled)
	}
	s.call(t, "GET", "/api/v1/jobs?status=CANCELLED", tok, nil, &page)
	if len(page.Jobs) != 1 || page.Jobs[0].ID != jobs["echo"] {
		t.Fatalf("step 6: CANCELLED filter gave %+v", page.Jobs)
	}
	var e errorAnswer
	if st := s.call(t, "POST", "/api/v1/jobs/"+jobs["echo"]+"/cancel", tok, nil, &e); st != 409 {
		t.Fatalf("step 6: second cancel: %d %+v, want 409", st, e)
	}
}

func (s *server) runToCompletion(t *testing.T, tok, node, jobID string, wantAssigned int) {
	var as struct {
		Jobs []struct{ JobID, PayloadRef string } `json:"jobs"`
	}
	if st := s.call(t, "GET", "/api/v1/nodes/assignments?wait=1", node, nil, &as); st != 200 || len(as.Jobs) != wantAssigned {
		t.Fatalf("step 7: assignments %d %+v, want the %d uncancelled jobs", st, as, wantAssigned)
	}
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+jobID+"/started", node, nil, nil); st != 200 {
		t.Fatalf("step 7: started: %d", st)
	}
	result := []byte("rendered frame 0001\n")
	sum := sha256.Sum256(result)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+jobID+"/result", bytes.NewReader(result))
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("step 7: upload: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	var j jobView
	s.call(t, "GET", "/api/v1/jobs/"+jobID, tok, nil, &j)
	if j.Status != "COMPLETED" || j.ResultSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("step 7: job %+v, want COMPLETED with the result's hash", j)
	}
	var link struct {
		DownloadURL string `json:"download_url"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if st := s.call(t, "GET", "/api/v1/jobs/"+jobID+"/result", tok, nil, &link); st != 200 || link.ExpiresIn != 3600 {
		t.Fatalf("step 8: result link %d %+v", st, link)
	}
	if got := download(t, link.DownloadURL); !bytes.Equal(got, result) {
		t.Fatalf("step 8: downloaded %q, want %q", got, result)
	}
	altered := strings.Replace(link.DownloadURL, "expires=", "expires=9", 1)
	if resp, _ := http.Get(altered); resp.StatusCode != 403 {
		t.Fatalf("step 8: altered link answered %d, want 403", resp.StatusCode)
	}
}

func download(t *testing.T, url string) []byte {
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, resp.Status)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func (s *server) outOfCreditsAndOthers(t *testing.T, otherJob string) {
	broke := s.register(t, "broke@example.com").AccessToken
	var e errorAnswer
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", broke, map[string]any{"job_type": "render", "payload_ref": "s3://b/k"}, &e); st != 402 || e.Error.Code != "insufficient_credits" {
		t.Fatalf("step 10: %d %+v, want 402 insufficient_credits", st, e)
	}
	for _, path := range []string{"/api/v1/jobs/" + otherJob, "/api/v1/jobs/" + otherJob + "/result"} {
		if st := s.call(t, "GET", path, broke, nil, &e); st != 404 || e.Error.Code != "not_found" {
			t.Fatalf("step 10: GET %s as another user: %d %+v, want 404", path, st, e)
		}
	}
	if st := s.call(t, "POST", "/api/v1/jobs/"+otherJob+"/cancel", broke, nil, &e); st != 404 {
		t.Fatalf("step 10: cancel another user's job: %d, want 404", st)
	}
}
