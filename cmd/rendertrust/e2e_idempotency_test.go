package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// keyed sends a POST with an Idempotency-Key and returns the status, the
// decoded body and whether the answer was replayed.
func (s *server) keyed(t *testing.T, path, token, key string, body any, out any) (int, bool) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true"
}

// TestIdempotencyKeys: every POST honours Idempotency-Key: the same key and
// body return the first answer without doing it again; the same key with
// another body is a 409 and writes nothing.
func TestIdempotencyKeys(t *testing.T) {
	s := startServer(t, nil)
	adminTok := s.admin(t)
	user := s.register(t, "keys@example.com")
	s.enrollNode(t, adminTok, 8)
	grant := map[string]any{"user_id": string(user.User.ID), "amount": 50, "reason": "welcome"}
	for i := range 2 {
		if st, replayed := s.keyed(t, "/api/v1/admin/grants", adminTok, "grant-1", grant, nil); st != 201 || replayed != (i == 1) {
			t.Fatalf("grant %d: %d replayed=%v", i, st, replayed)
		}
	}
	var b balance
	s.call(t, "GET", "/api/v1/credits/balance", user.AccessToken, nil, &b)
	if b.Balance != 50 {
		t.Fatalf("balance %d after a repeated grant, want 50 (granted once)", b.Balance)
	}
	body := map[string]any{"job_type": "render", "payload_ref": "s3://b/k"}
	var first, again submitted
	s.keyed(t, "/api/v1/jobs/dispatch", user.AccessToken, "job-1", body, &first)
	if st, replayed := s.keyed(t, "/api/v1/jobs/dispatch", user.AccessToken, "job-1", body, &again); st != 201 || !replayed || again.JobID != first.JobID {
		t.Fatalf("repeat: %d replayed=%v %+v vs %+v", st, replayed, again, first)
	}
	before, _ := s.m.Store.Head(t.Context())
	var e errorAnswer
	if st, _ := s.keyed(t, "/api/v1/jobs/dispatch", user.AccessToken, "job-1", map[string]any{"job_type": "echo", "payload_ref": "s3://b/k"}, &e); st != 409 || e.Error.Code != "conflict" {
		t.Fatalf("same key, other body: %d %+v, want 409 conflict", st, e)
	}
	if after, _ := s.m.Store.Head(t.Context()); after != before {
		t.Fatalf("the conflicting request wrote: head %d → %d", before, after)
	}
	for i := range 2 {
		if st, replayed := s.keyed(t, "/api/v1/jobs/"+first.JobID+"/cancel", user.AccessToken, "cancel-1", nil, nil); st != 200 || replayed != (i == 1) {
			t.Fatalf("cancel %d: %d replayed=%v, want 200 both times", i, st, replayed)
		}
	}
	eventually(t, "the cancel's release", func() string {
		s.call(t, "GET", "/api/v1/credits/balance", user.AccessToken, nil, &b)
		if b.Available != 50 || b.Held != 0 {
			return "balance not back to 50 available"
		}
		return ""
	})
}
