package devchain_test

import (
	"context"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// minedPoll is how often the test polls for receipts.
const minedPoll = 10 * time.Millisecond

// TestDevChainKeepsStateAcrossRestarts runs the dev chain's life:
//
//  1. the first Open creates the chain, its key and contract, and serves
//     JSON-RPC on loopback that ethchain.Dial can read;
//  2. the writer anchors a root, which the chain mines at once;
//  3. after Close and a second Open on the same directory, the contract,
//     the key and the anchored root are still there, and the chain takes
//     the next anchor.
func TestDevChainKeepsStateAcrossRestarts(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	// 1.
	c := mustOpen(t, dir)
	rpcClient, err := ethchain.Dial(ctx, c.URL())
	if err != nil {
		t.Fatalf("Dial(%s): %v", c.URL(), err)
	}
	defer rpcClient.Close()
	if got := rpcClient.ChainID(); got != devchain.ChainID {
		t.Errorf("chain id over JSON-RPC = %d, want %d", got, devchain.ChainID)
	}
	contract, writer := c.Contract(), c.Writer().From()

	// 2.
	root := merkle.HashLeaf([]byte("first root"))
	receipt := mustAnchor(t, c, root, 7)
	if got, err := rpcClient.RootAt(ctx, contract, 7); err != nil || got != root {
		t.Fatalf("rootAt(7) over JSON-RPC = %x, %v; want %x", got, err, root)
	}
	t.Logf("anchor gas used on the dev chain: %d", receipt.GasUsed)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// 3.
	c = mustOpen(t, dir)
	defer c.Close()
	if c.Contract() != contract || c.Writer().From() != writer {
		t.Fatalf("reopened chain has contract %s and writer %s, want %s and %s",
			c.Contract(), c.Writer().From(), contract, writer)
	}
	if got, err := c.Client().RootAt(ctx, contract, 7); err != nil || got != root {
		t.Fatalf("rootAt(7) after restart = %x, %v; want %x", got, err, root)
	}
	if _, err := c.Client().Receipt(ctx, receipt.TxHash); err != nil {
		t.Fatalf("receipt of the first anchor after restart: %v", err)
	}
	mustAnchor(t, c, merkle.HashLeaf([]byte("second root")), 9)
}

func mustOpen(t *testing.T, dir string) *devchain.Chain {
	t.Helper()
	c, err := devchain.Open(t.Context(), dir, devchain.Config{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return c
}

func mustAnchor(t *testing.T, c *devchain.Chain, root [32]byte, size uint64) *proof.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w := c.Writer()
	nonce, err := w.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tip, feeCap, err := w.Fees(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.SignAnchor(ctx, ethchain.AnchorTx{Root: root, Size: size, Nonce: nonce, Tip: tip, FeeCap: feeCap})
	if err != nil {
		t.Fatalf("SignAnchor(size %d): %v", size, err)
	}
	if err := w.Send(ctx, tx); err != nil {
		t.Fatalf("Send: %v", err)
	}
	receipt, err := c.Client().WaitMined(ctx, tx.Hash(), minedPoll)
	if err != nil || !receipt.Succeeded() {
		t.Fatalf("anchor(size %d) receipt = %v, %v", size, receipt, err)
	}
	return receipt
}
