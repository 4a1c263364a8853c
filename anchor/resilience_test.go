package anchor_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.GWei)) }

// TestWorkerReplacesStuckTransaction: the miner wants a tip of 5 gwei and
// the chain suggests 1 gwei, so the first anchor transaction sits in the
// pool. The worker replaces it, at the same nonce, raising tip and fee cap
// by at least 10% each time, until one is mined; exactly one is.
func TestWorkerReplacesStuckTransaction(t *testing.T) {
	c := mustSimChain(t, simulated.WithMinerMinTip(gwei(5)))
	c.mine(t, 5*time.Millisecond)
	chain := &flakyChain{Node: c.writer, fees: func() (*big.Int, *big.Int) { return gwei(1), gwei(3) }}
	e := newEnv(t, envConfig{chain: chain, client: c.client,
		worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 3}, sender: ethchain.SenderConfig{StuckAfter: 3 * testPoll}})
	ids := e.appendEvents(t, 3)
	e.waitAnchored(t, 3)

	sent := chain.sentTxs()
	if len(sent) < 2 {
		t.Fatalf("%d transactions sent, want a stuck one and at least one replacement", len(sent))
	}
	for i, tx := range sent[1:] {
		prev := sent[i]
		if tx.Nonce() != sent[0].Nonce() {
			t.Errorf("replacement %d has nonce %d, want %d", i+1, tx.Nonce(), sent[0].Nonce())
		}
		for _, fee := range []struct {
			name      string
			old, new_ *big.Int
		}{{"tip", prev.GasTipCap(), tx.GasTipCap()}, {"fee cap", prev.GasFeeCap(), tx.GasFeeCap()}} {
			min := new(big.Int).Div(new(big.Int).Mul(fee.old, big.NewInt(110)), big.NewInt(100))
			if fee.new_.Cmp(min) < 0 {
				t.Errorf("replacement %d %s %s, want ≥ 110%% of %s", i+1, fee.name, fee.new_, fee.old)
			}
		}
	}
	if got := e.worker.Stats().Replacements; got != uint64(len(sent)-1) {
		t.Errorf("Stats().Replacements = %d, want %d", got, len(sent)-1)
	}
	last := sent[len(sent)-1]
	if last.GasTipCap().Cmp(gwei(5)) < 0 {
		t.Errorf("mined transaction's tip %s is below the miner's 5 gwei", last.GasTipCap())
	}
	mustVerified(t, "Verify after replacement", func() (*proof.Result, error) { return e.service.Verify(t.Context(), ids[0]) })
	t.Logf("%d transactions sent; the last, with tip %s and fee cap %s, was mined", len(sent), last.GasTipCap(), last.GasFeeCap())
}

// TestWorkerSurvivesRPCOutage:
//
//  1. the RPC endpoint goes down right after the first anchor is sent, so
//     the worker cannot see it mined; entries keep arriving;
//  2. when the endpoint is back, the worker records the anchor it sent
//     (without sending it again) and anchors the entries that arrived
//     during the outage: nothing is lost.
func TestWorkerSurvivesRPCOutage(t *testing.T) {
	c := mustSimChain(t)
	c.mine(t, 5*time.Millisecond)
	chain := &flakyChain{Node: c.writer}
	e := newEnv(t, envConfig{chain: chain, client: c.client,
		worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 4}, sender: ethchain.SenderConfig{StuckAfter: time.Hour}})

	// 1.
	ids := e.appendEvents(t, 4)
	waitUntil(t, "the first anchor sent", func() bool { return len(chain.sentTxs()) == 1 })
	chain.down.Store(true)
	ids = append(ids, e.appendEvents(t, 4)...)
	if err := e.log.Wait(waitCtx(t), 8); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * testPoll)
	if got, _ := e.service.LoadAnchoredSize(t.Context()); got != 0 {
		t.Fatalf("anchored size during the outage = %d, want 0", got)
	}

	// 2.
	chain.down.Store(false)
	e.waitAnchored(t, 8) // 8 or 9: the first record, at 9, may not be in the log yet
	if n := len(chain.sentTxs()); n != 2 {
		t.Errorf("%d transactions sent, want 2 (one per anchor: none sent twice)", n)
	}
	for _, id := range ids {
		mustVerified(t, "Verify after the outage", func() (*proof.Result, error) { return e.service.Verify(t.Context(), id) })
	}
}

