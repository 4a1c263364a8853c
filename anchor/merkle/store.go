package merkle

import (
	"context"
	"fmt"
	"sync"
)

// LevelMax is the highest level a NodeID can have: a node at level 63
// covers 2^63 leaves.
const LevelMax = 63

// NodeID names a perfect subtree: the node at Level L and Index i covers
// the leaves [i·2^L, (i+1)·2^L). Level 0 nodes are the leaf hashes
// themselves. A node exists only once all of its leaves exist, and its hash
// never changes afterwards; the roots of imperfect trees are never stored.
//
//	level 2:        (2,0)           (2,1)
//	level 1:    (1,0)   (1,1)   (1,2)   (1,3)
//	level 0:  0   1   2   3   4   5   6   7
//
// This is the layout of transparency-dev/merkle's compact ranges. A store
// keys rows by (Level, Index); Level fits a SMALLINT and Index fits a BIGINT
// (it is below 2^(64-Level), and below 2^63 for any tree of fewer than 2^63
// leaves).
type NodeID struct {
	Level uint8
	Index uint64
}

// String returns "L/I", for error messages.
func (id NodeID) String() string {
	return fmt.Sprintf("%d/%d", id.Level, id.Index)
}

// Node is a perfect subtree's ID and hash.
type Node struct {
	ID   NodeID
	Hash [HashSize]byte
}

// NodeStore keeps the nodes of one tree. The Tree is its only writer; the
// SQLite and PostgreSQL implementations keep them in a table keyed by
// (level, index), ideally in the same database as the events.
//
// Contract, checked by storetest.Run, which every implementation's tests
// should call:
//
//   - GetNodes returns the hashes of ids, in the order of ids (ids may
//     repeat). If any id is not stored it returns an error wrapping
//     ErrNodeNotFound and no hashes. A Tree asks for at most a few hundred
//     ids per call (O(log n)) and makes one call per query.
//   - PutNodes stores nodes atomically: after a failure none or all of them
//     may be visible to later GetNodes calls, never some. The Tree passes
//     one call per Append, at most 2·AppendLeavesMax+LevelMax+1 nodes, in
//     the order they complete (increasing index within each level).
//   - PutNodes may be given a node that is already stored (a retried
//     Append after a crash between PutNodes and the caller's own commit).
//     With the same hash it succeeds; with another hash the store refuses
//     with an error wrapping ErrNodeConflict and stores none of the batch.
//   - Both are safe for concurrent use: one Append may run while any number
//     of queries read nodes that are already stored.
//   - Errors of the database are returned wrapped (%w) with context.
//
// A store knows its tree size without a separate row: it is one more than
// the highest level-0 index stored, since PutNodes is atomic and Append
// writes the leaves in order.
type NodeStore interface {
	GetNodes(ctx context.Context, ids []NodeID) ([][HashSize]byte, error)
	PutNodes(ctx context.Context, nodes []Node) error
}

var _ NodeStore = (*MemStore)(nil)

// MemStore is a NodeStore in memory, for tests and benchmarks. It keeps
// each level as a dense slice, so besides nodes it already holds it accepts
// only each level's next index, which is the order in which a Tree writes
// them. Its zero value is an empty store ready for use. It is safe for
// concurrent use.
type MemStore struct {
	mu     sync.RWMutex
	levels [LevelMax + 1][][HashSize]byte
}

// GetNodes returns the hashes of ids in order. It returns an error wrapping
// ErrNodeNotFound if any id is not stored, or ctx.Err() if ctx is done.
func (s *MemStore) GetNodes(ctx context.Context, ids []NodeID) ([][HashSize]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	hashes := make([][HashSize]byte, len(ids))
	for i, id := range ids {
		if id.Level > LevelMax || id.Index >= uint64(len(s.levels[id.Level])) {
			return nil, fmt.Errorf("get node %s: %w", id, ErrNodeNotFound)
		}
		hashes[i] = s.levels[id.Level][id.Index]
	}
	return hashes, nil
}

// PutNodes stores nodes, all or none. It returns an error wrapping
// ErrNodeConflict if a node is already stored with another hash, an error
// if a node would leave a gap in its level, and ctx.Err() if ctx is done;
// in each case it stores nothing.
func (s *MemStore) PutNodes(ctx context.Context, nodes []Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(nodes); err != nil {
		return err
	}
	for _, n := range nodes {
		level := &s.levels[n.ID.Level]
		if n.ID.Index == uint64(len(*level)) {
			*level = append(*level, n.Hash)
		}
	}
	return nil
}

// check returns the error PutNodes must return for nodes, or nil.
func (s *MemStore) check(nodes []Node) error {
	var next [LevelMax + 1]uint64 // each level's length once nodes[:i] are in
	for l := range next {
		next[l] = uint64(len(s.levels[l]))
	}
	for i, n := range nodes {
		id := n.ID
		if id.Level > LevelMax {
			return fmt.Errorf("put node %s: level above %d", id, LevelMax)
		}
		if id.Index > next[id.Level] {
			return fmt.Errorf("put node %s: memory store level %d holds %d nodes: gap", id, id.Level, next[id.Level])
		}
		stored := s.levels[id.Level]
		switch {
		case id.Index == next[id.Level]:
			next[id.Level]++
		case id.Index < uint64(len(stored)):
			if stored[id.Index] != n.Hash {
				return fmt.Errorf("put node %s: %w", id, ErrNodeConflict)
			}
		default: // the same new node twice in one batch
			for _, earlier := range nodes[:i] {
				if earlier.ID == id && earlier.Hash != n.Hash {
					return fmt.Errorf("put node %s: %w", id, ErrNodeConflict)
				}
			}
		}
	}
	return nil
}

// Len returns the number of nodes stored. It cannot fail.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, level := range s.levels {
		n += len(level)
	}
	return n
}
