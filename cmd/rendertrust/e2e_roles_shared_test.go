package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// TestRolesSharedStateAcrossAPIProcesses: what a client may send to any
// API process holds across all of them, because it lives in PostgreSQL:
//
//  1. a worker and two api-only processes A and B share one database and
//     one signing key; a creator registers through A;
//  2. A's access token is accepted by B;
//  3. a submission through A and its retry through B with the same
//     Idempotency-Key are one job: the same id, charged one hold;
//  4. a refresh token rotated through B and reused through A revokes the
//     family on both;
//  5. failed logins through A and B count together: after the limit's
//     failures, split between them, the right password is refused with 429
//     and Retry-After.
func TestRolesSharedStateAcrossAPIProcesses(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	dsn, bin, key := pgtest.NewDatabase(t), crashBinary(t), rolesKeyFile(t)

	// 1.
	worker := startRolesProcess(t, bin, dsn, "worker", "--jwt-key-file", key)
	worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	apiA := startRolesProcess(t, bin, dsn, "api-a", "--roles", "api", "--jwt-key-file", key)
	apiB := startRolesProcess(t, bin, dsn, "api-b", "--roles", "api", "--jwt-key-file", key)
	a := e2eCreatorWithCredits(t, apiA.base)
	node := startRolesNode(t, apiA.base, rolesEnrollmentToken(t, dsn))

	// 2.
	b, err := client.New(apiB.base, client.WithTokens(a.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	if me, err := b.Me(context.Background()); err != nil || me.Email != "creator@example.com" {
		t.Fatalf("step 2: B answered A's token with %+v, %v", me, err)
	}

	// 3.
	first := rolesSubmit(t, a, "shared-key")
	retried, err := b.SubmitJob(context.Background(), client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: "shared-key"})
	if err != nil || retried.JobID != first {
		t.Fatalf("step 3: the retry through B answered job %q, %v; want the first's %s", retried.JobID, err, first)
	}
	e2eJobReaches(t, a, first, client.StatusCompleted)
	rolesAllCharged(t, a, node, []string{first})

	// 4.
	var reg, rotated struct {
		RefreshToken string `json:"refresh_token"`
	}
	rolesPost(t, apiA.base, "/api/v1/auth/register", map[string]string{"email": "r@example.com", "name": "R", "password": "right password"}, http.StatusCreated, &reg)
	rolesPost(t, apiB.base, "/api/v1/auth/refresh", map[string]string{"refresh_token": reg.RefreshToken}, http.StatusOK, &rotated)
	rolesPost(t, apiA.base, "/api/v1/auth/refresh", map[string]string{"refresh_token": reg.RefreshToken}, http.StatusUnauthorized, nil)
	rolesPost(t, apiB.base, "/api/v1/auth/refresh", map[string]string{"refresh_token": rotated.RefreshToken}, http.StatusUnauthorized, nil)

	// 5.
	wrong := map[string]string{"email": "r@example.com", "password": "wrong password"}
	for i := range 5 {
		base := []string{apiA.base, apiB.base}[i%2]
		rolesPost(t, base, "/api/v1/auth/login", wrong, http.StatusUnauthorized, nil)
	}
	resp := rolesPost(t, apiA.base, "/api/v1/auth/login", map[string]string{"email": "r@example.com", "password": "right password"}, http.StatusTooManyRequests, nil)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("step 5: 429 without Retry-After")
	}
}

// rolesPost POSTs body as JSON to base+path, fails unless the answer has
// status want, decodes it into out (when not nil) and returns it.
func rolesPost(t *testing.T, base, path string, body any, want int, out any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e bytes.Buffer
		e.ReadFrom(resp.Body)
		t.Fatalf("POST %s to %s: %s %s, want %d", path, base, resp.Status, e.String(), want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}
	return resp
}
