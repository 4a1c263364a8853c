package check

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/eventstore"
)

// treeNodesBatch is how many recomputed Merkle nodes are compared with the
// stored ones at a time.
const treeNodesBatch = 4096

// treeCheck recomputes the audit log's Merkle tree from the entries, as
// far as the audit log reached, and compares every perfect subtree's hash
// (leaves included) with the stored node proofs are served from.
type treeCheck struct {
	c       *checker
	logged  uint64
	rng     *compact.Range
	pending []merkle.Node
	stopped bool
}

func newTreeCheck(c *checker) *treeCheck {
	return &treeCheck{c: c, logged: c.r.Logged, rng: merkle.RangeFactory.NewEmptyRange(0)}
}

// leaf appends rec's leaf hash (checked against its bytes by the read).
func (t *treeCheck) leaf(ctx context.Context, rec eventstore.RecordedEvent) error {
	if t.stopped || rec.Position > t.logged {
		return nil
	}
	if t.rng.End() != rec.Position-1 {
		panic(fmt.Sprintf("check: tree at %d, entry at %d", t.rng.End(), rec.Position))
	}
	if err := t.rng.Append(rec.LeafHash[:], t.visit); err != nil {
		panic(fmt.Sprintf("check: append to compact range: %v", err))
	}
	if len(t.pending) >= treeNodesBatch {
		return t.compare(ctx)
	}
	return nil
}

func (t *treeCheck) visit(id compact.NodeID, hash []byte) {
	t.pending = append(t.pending, merkle.Node{ID: merkle.NodeID{Level: uint8(id.Level), Index: id.Index}, Hash: [merkle.HashSize]byte(hash)})
}

// stop ends the recomputation at a damaged entry: no node above it can be
// recomputed.
func (t *treeCheck) stop(position uint64) {
	if !t.stopped && position <= t.logged {
		t.stopped = true
		t.c.r.note("the Merkle tree was recomputed up to position %d only: the entry there cannot be read", position-1)
	}
}

// compare checks the pending nodes against the stored ones.
func (t *treeCheck) compare(ctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	stored, err := t.stored(ctx)
	if err != nil {
		return fmt.Errorf("check: read the Merkle tree's nodes: %w", err)
	}
	for _, n := range t.pending {
		h, ok := stored[n.ID]
		switch {
		case !ok:
			t.found(n.ID, fmt.Sprintf("node %s (%s) is missing from the stored tree", n.ID, coverage(n.ID)))
		case h != n.Hash:
			t.found(n.ID, fmt.Sprintf("stored node %s (%s) is %x; the entries give %x", n.ID, coverage(n.ID), h, n.Hash))
		}
	}
	t.c.r.TreeNodes += uint64(len(t.pending))
	t.pending = t.pending[:0]
	return nil
}

// stored reads the stored hashes of the pending nodes, which on each level
// have consecutive indexes: one range scan of anchor_nodes per level, far
// cheaper than looking nodes up by id (merkle.NodeStore.GetNodes). The
// check reads the table as stored, the layout anchor/schema.go documents.
func (t *treeCheck) stored(ctx context.Context) (map[merkle.NodeID][merkle.HashSize]byte, error) {
	type span struct{ lo, hi uint64 }
	spans := map[uint8]span{}
	for _, n := range t.pending {
		s, ok := spans[n.ID.Level]
		if !ok {
			s = span{n.ID.Index, n.ID.Index}
		}
		spans[n.ID.Level] = span{min(s.lo, n.ID.Index), max(s.hi, n.ID.Index)}
	}
	out := make(map[merkle.NodeID][merkle.HashSize]byte, len(t.pending))
	for level, s := range spans {
		rows, err := t.c.cfg.DB.Query(ctx, `SELECT idx, hash FROM anchor_nodes WHERE level = ? AND idx >= ? AND idx <= ?`,
			int64(level), int64(s.lo), int64(s.hi))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var idx int64
			var hash []byte
			if err := rows.Scan(&idx, &hash); err != nil {
				rows.Close()
				return nil, err
			}
			var h [merkle.HashSize]byte
			copy(h[:], hash) // a malformed hash shows as different
			out[merkle.NodeID{Level: level, Index: uint64(idx)}] = h
		}
		err = rows.Close()
		if err = errors.Join(err, rows.Err()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// found notes a node finding, to be reported unless a damaged entry below
// it explains it (see dropShadowedNodes).
func (t *treeCheck) found(id merkle.NodeID, detail string) {
	first, last := bounds(id)
	t.c.nodes = append(t.c.nodes, nodeFinding{id: id, first: first, last: last, detail: detail})
}

// nodeFinding is a stored node that differs from the recomputed one.
type nodeFinding struct {
	id          merkle.NodeID
	first, last uint64 // the positions it covers
	detail      string
}

// bounds returns the first and last log position a node covers.
func bounds(id merkle.NodeID) (first, last uint64) {
	begin, end := compact.NewNodeID(uint(id.Level), id.Index).Coverage()
	return begin + 1, end
}

func coverage(id merkle.NodeID) string {
	first, last := bounds(id)
	if first == last {
		return fmt.Sprintf("the leaf of position %d", first)
	}
	return fmt.Sprintf("positions %d..%d", first, last)
}

// dropShadowedNodes reports the node findings that no damaged entry
// explains: a changed entry changes every node above it, and the entry is
// reported already.
func (c *checker) dropShadowedNodes(ctx context.Context) {
	slices.Sort(c.broken)
	for _, n := range c.nodes {
		i, _ := slices.BinarySearch(c.broken, n.first)
		if i < len(c.broken) && c.broken[i] <= n.last {
			continue
		}
		// The entry named is the first whose proofs the node serves.
		c.r.add(Finding{Check: TreeNode, Position: n.first, EntryID: c.entryAt(ctx, n.first), Key: "node " + n.id.String(), Detail: n.detail})
	}
}
