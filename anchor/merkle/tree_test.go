package merkle_test

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// propertyLeaves is the size of the tree the property tests draw sizes and
// indices from.
const propertyLeaves = 5000

// leafHashes returns n distinct leaf hashes, as the event store would make
// them from n entries.
func leafHashes(n int) [][merkle.HashSize]byte {
	leaves := make([][merkle.HashSize]byte, n)
	for i := range leaves {
		leaves[i] = merkle.HashLeaf(fmt.Appendf(nil, `{"event":%d}`, i))
	}
	return leaves
}

// mustBuild appends leaves to a new tree in batches of random sizes and
// returns the tree and its store.
func mustBuild(tb testing.TB, rng *rand.Rand, leaves [][merkle.HashSize]byte) (*merkle.Tree, *merkle.MemStore) {
	tb.Helper()
	ctx := context.Background()
	store := new(merkle.MemStore)
	tree, err := merkle.Open(ctx, store, 0)
	if err != nil {
		tb.Fatalf("Open(empty): %v", err)
	}
	for len(leaves) > 0 {
		n := min(len(leaves), 1+rng.IntN(97))
		if err := tree.Append(ctx, leaves[:n]...); err != nil {
			tb.Fatalf("Append(%d leaves at %d): %v", n, tree.Size(), err)
		}
		leaves = leaves[n:]
	}
	return tree, store
}

