package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Proof is an inclusion proof: the ledger entry's exact bytes are leaf
// LeafIndex of the RFC 9162 Merkle tree of TreeSize leaves whose root the
// Anchor transaction recorded on chain. Raw is the document as the server
// sent it, for offline verifiers (rendertrust verify, anchor/proof).
type Proof struct {
	Alg       string      `json:"alg"` // "rfc9162-sha256"
	EntryID   string      `json:"entry_id"`
	Position  uint64      `json:"position"`
	LeafIndex uint64      `json:"leaf_index"`
	Entry     []byte      `json:"entry"`     // the entry's stored bytes
	LeafHash  string      `json:"leaf_hash"` // hex SHA-256(0x00 ‖ entry)
	TreeSize  uint64      `json:"tree_size"`
	AuditPath []string    `json:"audit_path"` // hex, lowest level first
	Root      string      `json:"root"`       // hex
	Anchor    ProofAnchor `json:"anchor"`

	Raw json.RawMessage `json:"-"`
}

// ProofAnchor names the on-chain transaction that recorded a root.
type ProofAnchor struct {
	ChainID     uint64 `json:"chain_id"`
	Contract    string `json:"contract"`
	TxHash      string `json:"tx_hash"`
	BlockNumber uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
}

// Verification is the server's check of an entry's proof against the chain.
type Verification struct {
	Verified bool              `json:"verified"`
	Checks   map[string]bool   `json:"checks"`            // check name → passed
	Details  map[string]string `json:"details,omitempty"` // what broke, per failed check
}

// Proof returns the inclusion proof of a ledger entry (a transaction's
// EntryID). It returns an *APIError: ErrNotFound for an entry that does not
// exist or is not the caller's, ErrConflict when the entry is not anchored
// yet (RetryAfter says when to look again), ErrUnavailable when the server
// runs no anchoring service.
func (c *Client) Proof(ctx context.Context, entryID string) (Proof, error) {
	p, err := pathID("entry", entryID)
	if err != nil {
		return Proof{}, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/ledger/" + p + "/proof", auth: true}, &raw); err != nil {
		return Proof{}, err
	}
	var pr Proof
	if err := json.Unmarshal(raw, &pr); err != nil {
		return Proof{}, err
	}
	pr.Raw = raw
	return pr, nil
}

// Verify asks the server to check an entry's proof, on chain included. It
// returns the errors of Proof.
func (c *Client) Verify(ctx context.Context, entryID string) (Verification, error) {
	p, err := pathID("entry", entryID)
	if err != nil {
		return Verification{}, err
	}
	var v Verification
	err = c.do(ctx, request{method: http.MethodGet, path: "/api/v1/ledger/" + p + "/verify", auth: true}, &v)
	return v, err
}
