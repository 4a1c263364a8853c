package proof_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

var (
	contract = proof.Address(common.HexToAddress("0x00000000000000000000000000000000000a0c40"))
	trust    = proof.Trust{ChainID: 7, Contract: contract}
)

// fakeChain is a chain holding one contract's anchored roots, each mined
// in a transaction of its own, in a block numbered by its size.
type fakeChain struct {
	roots map[uint64][32]byte
}

var _ proof.Chain = (*fakeChain)(nil)

func (c *fakeChain) ChainID() uint64 { return 7 }

func (c *fakeChain) RootAt(_ context.Context, addr proof.Address, size uint64) ([32]byte, error) {
	if addr != contract {
		return [32]byte{}, proof.ErrNoContract
	}
	return c.roots[size], nil
}

func txOf(size uint64) common.Hash    { return common.BigToHash(big.NewInt(int64(size) + 1_000_000)) }
func blockOf(size uint64) common.Hash { return common.BigToHash(big.NewInt(int64(size) + 2_000_000)) }

func (c *fakeChain) Receipt(_ context.Context, tx [32]byte) (*proof.Receipt, error) {
	for size, root := range c.roots {
		if txOf(size) != tx {
			continue
		}
		abi := anchorcontract.NewAnchor().GetABI()
		ev := abi.Events["Anchored"]
		data, err := ev.Inputs.NonIndexed().Pack(root)
		if err != nil {
			return nil, err
		}
		log := &types.Log{Address: common.Address(contract), Topics: []common.Hash{ev.ID, common.BigToHash(new(big.Int).SetUint64(size))}, Data: data}
		return ethchain.ReceiptOf(&types.Receipt{Status: types.ReceiptStatusSuccessful, TxHash: tx, BlockHash: blockOf(size),
			BlockNumber: new(big.Int).SetUint64(size), Logs: []*types.Log{log}}), nil
	}
	return nil, fmt.Errorf("receipt of %s: %w", proof.TxHex(tx), proof.ErrNotFound)
}

func (c *fakeChain) BlockHash(_ context.Context, n uint64) ([32]byte, error) {
	return blockOf(n), nil
}

