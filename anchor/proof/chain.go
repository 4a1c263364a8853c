package proof

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"

	"golang.org/x/crypto/sha3"
)

// Sentinel errors of a Chain; test with errors.Is.
var (
	// ErrNotFound is returned for a receipt, block or anchor the chain does
	// not have (yet, or any more after a reorganisation).
	ErrNotFound = errors.New("not found on chain")
	// ErrIndexing is returned for a receipt asked of a node that is still
	// indexing transactions (after a start): it may have the receipt
	// later. Errors wrapping it also match ErrNotFound.
	ErrIndexing = errors.New("node still indexing transactions")
	// ErrNoContract is returned by contract reads of an address that has
	// no code on the chain.
	ErrNoContract = errors.New("no contract at the address")
)

// Chain is what verification reads from the chain that holds the anchors.
// *ethchain.Client implements it over any JSON-RPC endpoint. Methods that
// find nothing return errors wrapping ErrNotFound; RootAt of an address
// without code returns one wrapping ErrNoContract.
type Chain interface {
	ChainID() uint64
	// RootAt returns the root contract holds for size, zero if none.
	RootAt(ctx context.Context, contract Address, size uint64) ([32]byte, error)
	// Receipt returns the receipt of transaction tx in the canonical chain.
	Receipt(ctx context.Context, tx [32]byte) (*Receipt, error)
	// BlockHash returns the hash of the canonical block at number.
	BlockHash(ctx context.Context, number uint64) ([32]byte, error)
}

// Address is an EVM account or contract address.
type Address [20]byte

// addressHexDigits is the length of an address in hex, without a prefix.
const addressHexDigits = 40

// ParseAddress decodes 40 hex digits, in either case, with or without a
// "0x" prefix (the checksum of a mixed-case address is not checked). ok is
// false for anything else.
func ParseAddress(s string) (a Address, ok bool) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s) != addressHexDigits {
		return Address{}, false
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return Address{}, false
	}
	return a, true
}

// Hex returns the address as "0x" and 40 hex digits in EIP-55's mixed-case
// checksum encoding, as JSON-RPC clients and block explorers write it. The
// anchor records store this form: it may never change.
func (a Address) Hex() string {
	buf := []byte(hex.EncodeToString(a[:]))
	h := sha3.NewLegacyKeccak256()
	h.Write(buf)
	sum := h.Sum(nil)
	for i, c := range buf {
		nibble := sum[i/2]
		if i%2 == 0 {
			nibble >>= 4
		}
		if c > '9' && nibble&0xf > 7 {
			buf[i] = c - 'a' + 'A'
		}
	}
	return "0x" + string(buf)
}

// String returns Hex.
func (a Address) String() string { return a.Hex() }

// Receipt is what verification and the anchor worker read of a mined
// transaction.
type Receipt struct {
	TxHash [32]byte
	// Status is 1 if the transaction succeeded, 0 if it reverted (EIP-658).
	Status      uint64
	BlockNumber uint64
	BlockHash   [32]byte
	GasUsed     uint64
	// Anchored lists the Anchored events the transaction emitted, from
	// whatever contract.
	Anchored []Anchored
}

// Anchored is one Anchored(treeSize, root) event of the Anchor contract
// (contracts/Anchor.sol) at address Contract.
type Anchored struct {
	Contract Address
	TreeSize uint64
	Root     [32]byte
}

// Succeeded reports whether the transaction succeeded. It cannot fail.
func (r *Receipt) Succeeded() bool { return r.Status == 1 }

// anchoredIn reports whether r carries contract's Anchored(size, root).
func (r *Receipt) anchoredIn(contract Address, size uint64, root [32]byte) bool {
	for _, ev := range r.Anchored {
		if ev.Contract == contract && ev.TreeSize == size && ev.Root == root {
			return true
		}
	}
	return false
}

// TxHex returns a transaction or block hash as JSON-RPC writes it: "0x" and
// 64 lower-case hex digits, the form of Anchor's tx_hash and block_hash.
func TxHex(h [32]byte) string { return "0x" + hex.EncodeToString(h[:]) }
