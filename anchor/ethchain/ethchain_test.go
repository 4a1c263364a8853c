package ethchain_test

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// addressCases is how many random addresses TestAddressHexMatchesGoEthereum
// compares.
const addressCases = 2000

// TestAddressHexMatchesGoEthereum: the anchor records store contract
// addresses as proof.Address.Hex writes them, which must stay go-ethereum's
// EIP-55 form byte for byte, and ParseAddress reads back what either wrote.
func TestAddressHexMatchesGoEthereum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range addressCases {
		var a common.Address
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		if got, want := proof.Address(a).Hex(), a.Hex(); got != want {
			t.Fatalf("proof.Address(%x).Hex() = %s, want %s", a[:], got, want)
		}
		for _, s := range []string{a.Hex(), strings.ToLower(a.Hex()), strings.TrimPrefix(a.Hex(), "0x")} {
			if back, ok := proof.ParseAddress(s); !ok || back != proof.Address(a) {
				t.Fatalf("ParseAddress(%s) = %s, %v; want %s", s, back, ok, a.Hex())
			}
		}
	}
	for _, bad := range []string{"", "0x", "0x123", a41(), "0xzz" + strings.Repeat("0", 38)} {
		if _, ok := proof.ParseAddress(bad); ok {
			t.Errorf("ParseAddress(%q) ok, want refused", bad)
		}
	}
}

func a41() string { return "0x" + strings.Repeat("a", 41) }

// TestReceiptOf: a receipt in plain types carries its status, block and
// gas, and exactly the Anchored events among its logs, whichever contract
// emitted them.
func TestReceiptOf(t *testing.T) {
	ev := anchorcontract.NewAnchor().GetABI().Events["Anchored"]
	root := [32]byte{1, 2, 3}
	data, err := ev.Inputs.NonIndexed().Pack(root)
	if err != nil {
		t.Fatal(err)
	}
	contract, other := common.HexToAddress("0x0a"), common.HexToAddress("0x0b")
	anchored := &types.Log{Address: contract, Topics: []common.Hash{ev.ID, common.BigToHash(big.NewInt(42))}, Data: data}
	unrelated := &types.Log{Address: other, Topics: []common.Hash{common.HexToHash("0x01")}, Data: data}
	r := ethchain.ReceiptOf(&types.Receipt{Status: types.ReceiptStatusSuccessful, TxHash: common.HexToHash("0x77"),
		BlockNumber: big.NewInt(9), BlockHash: common.HexToHash("0x99"), GasUsed: 51_089, Logs: []*types.Log{unrelated, anchored}})
	want := proof.Anchored{Contract: proof.Address(contract), TreeSize: 42, Root: root}
	if !r.Succeeded() || r.BlockNumber != 9 || r.BlockHash != common.HexToHash("0x99") || r.TxHash != common.HexToHash("0x77") || r.GasUsed != 51_089 {
		t.Errorf("ReceiptOf = %+v, want status 1, block 9 (0x…99), tx 0x…77, gas 51089", r)
	}
	if len(r.Anchored) != 1 || r.Anchored[0] != want {
		t.Errorf("ReceiptOf(…).Anchored = %+v, want [%+v]", r.Anchored, want)
	}
}
