package anchor_test

import (
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// TestDevChainPipeline runs `serve --dev`'s anchoring: the embedded dev
// chain in the data dir, the log and the worker.
//
//  1. entries are anchored on the dev chain;
//  2. everything stops; after a restart on the same data dir the proof
//     issued before still verifies, offline, over the chain's JSON-RPC
//     port, and new entries are anchored on the same contract.
func TestDevChainPipeline(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	cfg := anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 3}

	// 1.
	dc, err := devchain.Open(ctx, filepath.Join(dir, "chain"), devchain.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, Chain: dc.Writer(), Client: dc.Client(), Worker: cfg})
	ids := e.AppendEvents(t, 3)
	e.WaitAnchored(t, 3)
	p, err := e.Service.Proof(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}

	// 2.
	dc, err = devchain.Open(ctx, filepath.Join(dir, "chain"), devchain.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	rpcClient, err := ethchain.Dial(ctx, dc.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rpcClient.Close()
	ethchaintest.MustVerified(t, "offline verify over JSON-RPC after restart", func() (*proof.Result, error) {
		return proof.VerifyInclusion(ctx, rpcClient, dc.Trust(), p)
	})
	e = ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, Chain: dc.Writer(), Client: dc.Client(), Worker: cfg})
	ethchaintest.MustVerified(t, "Service.Verify after restart", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[1]) })
	more := e.AppendEvents(t, 3)
	e.WaitAnchored(t, 7)
	ethchaintest.MustVerified(t, "Verify of a new entry", func() (*proof.Result, error) { return e.Service.Verify(ctx, more[2]) })
	if got, _ := proof.ParseAddress(p.Anchor.Contract); got != dc.Contract() {
		t.Errorf("contract after restart = %s, want %s", dc.Contract(), got)
	}
}

// gethURL returns GETH_RPC_URL, the JSON-RPC endpoint of a `geth --dev`
// node (.ci/with-geth starts one). Without it the test is skipped, except
// under CI=true, where a missing node is a failure.
func gethURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("GETH_RPC_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("GETH_RPC_URL is not set under CI=true: run the tests through .ci/with-geth")
		}
		tb.Skip("GETH_RPC_URL not set (.ci/with-geth starts geth --dev); skipping outside CI")
	}
	return u
}

// TestGethDev anchors to a real `geth --dev` process over JSON-RPC on
// loopback:
//
//  1. geth's dev account funds a fresh key, which deploys the contract
//     (as `rendertrust admin deploy-anchor` does);
//  2. the log and the worker anchor entries through JSON-RPC;
//  3. a proof verifies offline through a separate JSON-RPC connection, as
//     `rendertrust verify` does, and consistency between two anchors too.
func TestGethDev(t *testing.T) {
	ctx := t.Context()
	url := gethURL(t)

	// 1.
	client, writer := mustGethContract(t, url)

	// 2.
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: writer, Client: client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 4}})
	ids := e.AppendEvents(t, 4)
	e.WaitAnchored(t, 4)
	ids = append(ids, e.AppendEvents(t, 4)...)
	second := e.WaitAnchored(t, 8)

	// 3.
	other, err := ethchain.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	trust := proof.Trust{ChainID: client.ChainID(), Contract: writer.Contract()}
	for _, id := range []string{ids[0], ids[7]} {
		p, err := e.Service.Proof(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ethchaintest.MustVerified(t, "offline verify against geth", func() (*proof.Result, error) { return proof.VerifyInclusion(ctx, other, trust, p) })
	}
	cp, err := e.Service.Consistency(ctx, 4, second)
	if err != nil {
		t.Fatal(err)
	}
	ethchaintest.MustVerified(t, "consistency against geth", func() (*proof.Result, error) { return proof.VerifyConsistency(ctx, other, trust, cp) })
	t.Logf("anchored on geth --dev (chain %d) in contract %s; last lag %s, gas %d",
		client.ChainID(), writer.Contract(), e.Worker.Stats().LastLag, e.Worker.Stats().LastGasUsed)
}

// mustGethContract funds a fresh key from geth's dev account, which geth
// --dev unlocks (eth_sendTransaction), deploys the contract with it as
// owner and writer (as `rendertrust admin deploy-anchor` does), and returns
// a client of url and the writer.
func mustGethContract(t *testing.T, url string) (*ethchain.Client, *ethchain.Writer) {
	t.Helper()
	ctx := t.Context()
	rc, err := rpc.DialContext(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	client, err := ethchain.New(ctx, ethclient.NewClient(rc))
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var accounts []common.Address
	if err := rc.CallContext(ctx, &accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		t.Fatalf("eth_accounts = %v, %v; want geth's dev account", accounts, err)
	}
	var fundTx common.Hash
	value := new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether))
	err = rc.CallContext(ctx, &fundTx, "eth_sendTransaction", map[string]any{
		"from": accounts[0], "to": crypto.PubkeyToAddress(key.PublicKey), "value": (*hexutil.Big)(value),
	})
	if err != nil {
		t.Fatalf("fund the writer: %v", err)
	}
	waitCtx := ethchaintest.WaitCtx(t)
	if _, err := client.WaitMined(waitCtx, fundTx, ethchaintest.Poll); err != nil {
		t.Fatal(err)
	}
	addr, deployTx, err := ethchain.Deploy(ctx, client, key, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if _, err := client.WaitMined(waitCtx, deployTx, ethchaintest.Poll); err != nil {
		t.Fatal(err)
	}

	return client, client.Writer(addr, key)
}