// mustProofs builds a tree of n leaves, anchors every size in sizes on a
// fake chain, and returns the chain and a function making proofs.
func mustProofs(t testing.TB, n int, sizes ...uint64) (*fakeChain, func(index, size uint64) *proof.Inclusion) {
	t.Helper()
	ctx := context.Background()
	tree, err := merkle.Open(ctx, new(merkle.MemStore), 0)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = fmt.Appendf(nil, `{"id":"e%d"}`, i)
		if err := tree.Append(ctx, merkle.HashLeaf(entries[i])); err != nil {
			t.Fatal(err)
		}
	}
	chain := &fakeChain{roots: map[uint64][32]byte{}}
	for _, s := range sizes {
		if chain.roots[s], err = tree.Root(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return chain, func(index, size uint64) *proof.Inclusion {
		path, err := tree.InclusionProof(ctx, index, size)
		if err != nil {
			t.Fatal(err)
		}
		return &proof.Inclusion{
			Alg: proof.Alg, EntryID: fmt.Sprintf("e%d", index), Position: index + 1, LeafIndex: index,
			Entry: entries[index], LeafHash: merkle.HashLeaf(entries[index]), TreeSize: size,
			AuditPath: proof.Hashes(path), Root: chain.roots[size],
			Anchor: proof.Anchor{ChainID: 7, Contract: strings.ToLower(contract.Hex()), TxHash: txOf(size).Hex(),
				BlockNumber: size, BlockHash: blockOf(size).Hex()},
		}
	}
}

// TestVerifyInclusionRejectsForgeries checks that each forgery of a valid
// proof fails, naming the check it breaks.
func TestVerifyInclusionRejectsForgeries(t *testing.T) {
	chain, prove := mustProofs(t, 6, 5, 6)
	valid := prove(3, 5)
	if res, err := proof.VerifyInclusion(context.Background(), chain, trust, valid); err != nil || !res.Verified {
		t.Fatalf("valid proof: %+v, %v", res, err)
	}
	cases := map[string]struct {
		forge func(p *proof.Inclusion)
		fails []string
	}{
		"FlippedEntryByte":       {func(p *proof.Inclusion) { p.Entry[len(p.Entry)-3] ^= 1 }, []string{proof.CheckLeafHash, proof.CheckInclusion}},
		"FlippedPathByte":        {func(p *proof.Inclusion) { p.AuditPath[0][5] ^= 1 }, []string{proof.CheckInclusion}},
		"WrongIndex":             {func(p *proof.Inclusion) { p.LeafIndex, p.Position = 2, 3 }, []string{proof.CheckInclusion}},
		"IndexNotPosition":       {func(p *proof.Inclusion) { p.Position = 9 }, []string{proof.CheckLeafIndex}},
		"ShortenedPath":          {func(p *proof.Inclusion) { p.AuditPath = p.AuditPath[:len(p.AuditPath)-1] }, []string{proof.CheckInclusion}},
		"LengthenedPath":         {func(p *proof.Inclusion) { p.AuditPath = append(p.AuditPath, p.AuditPath[0]) }, []string{proof.CheckInclusion}},
		"OtherEntryID":           {func(p *proof.Inclusion) { p.EntryID = "e4" }, []string{proof.CheckEntryID}},
		"SizeFivePresentedAsSix": {func(p *proof.Inclusion) { p.TreeSize = 6 }, []string{proof.CheckRootOnChain, proof.CheckAnchorTx}},
		"RootNotAnchored":        {func(p *proof.Inclusion) { p.Root[0] ^= 1 }, []string{proof.CheckInclusion, proof.CheckRootOnChain, proof.CheckAnchorTx}},
		"OtherChain":             {func(p *proof.Inclusion) { p.Anchor.ChainID = 1 }, []string{proof.CheckChainID}},
		"OtherContract":          {func(p *proof.Inclusion) { p.Anchor.Contract = "0x000000000000000000000000000000000000dead" }, []string{proof.CheckContract}},
		"UnknownTransaction":     {func(p *proof.Inclusion) { p.Anchor.TxHash = txOf(99).Hex() }, []string{proof.CheckAnchorTx, proof.CheckAnchorBlock}},
		"OtherBlock":             {func(p *proof.Inclusion) { p.Anchor.BlockHash = blockOf(6).Hex() }, []string{proof.CheckAnchorBlock}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := prove(3, 5)
			tc.forge(p)
			res, err := proof.VerifyInclusion(context.Background(), chain, trust, p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified {
				t.Fatal("forged proof verified")
			}
			for _, check := range tc.fails {
				if res.Checks[check] || res.Details[check] == "" {
					t.Errorf("check %s: passed=%v, detail %q; want it failed with a reason (failed: %v)", check, res.Checks[check], res.Details[check], res.Failed())
				}
			}
		})
	}
}

// TestInclusionJSON pins the public format's encoding.
func TestInclusionJSON(t *testing.T) {
	_, prove := mustProofs(t, 1, 1)
	p := prove(0, 1)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alg":"rfc9162-sha256","entry_id":"e0","position":1,"leaf_index":0,"entry":"eyJpZCI6ImUwIn0=","leaf_hash":"` +
		p.LeafHash.String() + `","tree_size":1,"audit_path":[],"root":"` + p.Root.String() + `","anchor":{"chain_id":7,` +
		`"contract":"0x00000000000000000000000000000000000a0c40","tx_hash":"` + txOf(1).Hex() + `","block_number":1,"block_hash":"` + blockOf(1).Hex() + `"}}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
}

func TestHashText(t *testing.T) {
	var h proof.Hash
	for _, bad := range []string{"", "00", "0x" + strings.Repeat("0", 64), strings.Repeat("g", 64), strings.Repeat("0", 66)} {
		if err := h.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	good := strings.Repeat("aB", 32)
	if err := h.UnmarshalText([]byte(good)); err != nil || h.String() != strings.ToLower(good) {
		t.Errorf("UnmarshalText(%q) = %s, %v", good, h, err)
	}
}

// TestResultJSON pins the verify answer's shape.
func TestResultJSON(t *testing.T) {
	chain, prove := mustProofs(t, 2, 2)
	res, err := proof.VerifyInclusion(context.Background(), chain, trust, prove(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["verified"] != true || len(m["checks"].(map[string]any)) != 10 || m["details"] != nil {
		t.Errorf("Result JSON = %s; want verified, 10 checks, no details", b)
	}
}
