package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	rthttp "github.com/rendertrust/rendertrust/http"
)

// signed returns a JWT with the given claims, signed by key with EdDSA.
func signed(t *testing.T, key ed25519.PrivateKey, claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSecurity: every attack on the API gets the right status and writes
// nothing to the log.
//
// Every setup call must answer as expected; after each refused attack the
// row count of every table of every database in the data dir (listed from
// the catalog, so a new table is included) is unchanged. A real enrollment
// token, used once to enroll a node, is refused when presented again.
func TestSecurity(t *testing.T) {
	s := startServer(t, func(c *Config) {
		// No anchor, no lost node during the attacks: nothing writes but them.
		c.AnchorInterval, c.AnchorEvery, c.NodeLostAfter = time.Hour, 1<<40, time.Hour
	})
	victim := s.register(t, "victim@example.com")
	setupStatus(t, "checkout", s.call(t, "POST", "/api/v1/credits/checkout", victim.AccessToken, map[string]string{"package_id": "credits_100"}, nil), 200)
	adminToken := s.admin(t)
	node := s.enrollNode(t, adminToken, 4)
	var job submitted
	setupStatus(t, "submit", s.call(t, "POST", "/api/v1/jobs/dispatch", victim.AccessToken, map[string]any{"job_type": "render", "payload_ref": "s3://b/k"}, &job), 201)
	if job.JobID == "" {
		t.Fatal("setup: the submission answered no job id")
	}
	var et struct{ Token string }
	setupStatus(t, "enrollment token", s.call(t, "POST", "/api/v1/admin/enrollment-tokens", adminToken, nil, &et), 201)
	enrollment := map[string]any{"token": et.Token, "name": "once", "job_types": []string{"echo"}, "slots": 1}
	setupStatus(t, "enroll with the real token", s.call(t, "POST", "/api/v1/nodes/enroll", "", enrollment, nil), 201)
	attacker := s.register(t, "attacker@example.com")
	tables := settledTables(t, s)

	key, err := rthttp.LoadOrCreateKey(s.m.Config.JWTKeyPath(), false)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	valid := jwt.MapClaims{"iss": "rendertrust", "aud": []string{"rendertrust-api"}, "sub": string(victim.User.ID), "role": "creator",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"NoToken", "GET", "/api/v1/jobs", "", nil, 401},
		{"GarbageToken", "GET", "/api/v1/jobs", "not.a.jwt", nil, 401},
		{"ExpiredToken", "GET", "/api/v1/jobs", signed(t, key, with("exp", now.Add(-time.Hour).Unix())), nil, 401},
		{"NoExpiry", "GET", "/api/v1/jobs", signed(t, key, with("exp", nil)), nil, 401},
		{"WrongIssuer", "GET", "/api/v1/jobs", signed(t, key, with("iss", "evil")), nil, 401},
		{"WrongAudience", "GET", "/api/v1/jobs", signed(t, key, with("aud", []string{"other"})), nil, 401},
		{"OtherKey", "GET", "/api/v1/jobs", signed(t, otherKey, valid), nil, 401},
		{"AlgNone", "GET", "/api/v1/jobs", none, nil, 401},
		{"RefreshTokenAsAccess", "GET", "/api/v1/jobs", victim.RefreshToken, nil, 401},
		{"NodeTokenOnUserEndpoint", "GET", "/api/v1/jobs", node, nil, 401},
		{"UserTokenOnNodeEndpoint", "POST", "/api/v1/nodes/heartbeat", attacker.AccessToken, nil, 401},
		{"CreatorOnAdminEndpoint", "POST", "/api/v1/admin/grants", attacker.AccessToken, map[string]any{"user_id": string(attacker.User.ID), "amount": 1000, "reason": "x"}, 403},
		{"ForgedAdminRole", "POST", "/api/v1/admin/grants", signed(t, otherKey, with("role", "admin")), map[string]any{"user_id": "x", "amount": 1, "reason": "x"}, 401},
		{"OtherUsersJob", "GET", "/api/v1/jobs/" + job.JobID, attacker.AccessToken, nil, 404},
		{"OtherUsersJobCancel", "POST", "/api/v1/jobs/" + job.JobID + "/cancel", attacker.AccessToken, nil, 404},
		{"OtherUsersJobResult", "GET", "/api/v1/jobs/" + job.JobID + "/result", attacker.AccessToken, nil, 404},
		{"OversizedJSON", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, []byte(`{"job_type":"echo","payload":"` + strings.Repeat("x", 300<<10) + `"}`), 413},
		{"MalformedJSON", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, []byte(`{"job_type": "echo",`), 400},
		{"TrailingJSON", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, []byte(`{"job_type":"echo","payload_ref":"s3://b/k"} {}`), 400},
		{"WrongFieldType", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, []byte(`{"job_type": 7}`), 400},
		{"SQLInJobType", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, map[string]any{"job_type": "render'; DROP TABLE events;--", "payload_ref": "s3://b/k"}, 400},
		{"SQLInPayloadRef", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, map[string]any{"job_type": "echo", "payload_ref": "s3://b/k' OR '1'='1"}, 400},
		{"SQLInStatusFilter", "GET", "/api/v1/jobs?status=QUEUED'%20OR%201=1--", attacker.AccessToken, nil, 400},
		{"SQLInJobID", "GET", "/api/v1/jobs/x'%20OR%201=1--", attacker.AccessToken, nil, 404},
		{"SQLInCursor", "GET", "/api/v1/jobs?cursor=%27%3BDROP%20TABLE%20users", attacker.AccessToken, nil, 400},
		{"SQLInEmail", "POST", "/api/v1/auth/register", "", map[string]string{"email": "x'); DROP TABLE users;--@example.com", "name": "x", "password": "12345678"}, 400},
		{"UnicodeControlInName", "POST", "/api/v1/auth/register", "", map[string]string{"email": "u@example.com", "name": "a\u0000b", "password": "12345678"}, 400},
		{"ShortPassword", "POST", "/api/v1/auth/register", "", map[string]string{"email": "p@example.com", "name": "p", "password": "1234567"}, 400},
		{"UnicodeJobType", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, map[string]any{"job_type": "rénder\u202e", "payload_ref": "s3://b/k"}, 400},
		{"BadPriority", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, map[string]any{"job_type": "echo", "payload_ref": "s3://b/k", "priority": "urgent"}, 400},
		{"BadPayloadScheme", "POST", "/api/v1/jobs/dispatch", attacker.AccessToken, map[string]any{"job_type": "echo", "payload_ref": "file:///etc/passwd"}, 400},
		{"HugeDaysParam", "GET", "/api/v1/credits/usage?days=100000", attacker.AccessToken, nil, 400},
		{"BadTimeZone", "GET", "/api/v1/credits/usage?tz=Mars/Olympus", attacker.AccessToken, nil, 400},
		{"UnknownPackage", "POST", "/api/v1/credits/checkout", attacker.AccessToken, map[string]string{"package_id": "credits_1000000"}, 400},
		{"ForgedEnrollmentToken", "POST", "/api/v1/nodes/enroll", "", map[string]any{"token": "rte_forged", "name": "n", "job_types": []string{"echo"}, "slots": 1}, 401},
		{"ReusedEnrollmentToken", "POST", "/api/v1/nodes/enroll", "", enrollment, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.m.Store.Head(context.Background())
			var e errorAnswer
			if st := s.call(t, tc.method, tc.path, tc.token, tc.body, &e); st != tc.want || e.Error.Code == "" {
				t.Fatalf("status %d (%+v), want %d with an error code", st, e, tc.want)
			}
			if after, _ := s.m.Store.Head(context.Background()); after != before {
				t.Fatalf("log head %d → %d: a refused request wrote", before, after)
			}
			if tc.want == http.StatusUnauthorized && e.Error.Code != "unauthorized" {
				t.Fatalf("code %q, want unauthorized", e.Error.Code)
			}
			tables.unchanged(t)
		})
	}
	t.Run("WrongContentType", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.base+"/api/v1/jobs/dispatch", bytes.NewReader([]byte(`{"job_type":"echo"}`)))
		req.Header.Set("Authorization", "Bearer "+attacker.AccessToken)
		req.Header.Set("Content-Type", "text/plain")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 415 {
			t.Fatalf("text/plain body: %v %v, want 415", err, resp.Status)
		}
	})
	t.Run("SQLMetacharactersStoredLiterally", func(t *testing.T) {
		name := `Robert'); DROP TABLE users;-- 🚀 ＜script＞`
		var tok tokens
		if st := s.call(t, "POST", "/api/v1/auth/register", "", map[string]string{"email": "bobby@example.com", "name": name, "password": "12345678"}, &tok); st != 201 {
			t.Fatalf("register: %d", st)
		}
		var me struct{ Name string }
		s.call(t, "GET", "/api/v1/me", tok.AccessToken, nil, &me)
		if me.Name != name {
			t.Fatalf("name came back as %q, want %q", me.Name, name)
		}
	})
}