// TestWorkerResumesAfterRestart:
//
//  1. the worker sends an anchor but never sees it mined (receipts hidden)
//     and stops; the transaction is mined while it is down;
//  2. restarted on the same database, the worker finds its saved
//     transaction's receipt and records the anchor, sending nothing new;
//  3. while stopped again, the worker's saved state is lost after an
//     anchor was mined but before it was recorded; restarted, the worker
//     finds the anchor on the chain by its event and records it;
//  4. the log resumes from its stored size: positions stay gapless.
func TestWorkerResumesAfterRestart(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	c.mine(t, 5*time.Millisecond)
	cfg := anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 2}
	sendCfg := ethchain.SenderConfig{StuckAfter: time.Hour}

	// 1.
	base := mustNonce(t, c)
	blind := &flakyChain{Node: c.writer}
	blind.hideReceipts.Store(true)
	e := newEnv(t, envConfig{chain: blind, client: c.client, worker: cfg, sender: sendCfg})
	dir := e.dir
	ids := e.appendEvents(t, 2)
	waitUntil(t, "the anchor mined", func() bool { return mustNonce(t, c) > base })
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}

	// 2.
	seeing := &flakyChain{Node: c.writer}
	e = newEnv(t, envConfig{dir: dir, chain: seeing, client: c.client, worker: cfg, sender: sendCfg})
	e.waitAnchored(t, 2)
	if n := len(seeing.sentTxs()); n > 1 || n == 1 && seeing.sentTxs()[0].Hash() != blind.sentTxs()[0].Hash() {
		t.Errorf("the restarted worker sent %d new transactions, want none", n)
	}
	mustVerified(t, "Verify after restart", func() (*proof.Result, error) { return e.service.Verify(ctx, ids[0]) })

	// 3.
	blind = &flakyChain{Node: c.writer}
	blind.hideReceipts.Store(true)
	e.stop()
	e = newEnv(t, envConfig{dir: dir, chain: blind, client: c.client, worker: cfg, sender: sendCfg})
	ids = append(ids, e.appendEvents(t, 2)...)
	waitUntil(t, "the second anchor mined", func() bool { return mustNonce(t, c) > base+1 })
	e.stop()
	mustExecFile(t, dir, "anchor.db", `DELETE FROM anchor_attempts`)
	e = newEnv(t, envConfig{dir: dir, chain: c.writer, client: c.client, worker: cfg, sender: sendCfg})
	e.waitAnchored(t, 5)
	mustVerified(t, "Verify of an adopted anchor", func() (*proof.Result, error) { return e.service.Verify(ctx, ids[3]) })

	// 4.
	if err := e.log.Wait(waitCtx(t), 6); err != nil {
		t.Fatal(err)
	}
	events, err := e.store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 || e.log.Size() != 6 {
		t.Errorf("log has %d events, audit log %d; want 6 and 6 (4 entries, 2 records)", len(events), e.log.Size())
	}
	report, err := e.service.Audit(ctx)
	if err != nil || !report.Verified || report.AnchorsChecked != 2 {
		t.Errorf("Audit after restarts = %+v, %v; want verified, 2 anchors", report, err)
	}
}

