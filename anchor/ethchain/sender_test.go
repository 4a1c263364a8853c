package ethchain_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.GWei)) }

// TestWorkerReplacesStuckTransaction: the miner wants a tip of 5 gwei and
// the chain suggests 1 gwei, so the first anchor transaction sits in the
// pool. The worker replaces it, at the same nonce, raising tip and fee cap
// by at least 10% each time, until one is mined; exactly one is.
func TestWorkerReplacesStuckTransaction(t *testing.T) {
	c := ethchaintest.MustSimChain(t, simulated.WithMinerMinTip(gwei(5)))
	c.Mine(t, 5*time.Millisecond)
	chain := &ethchaintest.Flaky{Node: c.Writer, FeeOverride: func() (*big.Int, *big.Int) { return gwei(1), gwei(3) }}
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: chain, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 3}, Sender: ethchain.SenderConfig{StuckAfter: 3 * ethchaintest.Poll}})
	ids := e.AppendEvents(t, 3)
	e.WaitAnchored(t, 3)

	sent := chain.SentTxs()
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
	if got := e.Worker.Stats().Replacements; got != uint64(len(sent)-1) {
		t.Errorf("Stats().Replacements = %d, want %d", got, len(sent)-1)
	}
	last := sent[len(sent)-1]
	if last.GasTipCap().Cmp(gwei(5)) < 0 {
		t.Errorf("mined transaction's tip %s is below the miner's 5 gwei", last.GasTipCap())
	}
	ethchaintest.MustVerified(t, "Verify after replacement", func() (*proof.Result, error) { return e.Service.Verify(t.Context(), ids[0]) })
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
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)
	chain := &ethchaintest.Flaky{Node: c.Writer}
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: chain, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 4}, Sender: ethchain.SenderConfig{StuckAfter: time.Hour}})

	// 1.
	ids := e.AppendEvents(t, 4)
	ethchaintest.WaitUntil(t, "the first anchor sent", func() bool { return len(chain.SentTxs()) == 1 })
	chain.Down.Store(true)
	ids = append(ids, e.AppendEvents(t, 4)...)
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), 8); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * ethchaintest.Poll)
	if got, _ := e.Service.LoadAnchoredSize(t.Context()); got != 0 {
		t.Fatalf("anchored size during the outage = %d, want 0", got)
	}

	// 2.
	chain.Down.Store(false)
	e.WaitAnchored(t, 8) // 8 or 9: the first record, at 9, may not be in the log yet
	if n := len(chain.SentTxs()); n != 2 {
		t.Errorf("%d transactions sent, want 2 (one per anchor: none sent twice)", n)
	}
	for _, id := range ids {
		ethchaintest.MustVerified(t, "Verify after the outage", func() (*proof.Result, error) { return e.Service.Verify(t.Context(), id) })
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
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)
	cfg := anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 2}
	sendCfg := ethchain.SenderConfig{StuckAfter: time.Hour}

	// 1.
	base := mustNonce(t, c)
	blind := &ethchaintest.Flaky{Node: c.Writer}
	blind.HideReceipts.Store(true)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: blind, Client: c.Client, Worker: cfg, Sender: sendCfg})
	dir := e.Dir
	ids := e.AppendEvents(t, 2)
	ethchaintest.WaitUntil(t, "the anchor mined", func() bool { return mustNonce(t, c) > base })
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	// 2.
	seeing := &ethchaintest.Flaky{Node: c.Writer}
	e = ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, Chain: seeing, Client: c.Client, Worker: cfg, Sender: sendCfg})
	e.WaitAnchored(t, 2)
	if n := len(seeing.SentTxs()); n > 1 || n == 1 && seeing.SentTxs()[0].Hash() != blind.SentTxs()[0].Hash() {
		t.Errorf("the restarted worker sent %d new transactions, want none", n)
	}
	ethchaintest.MustVerified(t, "Verify after restart", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[0]) })

	// 3.
	blind = &ethchaintest.Flaky{Node: c.Writer}
	blind.HideReceipts.Store(true)
	e.Stop()
	e = ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, Chain: blind, Client: c.Client, Worker: cfg, Sender: sendCfg})
	ids = append(ids, e.AppendEvents(t, 2)...)
	ethchaintest.WaitUntil(t, "the second anchor mined", func() bool { return mustNonce(t, c) > base+1 })
	e.Stop()
	ethchaintest.MustExecFile(t, dir, "anchor.db", `DELETE FROM anchor_attempts`)
	e = ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, Chain: c.Writer, Client: c.Client, Worker: cfg, Sender: sendCfg})
	e.WaitAnchored(t, 5)
	ethchaintest.MustVerified(t, "Verify of an adopted anchor", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[3]) })

	// 4.
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), 6); err != nil {
		t.Fatal(err)
	}
	events, err := e.Store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 || e.Log.Size() != 6 {
		t.Errorf("log has %d events, audit log %d; want 6 and 6 (4 entries, 2 records)", len(events), e.Log.Size())
	}
	report, err := e.Service.Audit(ctx)
	if err != nil || !report.Verified || report.AnchorsChecked != 2 {
		t.Errorf("Audit after restarts = %+v, %v; want verified, 2 anchors", report, err)
	}
}

