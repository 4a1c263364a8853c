package ethchain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// TestTwoWorkersAnchorOnce: two anchor workers with the same key, contract
// and audit log run at once, as a deposed anchor leader that has not
// noticed its loss yet and its successor would (the anchor role is not
// fenced: cmd/rendertrust/internal/server/roles.go):
//
//  1. entries arrive in rounds; both workers race to anchor each round;
//  2. neither stops with an error (no divergence, nothing it cannot retry);
//  3. no tree size is recorded twice in the log, and the audit verifies
//     every recorded anchor against the chain.
func TestTwoWorkersAnchorOnce(t *testing.T) {
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)
	cfg := anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 2, Confirmations: 1}
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client, Worker: cfg})
	cfg.PollInterval, cfg.RetryMax = ethchaintest.Poll, 5*ethchaintest.Poll
	sender := ethchain.NewSender(c.Writer, anchor.NewAttempts(e.DB), ethchain.SenderConfig{Confirmations: 1, PollInterval: ethchaintest.Poll})
	second := anchor.NewWorker(e.Log, sender, e.Store, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- second.Run(ctx) }()

	// 1.
	for round := range 3 {
		e.AppendEvents(t, 2)
		e.WaitAnchored(t, uint64(2*(round+1)+round)) // each round's entries plus the records before them
	}
	// 2.
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("step 2: the second worker stopped with %v", err)
	}
	// 3.
	sizes := map[uint64]int{}
	recs, err := e.Store.ReadAll(t.Context(), 1, eventstore.ReadEventsMax)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Type != domain.EventAnchorRecorded {
			continue
		}
		ev, err := domain.DecodeEvent(rec.Type, rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		sizes[ev.(domain.AnchorRecorded).TreeSize]++
	}
	for size, n := range sizes {
		if n != 1 {
			t.Errorf("step 3: tree size %d recorded %d times", size, n)
		}
	}
	report, err := e.Service.Audit(t.Context())
	if err != nil || !report.Verified || report.AnchorsChecked != len(sizes) {
		t.Errorf("step 3: audit %+v, %v; want verified, %d anchors", report, err, len(sizes))
	}
	t.Logf("%d anchors recorded, each size once; the first worker recorded %d, the second %d",
		len(sizes), e.Worker.Stats().Anchors, second.Stats().Anchors)
}
