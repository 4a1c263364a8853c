package main

import (
	"testing"

	"github.com/rendertrust/rendertrust/eventstore/esdb/esdbtest"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// TestEventStoreDBEndToEnd runs the whole product with its events in
// EventStoreDB — here the in-process server that speaks EventStoreDB's gRPC
// protocol (eventstore/esdb/esdbtest; not EventStoreDB itself) — and read
// models in PostgreSQL: 1. the creator journey (commands, the reactor's
// deduction, projections, results); 2. an entry's proof anchored on the dev
// chain verifies.
func TestEventStoreDBEndToEnd(t *testing.T) {
	srv := esdbtest.MustStart(t)
	dsn := pgtest.NewDatabase(t)
	s := startServer(t, func(c *Config) {
		c.EventStoreURL, c.DatabaseURL = srv.URL(), dsn
		c.AnchorInterval = 200_000_000 // 200 ms
	})
	tok := s.register(t, "esdb@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	node := s.enrollNode(t, s.admin(t), 4)
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": "s3://b/scene.blend"}, &sub); st != 201 || sub.NodeID == "" {
		t.Fatalf("step 1: dispatch %d %+v", st, sub)
	}
	s.runToCompletion(t, tok, node, sub.JobID, 1)
	var b balance
	eventually(t, "step 1: deduction", func() string {
		s.call(t, "GET", "/api/v1/credits/balance", tok, nil, &b)
		if b.Balance != 90 || b.Held != 0 {
			return "balance not yet 90"
		}
		return ""
	})
	var txs struct {
		Transactions []struct {
			EntryID string `json:"entry_id"`
			Type    string `json:"type"`
		} `json:"transactions"`
	}
	s.call(t, "GET", "/api/v1/credits/transactions", tok, nil, &txs)
	if len(txs.Transactions) < 3 {
		t.Fatalf("step 1: transactions %+v, want purchase, hold and deduction", txs)
	}
	entry := txs.Transactions[0].EntryID
	var v struct {
		Verified bool `json:"verified"`
	}
	eventually(t, "step 2: anchored and verified", func() string {
		if st := s.call(t, "GET", "/api/v1/ledger/"+entry+"/verify", tok, nil, &v); st != 200 || !v.Verified {
			return "not verified yet"
		}
		return ""
	})
}
