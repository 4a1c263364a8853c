// Package proof is the public format of RenderTrust's audit proofs and their
// offline verifier. An inclusion proof shows that one ledger entry, byte for
// byte, is in the audit log's RFC 9162 Merkle tree at an anchored size; a
// consistency proof shows that the tree at one anchored size extends the
// tree at another. Both name the anchor: the chain, the contract and the
// transaction that recorded the root.
//
// The JSON documents are a public interface that auditors write code
// against: fields are only ever added. Merkle hashes (leaf_hash, audit_path,
// root, consistency_path) are 64 lower-case hex digits without a prefix;
// chain identifiers (contract, tx_hash, block_hash) are 0x-prefixed hex as
// JSON-RPC writes them; entry is the standard base64 of the exact stored
// bytes.
//
// Verification needs no database: SHA-256 for the Merkle checks and a
// [Chain] (any JSON-RPC endpoint, through anchor/ethchain) for the anchor.
// Chain is stated in plain types ([32]byte hashes, [Address], [Receipt]),
// so this package, like its users, does not depend on go-ethereum.
package proof

import (
	"encoding/hex"
	"fmt"
)

// Alg names the hashing and proof algorithm: RFC 9162 §2.1 over SHA-256,
// leaf hash SHA-256(0x00 ‖ entry), interior node SHA-256(0x01 ‖ left ‖ right).
const Alg = "rfc9162-sha256"

// Hash is a SHA-256 hash that encodes in JSON as 64 lower-case hex digits.
type Hash [32]byte

// String returns the hash as 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as 64 lower-case hex digits.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes exactly 64 hex digits (either case). It returns an
// error for anything else, a "0x" prefix included.
func (h *Hash) UnmarshalText(text []byte) error {
	if len(text) != 2*len(h) {
		return fmt.Errorf("hash %q: want %d hex digits", truncate(string(text)), 2*len(h))
	}
	if _, err := hex.Decode(h[:], text); err != nil {
		return fmt.Errorf("hash %q: %w", truncate(string(text)), err)
	}
	return nil
}

// Anchor names the on-chain transaction that recorded a root.
type Anchor struct {
	ChainID     uint64 `json:"chain_id"`
	Contract    string `json:"contract"`
	TxHash      string `json:"tx_hash"`
	BlockNumber uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
}

// Inclusion is the proof that one ledger entry is in the log, the answer
// of GET /api/v1/ledger/{entry_id}/proof:
//
//	{"alg": "rfc9162-sha256", "entry_id": "…", "position": 42, "leaf_index": 41,
//	 "entry": "<base64>", "leaf_hash": "<hex>", "tree_size": 100,
//	 "audit_path": ["<hex>", …], "root": "<hex>",
//	 "anchor": {"chain_id": 1337, "contract": "0x…", "tx_hash": "0x…",
//	            "block_number": 7, "block_hash": "0x…"}}
//
// Position is the entry's place in the event log (1-based); LeafIndex is
// Position − 1. AuditPath is RFC 9162's inclusion path, lowest level first,
// for LeafIndex in the tree of TreeSize leaves, whose root is Root.
type Inclusion struct {
	Alg       string `json:"alg"`
	EntryID   string `json:"entry_id"`
	Position  uint64 `json:"position"`
	LeafIndex uint64 `json:"leaf_index"`
	Entry     []byte `json:"entry"`
	LeafHash  Hash   `json:"leaf_hash"`
	TreeSize  uint64 `json:"tree_size"`
	AuditPath []Hash `json:"audit_path"`
	Root      Hash   `json:"root"`
	Anchor    Anchor `json:"anchor"`
}

// Consistency is the proof that the log at TreeSize2 extends the log at
// TreeSize1 (RFC 9162 §2.1.4), both sizes anchored, the answer of
// GET /api/v1/ledger/consistency?from=&to=:
//
//	{"alg": "rfc9162-sha256", "tree_size_1": 10, "tree_size_2": 100,
//	 "root_1": "<hex>", "root_2": "<hex>", "consistency_path": ["<hex>", …],
//	 "anchor_1": {…}, "anchor_2": {…}}
type Consistency struct {
	Alg             string `json:"alg"`
	TreeSize1       uint64 `json:"tree_size_1"`
	TreeSize2       uint64 `json:"tree_size_2"`
	Root1           Hash   `json:"root_1"`
	Root2           Hash   `json:"root_2"`
	ConsistencyPath []Hash `json:"consistency_path"`
	Anchor1         Anchor `json:"anchor_1"`
	Anchor2         Anchor `json:"anchor_2"`
}

// Hashes converts a path to Hash values; it never returns nil, so that an
// empty path encodes as [] rather than null.
func Hashes(path [][32]byte) []Hash {
	out := make([]Hash, len(path))
	for i, h := range path {
		out[i] = h
	}
	return out
}

func arrays(path []Hash) [][32]byte {
	out := make([][32]byte, len(path))
	for i, h := range path {
		out[i] = h
	}
	return out
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
