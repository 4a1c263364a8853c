package domain

import "time"

// EventAnchorRecorded is the type name of AnchorRecorded. It is stored in
// the event log and never changes.
const EventAnchorRecorded = "anchor.recorded"

// AnchorStream is the stream that holds every AnchorRecorded event. Its name
// is part of the event log and never changes.
const AnchorStream = "anchors"

// AnchorRecorded records that the root of the audit log's Merkle tree at
// TreeSize was anchored on an EVM chain and that the anchoring transaction
// reached the required confirmations. Anchors are events too, so the log
// holds the whole truth and a replay rebuilds the anchor index.
//
// The same size may be recorded more than once when a reorganisation of the
// chain moved or dropped an anchor after it was recorded; the record with the
// highest log position is the current one.
//
// Hashes are lower-case hex. Root is a Merkle hash and has no prefix, like
// the proofs' leaf and path hashes; Contract, TxHash and BlockHash are chain
// identifiers and carry the "0x" prefix JSON-RPC uses.
type AnchorRecorded struct {
	TreeSize    uint64    `json:"tree_size"`
	Root        string    `json:"root"`
	ChainID     uint64    `json:"chain_id"`
	Contract    string    `json:"contract"`
	TxHash      string    `json:"tx_hash"`
	BlockNumber uint64    `json:"block_number"`
	BlockHash   string    `json:"block_hash"`
	At          time.Time `json:"at"`
}

// EventType returns EventAnchorRecorded.
func (AnchorRecorded) EventType() string { return EventAnchorRecorded }

// NewAnchorRecorded returns a with At set to now (UTC, microseconds) and its
// hex fields in lower case, after checking every field. It returns an *Error
// with CodeInvalid naming the first malformed field.
func NewAnchorRecorded(a AnchorRecorded, now time.Time) (AnchorRecorded, error) {
	a.Root = lowerASCII(a.Root)
	a.Contract = lowerASCII(a.Contract)
	a.TxHash = lowerASCII(a.TxHash)
	a.BlockHash = lowerASCII(a.BlockHash)
	checks := []struct {
		field string
		ok    bool
	}{
		{"tree_size", a.TreeSize > 0},
		{"root", isHex(a.Root, 64)},
		{"chain_id", a.ChainID > 0},
		{"contract", len(a.Contract) == 42 && a.Contract[:2] == "0x" && isHex(a.Contract[2:], 40)},
		{"tx_hash", len(a.TxHash) == 66 && a.TxHash[:2] == "0x" && isHex(a.TxHash[2:], 64)},
		{"block_hash", len(a.BlockHash) == 66 && a.BlockHash[:2] == "0x" && isHex(a.BlockHash[2:], 64)},
	}
	for _, c := range checks {
		if !c.ok {
			return AnchorRecorded{}, Errorf(CodeInvalid, "anchor record: malformed %s", c.field)
		}
	}
	a.At = stamp(now)
	return a, nil
}

// isHex reports whether s is exactly n lower-case hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// lowerASCII returns s with A-Z mapped to a-z.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
