package anchorcontract_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// revertedGasLimit is the gas limit of transactions sent past gas
// estimation so that a revert is mined instead of refused by the estimator.
const revertedGasLimit = 200_000

// osakaConfig returns the simulated backend's dev chain config without the
// Bogota fork. go-ethereum v1.17.10's params.AllDevChainProtocolChanges,
// which simulated.NewBackend uses by default, sets BogotaTime to 0, and
// Bogota runs the Amsterdam instruction set (EIP-8037 state-gas metering,
// EIP-8038 state-access repricing), which no public chain runs yet. Without
// it the chain runs Osaka, as Ethereum mainnet does.
func osakaConfig() *params.ChainConfig {
	cfg := *params.AllDevChainProtocolChanges
	cfg.BogotaTime = nil
	return &cfg
}

// chain is a simulated chain with an Anchor contract deployed by owner,
// writable by writer; stranger is a third funded account.
type chain struct {
	backend                 *simulated.Backend
	client                  simulated.Client
	config                  *params.ChainConfig
	contract                *anchorcontract.Anchor
	instance                *bind.BoundContract
	address                 common.Address
	owner, writer, stranger *bind.TransactOpts
}

// mustDeploy starts a simulated chain with config (nil for the simulated
// backend's default) and deploys the contract on it.
func mustDeploy(tb testing.TB, config *params.ChainConfig) *chain {
	tb.Helper()
	keys := make([]*ecdsa.PrivateKey, 3)
	alloc := types.GenesisAlloc{}
	for i := range keys {
		key, err := crypto.GenerateKey()
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = key
		alloc[crypto.PubkeyToAddress(key.PublicKey)] = types.Account{Balance: big.NewInt(params.Ether)}
	}
	backend := simulated.NewBackend(alloc, func(_ *node.Config, ethConf *ethconfig.Config) {
		if config != nil {
			ethConf.Genesis.Config = config
		}
	})
	tb.Cleanup(func() { backend.Close() })
	c := &chain{backend: backend, client: backend.Client(), contract: anchorcontract.NewAnchor()}
	c.config = config
	if c.config == nil {
		c.config = params.AllDevChainProtocolChanges
	}
	chainID, err := c.client.ChainID(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	opts := make([]*bind.TransactOpts, len(keys))
	for i, key := range keys {
		opts[i] = bind.NewKeyedTransactor(key, chainID)
		opts[i].Context = tb.Context()
	}
	c.owner, c.writer, c.stranger = opts[0], opts[1], opts[2]

	bin := common.FromHex(anchorcontract.AnchorMetaData.Bin)
	addr, tx, err := bind.DeployContract(c.owner, bin, c.client, c.contract.PackConstructor(c.writer.From))
	if err != nil {
		tb.Fatalf("deploy: %v", err)
	}
	c.backend.Commit()
	if got, err := bind.WaitDeployed(tb.Context(), c.client, tx.Hash()); err != nil || got != addr {
		tb.Fatalf("WaitDeployed = %s, %v; want %s", got, err, addr)
	}
	c.address, c.instance = addr, c.contract.Instance(c.client, addr)
	return c
}

// send submits calldata from opts, mines a block and returns the receipt.
// It returns the error of gas estimation or sending, such as a revert.
func (c *chain) send(tb testing.TB, opts *bind.TransactOpts, calldata []byte) (*types.Receipt, error) {
	tb.Helper()
	tx, err := bind.Transact(c.instance, opts, calldata)
	if err != nil {
		return nil, err
	}
	c.backend.Commit()
	receipt, err := c.client.TransactionReceipt(tb.Context(), tx.Hash())
	if err != nil {
		tb.Fatalf("receipt of %s: %v", tx.Hash(), err)
	}
	return receipt, nil
}

// mustAnchor anchors root at size as the writer and returns the receipt of
// the successful transaction.
func (c *chain) mustAnchor(tb testing.TB, root [32]byte, size uint64) *types.Receipt {
	tb.Helper()
	receipt, err := c.send(tb, c.writer, c.contract.PackAnchor(root, size))
	if err != nil {
		tb.Fatalf("anchor(%x, %d): %v", root, size, err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("anchor(%x, %d): status %d", root, size, receipt.Status)
	}
	return receipt
}

func (c *chain) mustRootAt(tb testing.TB, size uint64) [32]byte {
	tb.Helper()
	root, err := bind.Call(c.instance, &bind.CallOpts{Context: tb.Context()}, c.contract.PackRootAt(size), c.contract.UnpackRootAt)
	if err != nil {
		tb.Fatalf("rootAt(%d): %v", size, err)
	}
	return root
}

func (c *chain) mustLatestSize(tb testing.TB) uint64 {
	tb.Helper()
	size, err := bind.Call(c.instance, &bind.CallOpts{Context: tb.Context()}, c.contract.PackLatestSize(), c.contract.UnpackLatestSize)
	if err != nil {
		tb.Fatalf("latestSize(): %v", err)
	}
	return size
}

// revert returns the contract's custom error carried by err, the error of a
// call or transaction refused by the node's execution.
func (c *chain) revert(tb testing.TB, err error) any {
	tb.Helper()
	raw, ok := ethclient.RevertErrorData(err)
	if !ok || len(raw) < 4 {
		tb.Fatalf("error %v carries no revert data", err)
	}
	custom, err := c.contract.UnpackError(raw)
	if err != nil {
		tb.Fatalf("unpack revert data %x: %v", raw, err)
	}
	return custom
}

// TestAnchorScenario walks the contract through an anchor worker's life:
//
//  1. the writer anchors the root of a 10-leaf log, then a root at size
//     10,000,000; rootAt and latestSize read them back, unanchored sizes
//     read as zero, and one Anchored event per anchor carries size and root;
//  2. an auditor checks an inclusion proof against rootAt(10) from the chain;
//  3. anchoring a size not above the latest reverts (in estimation and when
//     mined), and so does a zero root;
//  4. a stranger may neither anchor nor replace the writer;
//  5. the owner hands the writer role to the stranger, who can then anchor,
//     while the old writer cannot.
func TestAnchorScenario(t *testing.T) {
	c := mustDeploy(t, osakaConfig())
	ctx := t.Context()

	// 1.
	tree, leaves := mustTree(t, 10)
	root10, err := tree.Root(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	root10M := merkle.HashLeaf([]byte("stand-in for the root at size 10,000,000"))
	c.mustAnchor(t, root10, 10)
	c.mustAnchor(t, root10M, 10_000_000)
	for size, want := range map[uint64][32]byte{10: root10, 10_000_000: root10M, 11: {}, 0: {}} {
		if got := c.mustRootAt(t, size); got != want {
			t.Errorf("rootAt(%d) = %x, want %x", size, got, want)
		}
	}
	if got := c.mustLatestSize(t); got != 10_000_000 {
		t.Errorf("latestSize() = %d, want 10000000", got)
	}
	checkAnchoredEvents(t, c, map[uint64][32]byte{10: root10, 10_000_000: root10M})

	// 2.
	path, err := tree.InclusionProof(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyInclusion(leaves[3], 3, 10, path, c.mustRootAt(t, 10)); err != nil {
		t.Errorf("inclusion proof against the anchored root: %v", err)
	}

	// 3.
	checkNotIncreasing(t, c, root10M)
	_, err = c.send(t, c.writer, c.contract.PackAnchor([32]byte{}, 20_000_000))
	if _, ok := c.revert(t, err).(*anchorcontract.AnchorZeroRoot); !ok {
		t.Errorf("anchor(0, 20000000) error = %v, want ZeroRoot", err)
	}

	// 4.
	_, err = c.send(t, c.stranger, c.contract.PackAnchor(root10M, 20_000_000))
	if e, ok := c.revert(t, err).(*anchorcontract.AnchorNotWriter); !ok || e.Caller != c.stranger.From {
		t.Errorf("anchor by stranger: error = %v, want NotWriter(%s)", err, c.stranger.From)
	}
	_, err = c.send(t, c.stranger, c.contract.PackSetWriter(c.stranger.From))
	if _, ok := c.revert(t, err).(*anchorcontract.AnchorNotOwner); !ok {
		t.Errorf("setWriter by stranger: error = %v, want NotOwner", err)
	}

	// 5.
	if _, err := c.send(t, c.owner, c.contract.PackSetWriter(c.stranger.From)); err != nil {
		t.Fatalf("setWriter by owner: %v", err)
	}
	c.writer, c.stranger = c.stranger, c.writer
	c.mustAnchor(t, root10M, 20_000_000)
	_, err = c.send(t, c.stranger, c.contract.PackAnchor(root10M, 30_000_000))
	if _, ok := c.revert(t, err).(*anchorcontract.AnchorNotWriter); !ok {
		t.Errorf("anchor by the replaced writer: error = %v, want NotWriter", err)
	}
}

// checkNotIncreasing checks that sizes at or below the latest (10,000,000)
// revert, both in gas estimation and mined, and change nothing.
func checkNotIncreasing(t *testing.T, c *chain, root [32]byte) {
	t.Helper()
	for _, size := range []uint64{10_000_000, 10, 0} {
		_, err := c.send(t, c.writer, c.contract.PackAnchor(root, size))
		e, ok := c.revert(t, err).(*anchorcontract.AnchorSizeNotIncreasing)
		if !ok || e.TreeSize != size || e.LatestSize != 10_000_000 {
			t.Errorf("anchor(size %d) error = %v, want SizeNotIncreasing(%d, 10000000)", size, err, size)
		}
	}
	// Past the estimator, the chain itself refuses it.
	opts := *c.writer
	opts.GasLimit = revertedGasLimit
	receipt, err := c.send(t, &opts, c.contract.PackAnchor(root, 9_999_999))
	if err != nil {
		t.Fatalf("send with fixed gas: %v", err)
	}
	if receipt.Status != types.ReceiptStatusFailed {
		t.Errorf("mined anchor(size 9999999) status = %d, want failed", receipt.Status)
	}
	if got := c.mustRootAt(t, 9_999_999); got != ([32]byte{}) {
		t.Errorf("rootAt(9999999) after reverted anchor = %x, want zero", got)
	}
	if got := c.mustLatestSize(t); got != 10_000_000 {
		t.Errorf("latestSize() after reverted anchor = %d, want 10000000", got)
	}
}

// checkAnchoredEvents checks that the contract emitted exactly one
// Anchored event per entry of want.
func checkAnchoredEvents(t *testing.T, c *chain, want map[uint64][32]byte) {
	t.Helper()
	it, err := bind.FilterEvents(c.instance, &bind.FilterOpts{Context: t.Context()}, c.contract.UnpackAnchoredEvent)
	if err != nil {
		t.Fatalf("FilterEvents(Anchored): %v", err)
	}
	defer it.Close()
	seen := 0
	for it.Next() {
		ev := it.Value()
		if root, ok := want[ev.TreeSize]; !ok || root != ev.Root {
			t.Errorf("Anchored(%d, %x), want one of %x", ev.TreeSize, ev.Root, want)
		}
		seen++
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%d Anchored events, want %d", seen, len(want))
	}
}

// mustTree returns a merkle tree of n leaves and the leaves.
func mustTree(tb testing.TB, n int) (*merkle.Tree, [][32]byte) {
	tb.Helper()
	tree, err := merkle.Open(context.Background(), new(merkle.MemStore), 0)
	if err != nil {
		tb.Fatal(err)
	}
	leaves := make([][32]byte, n)
	for i := range leaves {
		leaves[i] = merkle.HashLeaf([]byte{byte(i)})
	}
	if err := tree.Append(context.Background(), leaves...); err != nil {
		tb.Fatal(err)
	}
	return tree, leaves
}

// intrinsicGas returns the gas a transaction pays before execution for its
// base cost and calldata, and checks that the EIP-7623 calldata floor,
// which would replace the total if it were higher, stays below gasUsed.
func (c *chain) intrinsicGas(tb testing.TB, receipt *types.Receipt, calldata []byte) uint64 {
	tb.Helper()
	header, err := c.client.HeaderByNumber(tb.Context(), receipt.BlockNumber)
	if err != nil {
		tb.Fatal(err)
	}
	rules := c.config.Rules(header.Number, true, header.Time)
	gas, err := core.IntrinsicGas(calldata, nil, nil, c.writer.From, &c.address, nil, rules)
	if err != nil {
		tb.Fatal(err)
	}
	floor, err := core.FloorDataGas(rules, c.writer.From, &c.address, nil, calldata, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if floor >= receipt.GasUsed {
		tb.Fatalf("calldata floor %d decides the gas used %d", floor, receipt.GasUsed)
	}
	return gas
}

// TestAnchorGasIsConstant measures the gas of anchors at sizes 10 and
// 10,000,000 (and 2^64-1) and checks that their execution costs the same.
// The transactions' totals differ only by calldata pricing: the ABI
// encoding of 10,000,000 has two more non-zero bytes than that of 10, at 12
// gas each more than a zero byte.
func TestAnchorGasIsConstant(t *testing.T) {
	configs := map[string]*params.ChainConfig{
		"Osaka":                            osakaConfig(),
		"SimulatedDefaultWithBogotaForkOn": nil,
	}
	for name, config := range configs {
		t.Run(name, func(t *testing.T) {
			c := mustDeploy(t, config)
			root := merkle.HashLeaf([]byte("root"))
			var execGas []uint64
			for _, size := range []uint64{10, 10_000_000, 1<<64 - 1} {
				receipt := c.mustAnchor(t, root, size)
				intrinsic := c.intrinsicGas(t, receipt, c.contract.PackAnchor(root, size))
				execGas = append(execGas, receipt.GasUsed-intrinsic)
				t.Logf("anchor at size %d: %d gas used (%d intrinsic + %d execution)",
					size, receipt.GasUsed, intrinsic, receipt.GasUsed-intrinsic)
			}
			for i, g := range execGas[1:] {
				if g != execGas[0] {
					t.Errorf("execution gas of anchor %d = %d, want %d as for the first", i+2, g, execGas[0])
				}
			}
		})
	}
}
