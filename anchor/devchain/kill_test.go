package devchain_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// killChildEnv makes the test binary a dev-chain process that anchors until
// it is killed (TestMinedAnchorsSurviveSIGKILL).
const killChildEnv = "DEVCHAIN_TEST_KILL_DIR"

// Sizes of TestMinedAnchorsSurviveSIGKILL: kills, and anchors seen mined
// before each kill.
const (
	killRounds     = 2
	anchorsPerKill = 3
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		anchorUntilKilled(dir)
		return
	}
	os.Exit(m.Run())
}

// anchorUntilKilled anchors root after root, printing "mined SIZE TX" as
// soon as the client returns each receipt.
func anchorUntilKilled(dir string) {
	ctx := context.Background()
	c, err := devchain.Open(ctx, dir, devchain.Config{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	start, _ := strconv.ParseUint(os.Getenv("DEVCHAIN_TEST_FIRST_SIZE"), 10, 64)
	for size := start; ; size++ {
		r, err := anchorOnce(ctx, c, merkle.HashLeaf([]byte(strconv.FormatUint(size, 10))), size)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("mined %d %s\n", size, proof.TxHex(r.TxHash))
	}
}

func anchorOnce(ctx context.Context, c *devchain.Chain, root [32]byte, size uint64) (*proof.Receipt, error) {
	w := c.Writer()
	nonce, err := w.Nonce(ctx)
	if err != nil {
		return nil, err
	}
	tip, feeCap, err := w.Fees(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := w.SignAnchor(ctx, ethchain.AnchorTx{Root: root, Size: size, Nonce: nonce, Tip: tip, FeeCap: feeCap})
	if err != nil {
		return nil, err
	}
	if err := w.Send(ctx, tx); err != nil {
		return nil, err
	}
	return c.Client().WaitMined(ctx, tx.Hash(), minedPoll)
}

// TestMinedAnchorsSurviveSIGKILL: a dev-chain process is killed with
// SIGKILL right after its client reported anchors mined, killRounds times;
// after each kill the reopened chain holds every anchor reported (the anchor
// worker records an anchor in the durable log once it saw it mined, so a
// chain that loses it fails `rendertrust check`).
func TestMinedAnchorsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir).Close() // create the chain and deploy the contract
	size := uint64(1)
	for round := range killRounds {
		mined := killAfterMined(t, dir, size)
		c := mustOpen(t, dir)
		for s, root := range mined {
			got, err := c.Client().RootAt(t.Context(), c.Contract(), s)
			if err != nil || got != root {
				c.Close()
				t.Fatalf("round %d: the anchor at size %d, reported mined before the kill, is gone after it (rootAt = %x, %v)", round, s, got, err)
			}
			size = max(size, s+1)
		}
		c.Close()
	}
}

// killAfterMined runs a child anchoring from size on, SIGKILLs it as soon as
// it reported anchorsPerKill anchors mined, and returns their roots by size.
func killAfterMined(t *testing.T, dir string, size uint64) map[uint64][32]byte {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), killChildEnv+"="+dir, "DEVCHAIN_TEST_FIRST_SIZE="+strconv.FormatUint(size, 10))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	mined := map[uint64][32]byte{}
	lines := bufio.NewScanner(out)
	deadline := time.AfterFunc(2*time.Minute, func() { child.Process.Kill() })
	defer deadline.Stop()
	for len(mined) < anchorsPerKill && lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 3 || f[0] != "mined" {
			child.Process.Kill()
			child.Wait()
			t.Fatalf("the child said %q", lines.Text())
		}
		s, _ := strconv.ParseUint(f[1], 10, 64)
		mined[s] = merkle.HashLeaf([]byte(f[1]))
	}
	child.Process.Kill()
	child.Wait()
	if len(mined) < anchorsPerKill {
		t.Fatalf("the child reported %d anchors mined before it ended, want %d", len(mined), anchorsPerKill)
	}
	return mined
}