// refRoot is MTH of RFC 9162 §2.1.1, computed from scratch by its
// recursive definition: MTH(D[n]) = HASH(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))
// with k the largest power of two below n.
func refRoot(leaves [][merkle.HashSize]byte) [merkle.HashSize]byte {
	switch len(leaves) {
	case 0:
		return merkle.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	return merkle.HashChildren(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

// refInclusionPath is PATH(m, D[n]) of RFC 9162 §2.1.3.1, from scratch.
func refInclusionPath(m int, leaves [][merkle.HashSize]byte) [][merkle.HashSize]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	if m < k {
		return append(refInclusionPath(m, leaves[:k]), refRoot(leaves[k:]))
	}
	return append(refInclusionPath(m-k, leaves[k:]), refRoot(leaves[:k]))
}

func TestRFC6962TestVectors(t *testing.T) {
	ctx := context.Background()
	var leaves [][merkle.HashSize]byte
	for _, in := range testonly.LeafInputs() {
		leaves = append(leaves, merkle.HashLeaf(in))
	}
	tree, store := mustBuild(t, rand.New(rand.NewPCG(1, 2)), leaves)
	for size, want := range testonly.RootHashes() {
		got, err := tree.Root(ctx, uint64(size))
		if err != nil {
			t.Fatalf("Root(%d): %v", size, err)
		}
		if got != [merkle.HashSize]byte(want) {
			t.Errorf("Root(%d) = %x, want %x", size, got, want)
		}
	}
	for level, hashes := range testonly.NodeHashes() {
		for index, want := range hashes {
			id := merkle.NodeID{Level: uint8(level), Index: uint64(index)}
			got, err := store.GetNodes(ctx, []merkle.NodeID{id})
			if err != nil {
				t.Fatalf("GetNodes(%s): %v", id, err)
			}
			if got[0] != [merkle.HashSize]byte(want) {
				t.Errorf("node %s = %x, want %x", id, got[0], want)
			}
		}
	}
	if got, want := merkle.EmptyRoot(), rfc6962.DefaultHasher.EmptyRoot(); got != [merkle.HashSize]byte(want) {
		t.Errorf("EmptyRoot() = %x, want %x", got, want)
	}
}

// TestRootAtEveryPastSize checks Root(s) for every s from 0 to the tree's
// size against MTH computed from scratch, on the tree that grew through all
// those sizes and on trees reopened from the store at each size.
func TestRootAtEveryPastSize(t *testing.T) {
	const leavesN = 1100
	ctx := context.Background()
	leaves := leafHashes(leavesN)
	tree, store := mustBuild(t, rand.New(rand.NewPCG(3, 4)), leaves)
	for size := 0; size <= leavesN; size++ {
		want := refRoot(leaves[:size])
		got, err := tree.Root(ctx, uint64(size))
		if err != nil {
			t.Fatalf("Root(%d): %v", size, err)
		}
		if got != want {
			t.Fatalf("Root(%d) = %x, want %x", size, got, want)
		}
		reopened, err := merkle.Open(ctx, store, uint64(size))
		if err != nil {
			t.Fatalf("Open(%d): %v", size, err)
		}
		if got, err := reopened.Root(ctx, uint64(size)); err != nil || got != want {
			t.Fatalf("reopened Root(%d) = %x, %v; want %x", size, got, err, want)
		}
	}
}

// TestReopenAndRetryAppend checks the retry after a crash between PutNodes
// and the caller's commit: the tree reopened at an older size appends the
// same leaves again (the store already holds their nodes) and reaches the
// same roots, while different leaves are refused as a conflict.
func TestReopenAndRetryAppend(t *testing.T) {
	ctx := context.Background()
	leaves := leafHashes(300)
	tree, store := mustBuild(t, rand.New(rand.NewPCG(5, 6)), leaves)
	want, err := tree.Root(ctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := merkle.Open(ctx, store, 123)
	if err != nil {
		t.Fatalf("Open(123): %v", err)
	}
	err = reopened.Append(ctx, merkle.HashLeaf([]byte("not the original leaf 123")))
	if !errors.Is(err, merkle.ErrNodeConflict) {
		t.Fatalf("Append(other leaf) error = %v, want ErrNodeConflict", err)
	}
	if got := reopened.Size(); got != 123 {
		t.Fatalf("Size() after failed Append = %d, want 123", got)
	}
	if err := reopened.Append(ctx, leaves[123:]...); err != nil {
		t.Fatalf("Append(same leaves again): %v", err)
	}
	if got, err := reopened.Root(ctx, 300); err != nil || got != want {
		t.Fatalf("Root(300) after retry = %x, %v; want %x", got, err, want)
	}
}

// TestInclusionPathMatchesRFC compares every inclusion path of every tree
// up to 70 leaves, and a sample of larger ones, with PATH(m, D[n]) of
// RFC 9162 computed from scratch.
func TestInclusionPathMatchesRFC(t *testing.T) {
	ctx := context.Background()
	leaves := leafHashes(propertyLeaves)
	tree, _ := mustBuild(t, rand.New(rand.NewPCG(7, 8)), leaves)
	check := func(index, size int) {
		t.Helper()
		got, err := tree.InclusionProof(ctx, uint64(index), uint64(size))
		if err != nil {
			t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
		}
		want := refInclusionPath(index, leaves[:size])
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("InclusionProof(%d, %d) = %x, want %x", index, size, got, want)
		}
	}
	for size := 1; size <= 70; size++ {
		for index := range size {
			check(index, size)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 200 {
		size := 1 + rng.IntN(propertyLeaves)
		check(rng.IntN(size), size)
	}
}

// countingStore is a NodeStore that counts reads of the store it wraps.
type countingStore struct {
	merkle.NodeStore
	mu         sync.Mutex
	calls, ids int
}

func (s *countingStore) GetNodes(ctx context.Context, ids []merkle.NodeID) ([][merkle.HashSize]byte, error) {
	s.mu.Lock()
	s.calls++
	s.ids += len(ids)
	s.mu.Unlock()
	return s.NodeStore.GetNodes(ctx, ids)
}

func (s *countingStore) take() (calls, ids int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls, ids, s.calls, s.ids = s.calls, s.ids, 0, 0
	return calls, ids
}

// TestQueriesReadLogarithmicallyManyNodes checks that each query makes one
// store read of at most 2·log2(size)+2 nodes, and the current root none.
func TestQueriesReadLogarithmicallyManyNodes(t *testing.T) {
	ctx := context.Background()
	_, mem := mustBuild(t, rand.New(rand.NewPCG(11, 12)), leafHashes(propertyLeaves))
	store := &countingStore{NodeStore: mem}
	tree, err := merkle.Open(ctx, store, propertyLeaves)
	if err != nil {
		t.Fatal(err)
	}
	store.take()
	if _, err := tree.Root(ctx, propertyLeaves); err != nil {
		t.Fatal(err)
	}
	if calls, _ := store.take(); calls != 0 {
		t.Errorf("Root(current) made %d reads, want 0", calls)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 500 {
		size := 2 + rng.Uint64N(propertyLeaves-1)
		maxIDs := 2*bits.Len64(size) + 2
		queries := map[string]func() error{
			"Root": func() error { _, err := tree.Root(ctx, size-1); return err },
			"InclusionProof": func() error {
				_, err := tree.InclusionProof(ctx, rng.Uint64N(size), size)
				return err
			},
			"ConsistencyProof": func() error {
				_, err := tree.ConsistencyProof(ctx, 1+rng.Uint64N(size-1), size)
				return err
			},
		}
		for name, query := range queries {
			if err := query(); err != nil {
				t.Fatalf("%s at size %d: %v", name, size, err)
			}
			if calls, ids := store.take(); calls != 1 || ids > maxIDs {
				t.Fatalf("%s at size %d: %d reads of %d nodes, want 1 read of at most %d", name, size, calls, ids, maxIDs)
			}
		}
	}
}