// TestRefreshTokenReuseRevokesFamily: a rotated refresh token presented
// again revokes its whole family, including the token that replaced it.
func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	s := startServer(t, nil)
	first := s.register(t, "r@example.com").RefreshToken
	var second tokens
	if st := s.call(t, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first}, &second); st != 200 || second.RefreshToken == "" {
		t.Fatalf("refresh: %d", st)
	}
	if st := s.call(t, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first}, nil); st != 401 {
		t.Fatalf("reuse of a rotated token: %d, want 401", st)
	}
	if st := s.call(t, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken}, nil); st != 401 {
		t.Fatalf("its successor after the reuse: %d, want 401 (family revoked)", st)
	}
}

// TestLoginRateLimit: too many failed logins answer 429 with Retry-After,
// even with the right password, until the minute has passed.
func TestLoginRateLimit(t *testing.T) {
	s := startServer(t, nil)
	s.register(t, "l@example.com")
	for range 5 {
		if st := s.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "l@example.com", "password": "wrong password"}, nil); st != 401 {
			t.Fatalf("failed login: %d, want 401", st)
		}
	}
	body, _ := jsonBody(map[string]string{"email": "l@example.com", "password": "correct horse"})
	resp, err := http.Post(s.base+"/api/v1/auth/login", "application/json", body)
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login after 5 failures: %v %v (Retry-After %q), want 429 with Retry-After", err, resp.Status, resp.Header.Get("Retry-After"))
	}
}

func jsonBody(v any) (*bytes.Reader, error) {
	var buf bytes.Buffer
	err := jsonEncode(&buf, v)
	return bytes.NewReader(buf.Bytes()), err
}

func jsonEncode(w *bytes.Buffer, v any) error { return json.NewEncoder(w).Encode(v) }
