package anchor_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/eventstore"
)

// benchLagPoll is how often the lag benchmark's worker polls the dev chain
// and how often the benchmark looks for the record: the dev chain mines at
// once, so the poll interval is most of the lag.
const benchLagPoll = 20 * time.Millisecond

// BenchmarkAnchorGas measures the gas of one anchor transaction in steady
// state on the Osaka rules, at tree sizes growing by 1,000 a time: the
// execution cost is constant; only calldata (the size's non-zero bytes)
// varies by a few gas.
func BenchmarkAnchorGas(b *testing.B) {
	c := ethchaintest.MustSimChain(b)
	mustAnchorTx(b, c, 1) // the first anchor: afterwards the contract is in steady state
	var gas []uint64
	size := uint64(1)
	for b.Loop() {
		size += 1000
		gas = append(gas, mustAnchorTx(b, c, size).GasUsed)
	}
	slices.Sort(gas)
	var sum uint64
	for _, g := range gas {
		sum += g
	}
	b.ReportMetric(float64(sum)/float64(len(gas)), "gas/anchor")
	b.ReportMetric(float64(gas[len(gas)-1]-gas[0]), "gas-spread")
}

// mustAnchorTx anchors a root at size as the writer and returns the receipt.
func mustAnchorTx(tb testing.TB, c *ethchaintest.SimChain, size uint64) *proof.Receipt {
	tb.Helper()
	ctx := context.Background()
	nonce, err := c.Writer.Nonce(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tip, feeCap, err := c.Writer.Fees(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tx, err := c.Writer.SignAnchor(ctx, ethchain.AnchorTx{Root: merkle.HashLeaf([]byte{byte(size)}), Size: size, Nonce: nonce, Tip: tip, FeeCap: feeCap})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Writer.Send(ctx, tx); err != nil {
		tb.Fatal(err)
	}
	c.Commit()
	r, err := c.Client.Receipt(ctx, tx.Hash())
	if err != nil || !r.Succeeded() {
		tb.Fatalf("anchor at %d: %v, %v", size, r, err)
	}
	return r
}

// BenchmarkAnchorLagDevChain measures anchor lag on the embedded dev chain:
// from an entry's append returning to the anchor covering it being
// recorded in the log (the log reads the entry, the worker sends the
// anchor, the chain mines it, the worker sees one confirmation and appends
// the record, the log indexes the record). The worker anchors every entry
// (EveryEvents 1) and polls every benchLagPoll.
func BenchmarkAnchorLagDevChain(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	dc, err := devchain.Open(ctx, filepath.Join(dir, "chain"), devchain.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	e := ethchaintest.NewEnv(b, ethchaintest.EnvConfig{Dir: dir, Chain: dc.Writer(), Client: dc.Client(),
		Worker: anchor.WorkerConfig{EveryEvents: 1, PollInterval: benchLagPoll}})
	e.AppendEvents(b, 1)
	e.WaitAnchored(b, 1)
	var lags []time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := e.Store.Append(ctx, ethchaintest.Stream, eventstore.Any, eventstore.EventData{
			ID: eventstore.NewEventID(), Type: "test.happened", SchemaVersion: 1, Data: []byte(`{"lag":true}`)})
		if err != nil {
			b.Fatal(err)
		}
		pos := res.LastPosition
		for {
			size, err := e.Service.LoadAnchoredSize(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if size >= pos {
				break
			}
			time.Sleep(time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(e.Worker.Stats().LastGasUsed), "gas/anchor")
	b.ReportMetric(float64(len(lags)), "samples")
}

// sqlTreeLeaves is the size of the tree BenchmarkInclusionProofSQLite
// queries.
const sqlTreeLeaves = 1 << 20

// BenchmarkInclusionProofSQLite measures an inclusion proof of a random
// leaf at a random past size of a 1,048,576-leaf tree whose nodes are in
// SQLite (NodeStore): one indexed query of O(log n) nodes per proof.
func BenchmarkInclusionProofSQLite(b *testing.B) {
	ctx := context.Background()
	store := anchor.NewNodeStore(mustSQLite(b))
	tree, err := merkle.Open(ctx, store, 0)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([][merkle.HashSize]byte, 0, 4096)
	for i := range sqlTreeLeaves {
		batch = append(batch, merkle.HashLeaf([]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
		if len(batch) == cap(batch) {
			if err := tree.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		size := 1 + rng.Uint64N(sqlTreeLeaves)
		if _, err := tree.InclusionProof(ctx, rng.Uint64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
}
