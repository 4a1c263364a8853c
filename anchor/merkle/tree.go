package merkle

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// AppendLeavesMax is the most leaves one Append call takes. It bounds the
// size of one PutNodes batch (about two nodes per leaf).
const AppendLeavesMax = 1 << 16

// RangeFactory builds compact ranges (transparency-dev/merkle/compact)
// with the RFC 9162 interior node hash, for code that folds leaf hashes
// into roots without a Tree (audits recompute the tree this way). It is
// stateless and safe for concurrent use.
var RangeFactory = &compact.RangeFactory{Hash: hashChildrenSlice}

// Tree is an append-only RFC 9162 Merkle tree whose nodes live in a
// NodeStore. Appends are serialized (the log has one tail); queries run
// concurrently with them and with each other, and see the tree as of the
// last Append that returned. A Tree must be the only writer of its store.
type Tree struct {
	store NodeStore

	appendMu sync.Mutex // serializes Append

	mu   sync.RWMutex // guards size and frontier
	size uint64
	// frontier holds the hashes of the perfect subtrees that make up
	// [0, size), left to right (compact.RangeNodes(0, size)). A published
	// slice is never written to again, so readers may keep it unlocked.
	frontier [][]byte
}

// Open returns the tree of the given size kept in store. size is the number
// of leaves the store holds nodes for (see NodeStore for how a store knows
// it); 0 opens an empty tree. Open reads the O(log size) nodes of the right
// border and returns an error wrapping ErrNodeNotFound if the store holds
// fewer leaves, or the store's error.
func Open(ctx context.Context, store NodeStore, size uint64) (*Tree, error) {
	hashes, err := getNodes(ctx, store, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, fmt.Errorf("open tree of size %d: %w", size, err)
	}
	return &Tree{store: store, size: size, frontier: toSlices(hashes)}, nil
}

// Size returns the number of leaves in the tree. It cannot fail.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

// Append adds leaf hashes at the end of the tree, in order, and stores the
// perfect subtrees they complete with one PutNodes call. If that fails, the
// tree is left as it was and the error is returned wrapped; appending the
// same leaves again is then safe. It returns an error wrapping
// ErrTooManyLeaves for more than AppendLeavesMax leaves.
func (t *Tree) Append(ctx context.Context, leafHashes ...[HashSize]byte) error {
	if len(leafHashes) > AppendLeavesMax {
		return fmt.Errorf("append %d leaves (max %d): %w", len(leafHashes), AppendLeavesMax, ErrTooManyLeaves)
	}
	if len(leafHashes) == 0 {
		return nil
	}
	t.appendMu.Lock()
	defer t.appendMu.Unlock()

	size, frontier := t.snapshot()
	// Clone: compact.Range appends into its slice, which readers may hold.
	rng, err := RangeFactory.NewRange(0, size, slices.Clone(frontier))
	if err != nil {
		panic(fmt.Sprintf("merkle: frontier does not match size %d: %v", size, err))
	}
	nodes := make([]Node, 0, 2*len(leafHashes)+LevelMax+1)
	visit := func(id compact.NodeID, hash []byte) {
		nodes = append(nodes, Node{ID: fromCompact(id), Hash: [HashSize]byte(hash)})
	}
	for _, leaf := range leafHashes {
		// leaf is a copy: the range keeps it, the caller keeps its slice.
		if err := rng.Append(leaf[:], visit); err != nil {
			panic(fmt.Sprintf("merkle: append to compact range: %v", err))
		}
	}
	if err := t.store.PutNodes(ctx, nodes); err != nil {
		return fmt.Errorf("append leaves [%d, %d): %w", size, rng.End(), err)
	}

	t.mu.Lock()
	t.size, t.frontier = rng.End(), rng.Hashes()
	t.mu.Unlock()
	return nil
}

// Root returns the root of the tree as it was at the given size (the empty
// root for 0). The current root costs no reads; a past one reads the
// O(log size) perfect subtrees that make up [0, size). It returns an error
// wrapping ErrSizeOutOfRange if size is larger than the tree, or the
// store's error.
func (t *Tree) Root(ctx context.Context, size uint64) ([HashSize]byte, error) {
	cur, frontier := t.snapshot()
	if size > cur {
		return [HashSize]byte{}, fmt.Errorf("root at size %d of a tree of size %d: %w", size, cur, ErrSizeOutOfRange)
	}
	if size == 0 {
		return EmptyRoot(), nil
	}
	var hashes [][HashSize]byte
	if size == cur {
		hashes = toArrays(frontier)
	} else {
		var err error
		hashes, err = getNodes(ctx, t.store, compact.RangeNodes(0, size, nil))
		if err != nil {
			return [HashSize]byte{}, fmt.Errorf("root at size %d: %w", size, err)
		}
	}
	// RFC 9162 §2.1.1: the subtrees are joined right to left.
	root := hashes[len(hashes)-1]
	for i := len(hashes) - 2; i >= 0; i-- {
		root = HashChildren(hashes[i], root)
	}
	return root, nil
}