func mustNonce(t *testing.T, c *ethchaintest.SimChain) uint64 {
	t.Helper()
	n, err := c.Writer.Nonce(t.Context())
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
	c := ethchaintest.MustSimChain(t)
	chain := &ethchaintest.Flaky{Node: c.Writer}
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: chain, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 2, Confirmations: 4}, Sender: ethchain.SenderConfig{StuckAfter: 20 * ethchaintest.Poll}})

	// 1.
	ids := e.AppendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.Commit()
	tx := chain.SentTxs()[0].Hash()
	first, err := c.Client.Receipt(ctx, tx)
	if err != nil {
		t.Fatalf("receipt after one block: %v", err)
	}

	// 2.
	if err := c.Backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	stop := c.Mine(t, 5*time.Millisecond)
	defer stop()

	// 3.
	e.WaitAnchored(t, 2)
	p, err := e.Service.Proof(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if common.HexToHash(p.Anchor.BlockHash) == first.BlockHash {
		t.Errorf("anchor recorded in block %s, which the reorganisation removed", first.BlockHash)
	}
	ethchaintest.MustVerified(t, "Verify after the reorg", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[0]) })
}

// TestWorkerReorgAfterRecord: a reorganisation deeper than the
// confirmations removes a recorded anchor's block. The worker notices when
// it next checks the chain and anchors again (or records the block the
// transaction moved to), so the entries verify again.
func TestWorkerReorgAfterRecord(t *testing.T) {
	ctx := t.Context()
	c := ethchaintest.MustSimChain(t)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: 5 * ethchaintest.Poll, EveryEvents: 2, Confirmations: 1}, Sender: ethchain.SenderConfig{StuckAfter: 10 * ethchaintest.Poll}})

	ids := e.AppendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.Commit()
	e.WaitAnchored(t, 2)
	ethchaintest.MustVerified(t, "Verify before the reorg", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[1]) })

	if err := c.Backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	c.Backend.Rollback()
	for range 3 {
		c.Commit()
	}
	stop := c.Mine(t, 5*time.Millisecond)
	defer stop()
	ethchaintest.WaitUntil(t, "the entry verifies again", func() bool {
		res, err := e.Service.Verify(ctx, ids[1])
		return err == nil && res.Verified
	})
	recs, err := e.Store.ReadStream(ctx, "anchors", 0, 10)
	if err != nil || len(recs) < 2 {
		t.Fatalf("anchors stream has %d records, %v; want a second record after the reorg", len(recs), err)
	}
}

// waitPending waits until the chain's pool holds a transaction of the
// writer that is not mined yet.
func waitPending(t *testing.T, c *ethchaintest.SimChain) {
	t.Helper()
	ethchaintest.WaitUntil(t, "the anchor in the pool", func() bool {
		n, err := c.Backend.Client().PendingNonceAt(t.Context(), c.Writer.From())
		return err == nil && n > mustNonce(t, c)
	})
}

func mustHeadHash(t *testing.T, c *ethchaintest.SimChain) common.Hash {
	t.Helper()
	head, err := c.Client.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Client.BlockHash(t.Context(), head)
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
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 2*time.Millisecond)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 1}, Sender: ethchain.SenderConfig{Finalized: true}})
	ids := e.AppendEvents(t, 1)
	e.WaitAnchored(t, 1)
	p, err := e.Service.Proof(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	fin, err := c.Client.Finalized(ctx)
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
	c := ethchaintest.MustSimChain(t)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: 5 * ethchaintest.Poll, EveryEvents: 2, Confirmations: 1}, Sender: ethchain.SenderConfig{StuckAfter: 10 * ethchaintest.Poll}})

	early := e.AppendEvents(t, 2)
	waitPending(t, c)
	parent := mustHeadHash(t, c)
	c.Commit()
	first := e.WaitAnchored(t, 2)
	e.AppendEvents(t, 2)
	waitPending(t, c)
	c.Commit()
	e.WaitAnchored(t, first+1)
	ethchaintest.MustVerified(t, "step 1: the early entry", func() (*proof.Result, error) { return e.Service.Verify(ctx, early[0]) })

	if err := c.Backend.Fork(parent); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	c.Backend.Rollback()
	for range 4 {
		c.Commit()
	}
	stop := c.Mine(t, 5*time.Millisecond)
	defer stop()
	ethchaintest.WaitUntil(t, "step 3: the early entry verifies again", func() bool {
		res, err := e.Service.Verify(ctx, early[0])
		return err == nil && res.Verified
	})
}
