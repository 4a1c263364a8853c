// Package merkle is the audit log's RFC 9162 (Certificate Transparency v2)
// Merkle tree: the leaves are the event store's leaf hashes in global
// position order (leaf index 0 is position 1), and the tree answers root,
// inclusion-proof and consistency-proof queries for every size it has ever
// had.
//
// The tree is stored as the hashes of its perfect subtrees (see [NodeID]),
// written once when they complete and never changed afterwards. Every query
// for any past or present size reads O(log n) of them from a [NodeStore].
//
// [VerifyInclusion] and [VerifyConsistency] need nothing but SHA-256: they
// are what an auditor runs, offline, against a root read from the chain.
//
// Hashing (RFC 9162 §2.1.1), frozen because anchored roots depend on it:
//
//	leaf hash     = SHA-256(0x00 ‖ entry bytes)     (computed by the event store)
//	interior node = SHA-256(0x01 ‖ left ‖ right)
//	empty tree    = SHA-256("")
package merkle

import (
	"crypto/sha256"
	"errors"
)

// HashSize is the length in bytes of every hash in the tree.
const HashSize = sha256.Size

// Domain-separation prefixes of RFC 9162 §2.1.1. They keep a leaf from ever
// being taken for an interior node; changing them changes every root.
const (
	leafHashPrefix = 0x00
	nodeHashPrefix = 0x01
)

// Sentinel errors. Every error returned by this package wraps one of them or
// an error of the NodeStore; test with errors.Is.
var (
	// ErrIndexOutOfRange is returned for a leaf index not below the tree
	// size asked for.
	ErrIndexOutOfRange = errors.New("merkle: leaf index out of range")
	// ErrSizeOutOfRange is returned for a tree size larger than the tree,
	// or a consistency proof whose first size is larger than its second.
	ErrSizeOutOfRange = errors.New("merkle: tree size out of range")
	// ErrProofInvalid is returned by the verifiers for a proof that does
	// not prove what it claims.
	ErrProofInvalid = errors.New("merkle: proof invalid")
	// ErrTooManyLeaves is returned by Append for more than
	// AppendLeavesMax leaves.
	ErrTooManyLeaves = errors.New("merkle: too many leaves in one append")
	// ErrNodeNotFound is returned by a NodeStore asked for a node it does
	// not hold. From a Tree it means the store lost nodes or is behind the
	// size the Tree was opened with.
	ErrNodeNotFound = errors.New("merkle: node not found")
	// ErrNodeConflict is returned by a NodeStore asked to store a hash for
	// a node that already has a different one. Nodes never change, so this
	// is corruption, or two trees writing to one store.
	ErrNodeConflict = errors.New("merkle: node already stored with another hash")
)

// HashLeaf returns the RFC 9162 leaf hash of an entry's bytes:
// SHA-256(0x00 ‖ entry). It cannot fail.
func HashLeaf(entry []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte{leafHashPrefix})
	h.Write(entry)
	return [HashSize]byte(h.Sum(nil))
}

// HashChildren returns the RFC 9162 interior node hash
// SHA-256(0x01 ‖ left ‖ right). It cannot fail.
func HashChildren(left, right [HashSize]byte) [HashSize]byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = nodeHashPrefix
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot returns the root of the tree of size 0, SHA-256 of the empty
// string. It cannot fail.
func EmptyRoot() [HashSize]byte {
	return sha256.Sum256(nil)
}

// hashChildrenSlice adapts HashChildren to the []byte hash function used by
// transparency-dev/merkle's compact and proof packages. Both only pass it
// hashes of HashSize bytes that this package produced.
func hashChildrenSlice(left, right []byte) []byte {
	h := HashChildren([HashSize]byte(left), [HashSize]byte(right))
	return h[:]
}