// InclusionProof returns the RFC 9162 §2.1.3 inclusion path of the leaf at
// index (0-based) in the tree as it was at size, lowest level first, with
// one NodeStore read of O(log size) nodes. It returns an error wrapping
// ErrSizeOutOfRange if size is larger than the tree, ErrIndexOutOfRange if
// index >= size, or the store's error.
func (t *Tree) InclusionProof(ctx context.Context, index, size uint64) ([][HashSize]byte, error) {
	if cur := t.Size(); size > cur {
		return nil, fmt.Errorf("inclusion proof at size %d of a tree of size %d: %w", size, cur, ErrSizeOutOfRange)
	}
	if index >= size {
		return nil, fmt.Errorf("inclusion proof of leaf %d at size %d: %w", index, size, ErrIndexOutOfRange)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		panic(fmt.Sprintf("merkle: inclusion nodes of checked (%d, %d): %v", index, size, err))
	}
	path, err := t.rehash(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of leaf %d at size %d: %w", index, size, err)
	}
	return path, nil
}

// ConsistencyProof returns the RFC 9162 §2.1.4 consistency path from the
// tree at size1 to the tree at size2, with one NodeStore read of O(log size2)
// nodes. It is empty when size1 is 0 or equal to size2. It returns an error
// wrapping ErrSizeOutOfRange if size2 is larger than the tree or size1 is
// larger than size2, or the store's error.
func (t *Tree) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][HashSize]byte, error) {
	if cur := t.Size(); size2 > cur || size1 > size2 {
		return nil, fmt.Errorf("consistency proof from size %d to %d of a tree of size %d: %w", size1, size2, cur, ErrSizeOutOfRange)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		panic(fmt.Sprintf("merkle: consistency nodes of checked (%d, %d): %v", size1, size2, err))
	}
	path, err := t.rehash(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("consistency proof from size %d to %d: %w", size1, size2, err)
	}
	return path, nil
}

// snapshot returns the size and frontier published by the last Append.
func (t *Tree) snapshot() (uint64, [][]byte) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size, t.frontier
}

// rehash reads the perfect nodes a proof needs and joins those that make up
// its one ephemeral (imperfect) node.
func (t *Tree) rehash(ctx context.Context, nodes proof.Nodes) ([][HashSize]byte, error) {
	hashes, err := getNodes(ctx, t.store, nodes.IDs)
	if err != nil {
		return nil, err
	}
	path, err := nodes.Rehash(toSlices(hashes), hashChildrenSlice)
	if err != nil {
		panic(fmt.Sprintf("merkle: rehash proof: %v", err))
	}
	return toArrays(path), nil
}

// getNodes reads ids from store, checking that it answered every one.
func getNodes(ctx context.Context, store NodeStore, ids []compact.NodeID) ([][HashSize]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	want := make([]NodeID, len(ids))
	for i, id := range ids {
		want[i] = fromCompact(id)
	}
	hashes, err := store.GetNodes(ctx, want)
	if err != nil {
		return nil, err
	}
	if len(hashes) != len(ids) {
		return nil, fmt.Errorf("node store returned %d hashes for %d nodes", len(hashes), len(ids))
	}
	return hashes, nil
}

func fromCompact(id compact.NodeID) NodeID {
	if id.Level > LevelMax {
		panic(fmt.Sprintf("merkle: node level %d above %d", id.Level, LevelMax))
	}
	return NodeID{Level: uint8(id.Level), Index: id.Index}
}

func toSlices(hashes [][HashSize]byte) [][]byte {
	out := make([][]byte, len(hashes))
	for i := range hashes {
		out[i] = hashes[i][:]
	}
	return out
}

func toArrays(hashes [][]byte) [][HashSize]byte {
	out := make([][HashSize]byte, len(hashes))
	for i, h := range hashes {
		out[i] = [HashSize]byte(h)
	}
	return out
}
