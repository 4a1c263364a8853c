package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/loadgen"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// Load test parameters.
const (
	loadClients  = 64
	loadDuration = 5 * time.Second
	loadNodes    = 64 // × domain.SlotsMax slots, so submissions are dispatched, not queued
)

// BenchmarkAPILoad drives the real server over loopback with 64 concurrent
// clients for 5 s each: job submissions, then read queries (balance, job
// list, usage), on SQLite and on PostgreSQL. The generator shares the
// machine with the server. Run with -benchtime=1x.
func BenchmarkAPILoad(b *testing.B) {
	for _, backend := range []string{"SQLite", "PostgreSQL"} {
		b.Run(backend, func(b *testing.B) {
			s := startServer(b, func(c *Config) {
				if backend == "PostgreSQL" {
					c.DatabaseURL = pgtest.NewDatabase(b)
				}
				c.LogLevel = "error"
			})
			tokens := loadUsers(b, s)
			b.Run("Submit", func(b *testing.B) {
				res := runLoad(b, s, func(c, n int) loadgen.Request {
					return loadgen.Request{Method: "POST", Path: "/api/v1/jobs/dispatch", Token: tokens[c], Want: 201,
						Body: []byte(`{"job_type":"echo","payload_ref":"s3://bucket/scene.blend"}`)}
				})
				b.ReportMetric(res.PerSecond, "submissions/s")
				b.ReportMetric(ms(res.P50), "p50-ms")
				b.ReportMetric(ms(res.P99), "p99-ms")
			})
			paths := []string{"/api/v1/credits/balance", "/api/v1/jobs?limit=20", "/api/v1/credits/usage"}
			b.Run("Read", func(b *testing.B) {
				res := runLoad(b, s, func(c, n int) loadgen.Request {
					return loadgen.Request{Method: "GET", Path: paths[n%len(paths)], Token: tokens[c], Want: 200}
				})
				b.ReportMetric(res.PerSecond, "reads/s")
				b.ReportMetric(ms(res.P50), "p50-ms")
				b.ReportMetric(ms(res.P99), "p99-ms")
			})
		})
	}
}

func runLoad(b *testing.B, s *server, next func(c, n int) loadgen.Request) loadgen.Result {
	var res loadgen.Result
	for b.Loop() {
		var err error
		if res, err = loadgen.Run(context.Background(), s.base, loadClients, loadDuration, next); err != nil {
			b.Fatal(err)
		}
	}
	if res.Failures > 0 {
		b.Errorf("%d of %d requests failed", res.Failures, res.Requests+res.Failures)
	}
	return res
}

// loadUsers registers one funded user per client and enrolls healthy nodes.
func loadUsers(b *testing.B, s *server) []string {
	ctx := context.Background()
	a := commands.Actor{ID: "admin:bench"}
	for i := range loadNodes {
		id := domain.NodeID(fmt.Sprint("bench-node-", i))
		caps := domain.Capabilities{JobTypes: domain.JobTypes(), Slots: domain.SlotsMax}
		if _, err := s.m.Commands.EnrollNode(ctx, a, id, domain.Enrollment{Name: string(id), Capabilities: caps}); err != nil {
			b.Fatal(err)
		}
		s.m.Commands.Heartbeat(ctx, id)
	}
	tokens := make([]string, loadClients)
	for i := range tokens {
		tok := s.register(b, fmt.Sprintf("load%d@example.com", i))
		if _, err := s.m.Commands.Grant(ctx, a, tok.User.ID, fmt.Sprint("bench-", i), 1_000_000, "load test"); err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok.AccessToken
	}
	return tokens
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