func mustNonce(t *testing.T, c *simChain) uint64 {
	t.Helper()
	n, err := c.writer.Nonce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWorkerReorgBeforeConfirmation: the block holding the anchor is
// replaced by a reorganisation before it has its confirmations; the
// transaction is mined again in another block, and the worker records
// that block, not the first.
//
//  1. the worker sends the anchor; one block mines it;
//  2. the chain forks at that block's parent and grows longer without it;
//  3. the anchor is recorded with a block of the new chain, and verifies.
func TestWorkerReorgBeforeConfirmation(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	chain := &flakyChain{Node: c.writer}
	e := newEnv(t, envConfig{chain: chain, client: c.client,
		worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 2, Confirmations: 4}, sender: ethchain.SenderConfig{StuckAfter: 20 * testPoll}})

	// 1.
	ids := e.appendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.commit()
	tx := chain.sentTxs()[0].Hash()
	first, err := c.client.Receipt(ctx, tx)
	if err != nil {
		t.Fatalf("receipt after one block: %v", err)
	}

	// 2.
	if err := c.backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	stop := c.mine(t, 5*time.Millisecond)
	defer stop()

	// 3.
	e.waitAnchored(t, 2)
	p, err := e.service.Proof(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if common.HexToHash(p.Anchor.BlockHash) == first.BlockHash {
		t.Errorf("anchor recorded in block %s, which the reorganisation removed", first.BlockHash)
	}
	mustVerified(t, "Verify after the reorg", func() (*proof.Result, error) { return e.service.Verify(ctx, ids[0]) })
}

// TestWorkerReorgAfterRecord: a reorganisation deeper than the
// confirmations removes a recorded anchor's block. The worker notices when
// it next checks the chain and anchors again (or records the block the
// transaction moved to), so the entries verify again.
func TestWorkerReorgAfterRecord(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	e := newEnv(t, envConfig{chain: c.writer, client: c.client,
		worker: anchor.WorkerConfig{Interval: 5 * testPoll, EveryEvents: 2, Confirmations: 1}, sender: ethchain.SenderConfig{StuckAfter: 10 * testPoll}})

	ids := e.appendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.commit()
	e.waitAnchored(t, 2)
	mustVerified(t, "Verify before the reorg", func() (*proof.Result, error) { return e.service.Verify(ctx, ids[1]) })

	if err := c.backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	c.backend.Rollback()
	for range 3 {
		c.commit()
	}
	stop := c.mine(t, 5*time.Millisecond)
	defer stop()
	waitUntil(t, "the entry verifies again", func() bool {
		res, err := e.service.Verify(ctx, ids[1])
		return err == nil && res.Verified
	})
	recs, err := e.store.ReadStream(ctx, "anchors", 0, 10)
	if err != nil || len(recs) < 2 {
		t.Fatalf("anchors stream has %d records, %v; want a second record after the reorg", len(recs), err)
	}
}

// waitPending waits until the chain's pool holds a transaction of the
// writer that is not mined yet.
func waitPending(t *testing.T, c *simChain) {
	t.Helper()
	waitUntil(t, "the anchor in the pool", func() bool {
		n, err := c.backend.Client().PendingNonceAt(t.Context(), c.writer.From())
		return err == nil && n > mustNonce(t, c)
	})
}

func mustHeadHash(t *testing.T, c *simChain) common.Hash {
	t.Helper()
	head, err := c.client.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.client.BlockHash(t.Context(), head)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestWorkerWaitsForFinalized: with Finalized set, an anchor is recorded
// only once the chain's "finalized" block reaches the block holding it
// (the simulated chain finalizes every 32 blocks).
func TestWorkerWaitsForFinalized(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	c.mine(t, 2*time.Millisecond)
	e := newEnv(t, envConfig{chain: c.writer, client: c.client,
		worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 1}, sender: ethchain.SenderConfig{Finalized: true}})
	ids := e.appendEvents(t, 1)
	e.waitAnchored(t, 1)
	p, err := e.service.Proof(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	fin, err := c.client.Finalized(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fin < p.Anchor.BlockNumber {
		t.Errorf("anchor in block %d recorded while the finalized block is %d", p.Anchor.BlockNumber, fin)
	}
}

// TestWorkerDeepReorgDropsTwoAnchors: 1. two anchors are recorded; 2. a
// reorganisation removes the blocks of both; 3. the worker anchors the
// newest size again, and an entry that only the first, dropped anchor
// covered verifies again (proofs use the newest anchor).
func TestWorkerDeepReorgDropsTwoAnchors(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	e := newEnv(t, envConfig{chain: c.writer, client: c.client,
		worker: anchor.WorkerConfig{Interval: 5 * testPoll, EveryEvents: 2, Confirmations: 1}, sender: ethchain.SenderConfig{StuckAfter: 10 * testPoll}})

	early := e.appendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.commit()
	first := e.waitAnchored(t, 2)
	e.appendEvents(t, 2)
	waitPending(t, c)
	c.commit()
	e.waitAnchored(t, first+1)
	mustVerified(t, "step 1: the early entry", func() (*proof.Result, error) { return e.service.Verify(ctx, early[0]) })

	if err := c.backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	c.backend.Rollback()
	for range 4 {
		c.commit()
	}
	stop := c.mine(t, 5*time.Millisecond)
	defer stop()
	waitUntil(t, "step 3: the early entry verifies again", func() bool {
		res, err := e.service.Verify(ctx, early[0])
		return err == nil && res.Verified
	})
}
