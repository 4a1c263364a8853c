package client_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeAPI is a small, hand-written stand-in for the RenderTrust API: enough
// of auth (rotating refresh tokens), jobs, results and credits to exercise
// the client. The real server is exercised by cmd/rendertrust's end-to-end
// test.
type fakeAPI struct {
	mu        sync.Mutex
	password  map[string]string // email → password
	access    map[string]bool   // valid access tokens
	refresh   map[string]bool   // valid refresh tokens
	n         int               // token counter
	refreshes int               // refresh calls answered
	available int64
	jobs      []fakeJob
	results   map[string][]byte
	tamper    bool // serve results with a flipped byte
	// downloadAuth records the Authorization header of the last download.
	downloadAuth string
	ttl          int // expires_in of issued access tokens, seconds
}

type fakeJob struct {
	ID      string    `json:"id"`
	JobType string    `json:"job_type"`
	Status  string    `json:"status"`
	Cost    int64     `json:"cost"`
	At      time.Time `json:"submitted_at"`
}

var prices = map[string]int64{"render": 10, "inference": 5, "generic": 1, "cpu_benchmark": 1, "echo": 0}

func startFake() (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{password: map[string]string{}, access: map[string]bool{}, refresh: map[string]bool{},
		results: map[string][]byte{}, ttl: 900}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/register", f.register)
	mux.HandleFunc("POST /api/v1/auth/login", f.login)
	mux.HandleFunc("POST /api/v1/auth/refresh", f.rotate)
	mux.HandleFunc("POST /api/v1/jobs/dispatch", f.authed(f.dispatch))
	mux.HandleFunc("GET /api/v1/jobs", f.authed(f.list))
	mux.HandleFunc("GET /api/v1/jobs/{id}", f.authed(f.get))
	mux.HandleFunc("GET /api/v1/jobs/{id}/result", f.authed(f.resultLink))
	mux.HandleFunc("GET /api/v1/results/{id}", f.download)
	mux.HandleFunc("GET /api/v1/credits/balance", f.authed(f.balance))
	mux.HandleFunc("GET /api/v1/ledger/{id}/proof", f.authed(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 503, "unavailable", "the anchoring service is not running")
	}))
	return f, httptest.NewServer(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// issue returns a fresh token pair; f.mu must be held.
func (f *fakeAPI) issue() map[string]any {
	f.n++
	at, rt := fmt.Sprintf("at-%d", f.n), fmt.Sprintf("rt-%d", f.n)
	f.access[at], f.refresh[rt] = true, true
	return map[string]any{"access_token": at, "refresh_token": rt, "token_type": "Bearer", "expires_in": f.ttl,
		"user": map[string]string{"id": "u1", "email": "ada@example.com", "name": "Ada", "role": "creator"}}
}

// expireAccess revokes every access token, as their expiry would.
func (f *fakeAPI) expireAccess() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.access)
}

func (f *fakeAPI) register(w http.ResponseWriter, r *http.Request) {
	var req struct{ Email, Password string }
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.password[req.Email]; ok {
		writeErr(w, 409, "conflict", "email already registered")
		return
	}
	f.password[req.Email] = req.Password
	writeJSON(w, 201, f.issue())
}

func (f *fakeAPI) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Email, Password string }
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.password[req.Email]; !ok || p != req.Password {
		writeErr(w, 401, "unauthorized", "invalid email or password")
		return
	}
	writeJSON(w, 200, f.issue())
}

func (f *fakeAPI) rotate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	time.Sleep(10 * time.Millisecond) // widen the window concurrent refreshes would race in
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	if !f.refresh[req.RefreshToken] {
		clear(f.refresh) // reuse of a spent token revokes the family
		writeErr(w, 401, "unauthorized", "refresh token invalid or reused")
		return
	}
	delete(f.refresh, req.RefreshToken)
	writeJSON(w, 200, f.issue())
}

func (f *fakeAPI) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.access[tok]
		f.mu.Unlock()
		if !ok {
			writeErr(w, 401, "unauthorized", "missing or invalid access token")
			return
		}
		h(w, r)
	}
}

func (f *fakeAPI) dispatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JobType string          `json:"job_type"`
		Payload json.RawMessage `json:"payload"`
		Ref     string          `json:"payload_ref"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	cost, ok := prices[req.JobType]
	if !ok {
		writeErr(w, 400, "invalid", "unknown job type")
		return
	}
	if req.JobType == "inference" {
		writeErr(w, 503, "no_healthy_nodes", "no healthy nodes for inference jobs")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cost > f.available {
		writeErr(w, 402, "insufficient_credits", "insufficient credits")
		return
	}
	f.available -= cost
	id := fmt.Sprintf("job-%d", len(f.jobs)+1)
	f.jobs = append(f.jobs, fakeJob{ID: id, JobType: req.JobType, Status: "COMPLETED", Cost: cost,
		At: time.Date(2026, 1, 1, 0, len(f.jobs), 0, 0, time.UTC)})
	result := []byte(req.Ref)
	if req.Ref == "" {
		result = req.Payload
	}
	f.results[id] = result
	writeJSON(w, 201, map[string]any{"job_id": id, "node_id": "node-1", "status": "DISPATCHED", "cost": cost})
}

// list pages the jobs newest first, two per page unless ?limit= says.
func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sel []fakeJob
	for i := len(f.jobs) - 1; i >= 0; i-- {
		if st := r.URL.Query().Get("status"); st == "" || st == f.jobs[i].Status {
			sel = append(sel, f.jobs[i])
		}
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	limit := 2
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l < limit {
		limit = l
	}
	to := min(from+limit, len(sel))
	next := ""
	if to < len(sel) {
		next = strconv.Itoa(to)
	}
	writeJSON(w, 200, map[string]any{"jobs": sel[from:to], "next_cursor": next})
}

func (f *fakeAPI) job(id string) (fakeJob, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			return j, true
		}
	}
	return fakeJob{}, false
}

func (f *fakeAPI) get(w http.ResponseWriter, r *http.Request) {
	j, ok := f.job(r.PathValue("id"))
	if !ok {
		writeErr(w, 404, "not_found", "job not found")
		return
	}
	writeJSON(w, 200, j)
}

func (f *fakeAPI) resultLink(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := f.job(id); !ok {
		writeErr(w, 404, "not_found", "job not found")
		return
	}
	f.mu.Lock()
	res := f.results[id]
	f.mu.Unlock()
	sum := sha256.Sum256(res)
	writeJSON(w, 200, map[string]any{"download_url": "http://" + r.Host + "/api/v1/results/" + id + "?signature=ok",
		"expires_in": 3600, "result_sha256": hex.EncodeToString(sum[:]), "result_bytes": len(res)})
}

func (f *fakeAPI) download(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downloadAuth = r.Header.Get("Authorization")
	if r.URL.Query().Get("signature") != "ok" {
		writeErr(w, 403, "forbidden", "download link invalid or expired")
		return
	}
	b := append([]byte(nil), f.results[r.PathValue("id")]...)
	if f.tamper && len(b) > 0 {
		b[0] ^= 1
	}
	w.Write(b)
}

func (f *fakeAPI) balance(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, 200, map[string]int64{"balance": f.available, "held": 0, "available": f.available})
}
