package proof_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// The shared proof vectors: valid and forged proofs, each a JSON file in
// testdata/vectors with the chain it is checked against and the expected
// outcome. The Python SDK's verifier (sdk/python) runs the same files
// through its own implementation, over JSON-RPC; both must agree with
// "expect" on every file. Regenerate with
//
//	go test ./anchor/proof -run TestVectors -update
//
// The chain is part of each vector, as the JSON-RPC answers it gives
// (eth_chainId, the contracts' stored roots for eth_call rootAt,
// receipts, block hashes), so the vectors are deterministic and need no
// running chain; the live chain is covered by the end-to-end tests.
var update = flag.Bool("update", false, "rewrite testdata/vectors from the generator")

const vectorsDir = "testdata/vectors"

// vector is one file of testdata/vectors.
type vector struct {
	Description string          `json:"description"`
	Kind        string          `json:"kind"` // "inclusion" or "consistency"
	Trusted     vectorTrust     `json:"trusted"`
	Chain       vectorChain     `json:"chain"`
	Proof       json.RawMessage `json:"proof"`
	Expect      vectorExpect    `json:"expect"`
}

type vectorTrust struct {
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
}

type vectorExpect struct {
	Verified bool     `json:"verified"`
	Failed   []string `json:"failed"` // the failed checks, sorted
}

// vectorChain is what the chain's JSON-RPC endpoint answers: roots by
// contract and tree size (rootAt), receipts by transaction hash as
// eth_getTransactionReceipt returns them, canonical block hashes by
// number.
type vectorChain struct {
	ID       uint64                       `json:"chain_id"`
	Roots    map[string]map[string]string `json:"roots"` // contract → decimal size → 0x root
	Receipts map[string]rpcReceipt        `json:"receipts"`
	Blocks   map[string]string            `json:"blocks"` // decimal number → 0x hash
}

type rpcReceipt struct {
	Status      string   `json:"status"`
	BlockNumber string   `json:"blockNumber"`
	BlockHash   string   `json:"blockHash"`
	Logs        []rpcLog `json:"logs"`
}

type rpcLog struct {
	Address string   `json:"address"`
	Topics  []string `json:"topics"`
	Data    string   `json:"data"`
}

// vectorChain implements proof.Chain over its recorded answers.
var _ proof.Chain = (*vectorChain)(nil)

func (c *vectorChain) ChainID() uint64 { return c.ID }

func (c *vectorChain) RootAt(_ context.Context, addr proof.Address, size uint64) ([32]byte, error) {
	roots, ok := c.Roots[strings.ToLower(addr.Hex())]
	if !ok {
		return [32]byte{}, proof.ErrNoContract
	}
	return common.HexToHash(roots[strconv.FormatUint(size, 10)]), nil
}

func (c *vectorChain) Receipt(_ context.Context, tx [32]byte) (*proof.Receipt, error) {
	r, ok := c.Receipts[proof.TxHex(tx)]
	if !ok {
		return nil, fmt.Errorf("receipt of %s: %w", proof.TxHex(tx), proof.ErrNotFound)
	}
	out := &types.Receipt{Status: uint64(hexutil.MustDecodeUint64(r.Status)), TxHash: tx,
		BlockNumber: hexutil.MustDecodeBig(r.BlockNumber), BlockHash: common.HexToHash(r.BlockHash)}
	for _, l := range r.Logs {
		gl := &types.Log{Address: common.HexToAddress(l.Address), Data: hexutil.MustDecode(l.Data)}
		for _, t := range l.Topics {
			gl.Topics = append(gl.Topics, common.HexToHash(t))
		}
		out.Logs = append(out.Logs, gl)
	}
	return ethchain.ReceiptOf(out), nil
}

func (c *vectorChain) BlockHash(_ context.Context, n uint64) ([32]byte, error) {
	h, ok := c.Blocks[strconv.FormatUint(n, 10)]
	if !ok {
		return [32]byte{}, fmt.Errorf("block %d: %w", n, proof.ErrNotFound)
	}
	return common.HexToHash(h), nil
}

// TestVectors runs every shared vector through the Go verifier: each
// valid one verifies, each forgery is refused with exactly the failed
// checks the file names. A forged contract or chain id (H1) is among them.
func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t, generateVectors(t))
	}
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	if err != nil || len(files) < 20 {
		t.Fatalf("vectors: %d files, %v; want at least 20", len(files), err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			v := readVector(t, file)
			res := runVector(t, v)
			failed := res.Failed()
			slices.Sort(failed)
			if res.Verified != v.Expect.Verified || !slices.Equal(failed, v.Expect.Failed) {
				t.Errorf("verified %v, failed %v; want verified %v, failed %v (%s)\ndetails: %v",
					res.Verified, failed, v.Expect.Verified, v.Expect.Failed, v.Description, res.Details)
			}
		})
	}
}

func readVector(t *testing.T, file string) *vector {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v := new(vector)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// runVector verifies v's proof against v's chain, trusting v's trusted.
func runVector(t *testing.T, v *vector) *proof.Result {
	t.Helper()
	trust := proof.Trust{ChainID: v.Trusted.ChainID, Contract: proof.Address(common.HexToAddress(v.Trusted.Contract))}
	chain := &v.Chain
	var res *proof.Result
	var err error
	switch v.Kind {
	case "inclusion":
		p := new(proof.Inclusion)
		if err := json.Unmarshal(v.Proof, p); err != nil {
			t.Fatal(err)
		}
		res, err = proof.VerifyInclusion(context.Background(), chain, trust, p)
	case "consistency":
		c := new(proof.Consistency)
		if err := json.Unmarshal(v.Proof, c); err != nil {
			t.Fatal(err)
		}
		res, err = proof.VerifyConsistency(context.Background(), chain, trust, c)
	default:
		t.Fatalf("kind %q", v.Kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// --- the generator ---

const (
	vectorChainID      = 1337
	vectorOtherChainID = 31337
	vectorLeaves       = 7
)

var (
	officialContract = common.HexToAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3")
	copyContract     = common.HexToAddress("0xbadbadbadbadbadbadbadbadbadbadbadbad0001")
)

// ledger is a tree of entries with some sizes anchored in one contract,
// each anchor in a transaction of its own.
type ledger struct {
	entries  [][]byte
	tree     *merkle.Tree
	contract common.Address
	chainID  uint64
	salt     int64 // makes tx and block hashes differ between ledgers
	anchors  map[uint64]proof.Anchor
	roots    map[uint64]proof.Hash
}

func newLedger(t *testing.T, contract common.Address, chainID uint64, salt int64, forge bool, sizes ...uint64) *ledger {
	t.Helper()
	ctx := context.Background()
	tree, err := merkle.Open(ctx, new(merkle.MemStore), 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{tree: tree, contract: contract, chainID: chainID, salt: salt,
		anchors: map[uint64]proof.Anchor{}, roots: map[uint64]proof.Hash{}}
	for i := range vectorLeaves {
		amount := 100 * (i + 1)
		if forge && i >= 4 {
			amount = 1_000_000 // the forged log grants itself credits from the fifth entry on
		}
		e := fmt.Appendf(nil, `{"data":{"amount":%d},"id":"0190a1b2-0000-7000-8000-%012d","type":"credits.granted"}`, amount, i+1)
		l.entries = append(l.entries, e)
		if err := tree.Append(ctx, merkle.HashLeaf(e)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sizes {
		root, err := tree.Root(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		l.roots[s] = root
		l.anchors[s] = proof.Anchor{ChainID: chainID, Contract: strings.ToLower(contract.Hex()),
			TxHash: l.hash(1, s).Hex(), BlockNumber: uint64(salt)*100 + s, BlockHash: l.hash(2, s).Hex()}
	}
	return l
}

func (l *ledger) hash(kind int64, size uint64) common.Hash {
	return common.BigToHash(big.NewInt(l.salt*1_000_000 + kind*1000 + int64(size)))
}

// record adds l's anchors to c as a chain would hold them.
func (l *ledger) record(c *vectorChain) {
	roots := map[string]string{}
	ev := anchorcontract.NewAnchor().GetABI().Events["Anchored"]
	for size, a := range l.anchors {
		roots[strconv.FormatUint(size, 10)] = "0x" + l.roots[size].String()
		c.Receipts[a.TxHash] = rpcReceipt{Status: "0x1", BlockNumber: hexutil.EncodeUint64(a.BlockNumber), BlockHash: a.BlockHash,
			Logs: []rpcLog{{Address: a.Contract, Topics: []string{ev.ID.Hex(), common.BigToHash(new(big.Int).SetUint64(size)).Hex()},
				Data: "0x" + l.roots[size].String()}}}
		c.Blocks[strconv.FormatUint(a.BlockNumber, 10)] = a.BlockHash
	}
	c.Roots[strings.ToLower(l.contract.Hex())] = roots
}

func (l *ledger) inclusion(t *testing.T, index, size uint64) *proof.Inclusion {
	t.Helper()
	path, err := l.tree.InclusionProof(context.Background(), index, size)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ ID string }
	json.Unmarshal(l.entries[index], &env)
	return &proof.Inclusion{Alg: proof.Alg, EntryID: env.ID, Position: index + 1, LeafIndex: index,
		Entry: slices.Clone(l.entries[index]), LeafHash: merkle.HashLeaf(l.entries[index]), TreeSize: size,
		AuditPath: proof.Hashes(path), Root: l.roots[size], Anchor: l.anchors[size]}
}

func (l *ledger) consistency(t *testing.T, size1, size2 uint64) *proof.Consistency {
	t.Helper()
	path, err := l.tree.ConsistencyProof(context.Background(), size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	return &proof.Consistency{Alg: proof.Alg, TreeSize1: size1, TreeSize2: size2, Root1: l.roots[size1], Root2: l.roots[size2],
		ConsistencyPath: proof.Hashes(path), Anchor1: l.anchors[size1], Anchor2: l.anchors[size2]}
}

func newVectorChain(id uint64, ledgers ...*ledger) vectorChain {
	c := vectorChain{ID: id, Roots: map[string]map[string]string{}, Receipts: map[string]rpcReceipt{}, Blocks: map[string]string{}}
	for _, l := range ledgers {
		l.record(&c)
	}
	return c
}

// generateVectors builds every vector, its expected outcome taken from
// the Go verifier and checked against the intent of each case.
func generateVectors(t *testing.T) map[string]*vector {
	t.Helper()
	official := newLedger(t, officialContract, vectorChainID, 1, false, 3, 4, 6, 7)
	// H1: the same entries' start, a forged tail, anchored in a copy of
	// the contract on the official chain, or at the official address on
	// another chain.
	copied := newLedger(t, copyContract, vectorChainID, 2, true, 3, 4, 6, 7)
	otherChain := newLedger(t, officialContract, vectorOtherChainID, 3, true, 3, 4, 6, 7)
	chain := newVectorChain(vectorChainID, official, copied)
	foreign := newVectorChain(vectorOtherChainID, otherChain)
	trusted := vectorTrust{ChainID: vectorChainID, Contract: strings.ToLower(officialContract.Hex())}

	out := map[string]*vector{}
	add := func(name, kind, desc string, c vectorChain, doc any, verified bool) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		v := &vector{Description: desc, Kind: kind, Trusted: trusted, Chain: c, Proof: b}
		res := runVector(t, v)
		failed := res.Failed()
		slices.Sort(failed)
		if failed == nil {
			failed = []string{}
		}
		if res.Verified != verified {
			t.Fatalf("generate %s: verified %v, want %v (%v)", name, res.Verified, verified, res.Details)
		}
		v.Expect = vectorExpect{Verified: verified, Failed: failed}
		out[name] = v
	}
	incl := func(name, desc string, forge func(p *proof.Inclusion)) {
		p := official.inclusion(t, 5, 7)
		forge(p)
		add("inclusion-"+name, "inclusion", desc, chain, p, false)
	}
	cons := func(name, desc string, forge func(c *proof.Consistency)) {
		c := official.consistency(t, 3, 7)
		forge(c)
		add("consistency-"+name, "consistency", desc, chain, c, false)
	}

	for _, ix := range [][2]uint64{{5, 7}, {0, 7}, {6, 7}, {2, 4}, {3, 4}, {0, 3}, {4, 6}} {
		add(fmt.Sprintf("inclusion-valid-%d-of-%d", ix[0], ix[1]), "inclusion",
			fmt.Sprintf("valid: entry %d in the tree of %d", ix[0], ix[1]), chain, official.inclusion(t, ix[0], ix[1]), true)
	}
	for _, s := range [][2]uint64{{3, 7}, {4, 7}, {3, 6}, {4, 6}, {6, 7}, {7, 7}} {
		add(fmt.Sprintf("consistency-valid-%d-to-%d", s[0], s[1]), "consistency",
			fmt.Sprintf("valid: the tree of %d extends the tree of %d", s[1], s[0]), chain, official.consistency(t, s[0], s[1]), true)
	}

	incl("flipped-entry-byte", "one byte of the entry changed", func(p *proof.Inclusion) { p.Entry[30] ^= 1 })
	incl("wrong-leaf-index", "leaf_index and position of the neighbouring leaf", func(p *proof.Inclusion) { p.LeafIndex, p.Position = 4, 5 })
	incl("index-not-position", "leaf_index is not position − 1", func(p *proof.Inclusion) { p.Position = 3 })
	incl("wrong-path-node", "one byte of an audit path node changed", func(p *proof.Inclusion) { p.AuditPath[1][7] ^= 0x80 })
	incl("wrong-root", "the root changed", func(p *proof.Inclusion) { p.Root[31] ^= 1 })
	incl("wrong-tree-size", "tree_size 6 (anchored, another root) with the path for 7", func(p *proof.Inclusion) { p.TreeSize = 6 })
	incl("truncated-path", "the audit path's last node removed", func(p *proof.Inclusion) { p.AuditPath = p.AuditPath[:len(p.AuditPath)-1] })
	incl("extended-path", "a node appended to the audit path", func(p *proof.Inclusion) { p.AuditPath = append(p.AuditPath, p.AuditPath[0]) })
	incl("other-entry-id", "entry_id names another entry", func(p *proof.Inclusion) { p.EntryID = "0190a1b2-0000-7000-8000-000000000001" })
	incl("unknown-tx", "the anchor names a transaction the chain does not have", func(p *proof.Inclusion) { p.Anchor.TxHash = official.hash(9, 7).Hex() })
	incl("other-block", "the anchor names another block", func(p *proof.Inclusion) { p.Anchor.BlockHash = official.hash(2, 6).Hex() })
	add("inclusion-other-contract", "inclusion",
		"H1: a forged entry, anchored (validly) in a copy of the contract the proof names; the trusted contract holds another root",
		chain, copied.inclusion(t, 5, 7), false)
	add("inclusion-other-chain-id", "inclusion",
		"H1: a forged entry anchored at the official address on another chain, verified against that chain's endpoint",
		foreign, otherChain.inclusion(t, 5, 7), false)

	cons("wrong-path-node", "one byte of a consistency path node changed", func(c *proof.Consistency) { c.ConsistencyPath[0][0] ^= 1 })
	cons("wrong-root-1", "root_1 changed", func(c *proof.Consistency) { c.Root1[0] ^= 1 })
	cons("wrong-root-2", "root_2 changed", func(c *proof.Consistency) { c.Root2[0] ^= 1 })
	cons("wrong-tree-size-1", "tree_size_1 4 (anchored) with the path from 3", func(c *proof.Consistency) { c.TreeSize1 = 4 })
	cons("wrong-tree-size-2", "tree_size_2 6 (anchored) with the path to 7", func(c *proof.Consistency) { c.TreeSize2 = 6 })
	cons("sizes-reversed", "tree_size_1 greater than tree_size_2", func(c *proof.Consistency) { c.TreeSize1, c.TreeSize2 = 7, 3 })
	cons("truncated-path", "the consistency path's last node removed", func(c *proof.Consistency) {
		c.ConsistencyPath = c.ConsistencyPath[:len(c.ConsistencyPath)-1]
	})
	cons("extended-path", "a node appended to the consistency path", func(c *proof.Consistency) {
		c.ConsistencyPath = append(c.ConsistencyPath, c.ConsistencyPath[0])
	})
	forgedTail := copied.consistency(t, 3, 7)
	forgedTail.Root1, forgedTail.Anchor1 = official.roots[3], official.anchors[3]
	add("consistency-other-contract-2", "consistency",
		"H1: the official anchor of 3 extended by a forged tree of 7 anchored in a copy of the contract",
		chain, forgedTail, false)
	add("consistency-other-contract", "consistency",
		"H1: both anchors in a copy of the contract", chain, copied.consistency(t, 4, 7), false)
	add("consistency-other-chain-id", "consistency",
		"H1: both anchors at the official address on another chain, verified against that chain's endpoint",
		foreign, otherChain.consistency(t, 4, 7), false)
	return out
}

func writeVectors(t *testing.T, vectors map[string]*vector) {
	t.Helper()
	if err := os.RemoveAll(vectorsDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(vectorsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range vectors {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vectorsDir, name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
