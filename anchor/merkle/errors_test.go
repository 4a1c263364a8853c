package merkle_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// failingStore is a NodeStore whose writes fail with errDisk while fail is
// set, and which otherwise passes calls to a MemStore.
type failingStore struct {
	merkle.MemStore
	fail bool
}

var errDisk = errors.New("disk full")

func (s *failingStore) PutNodes(ctx context.Context, nodes []merkle.Node) error {
	if s.fail {
		return errDisk
	}
	return s.MemStore.PutNodes(ctx, nodes)
}

func TestTreeErrors(t *testing.T) {
	ctx := context.Background()
	tree, store := mustBuild(t, rand.New(rand.NewPCG(31, 32)), leafHashes(10))
	tests := map[string]struct {
		err  error
		want error
	}{
		"RootAboveSize": {
			err: func() error { _, err := tree.Root(ctx, 11); return err }(), want: merkle.ErrSizeOutOfRange},
		"InclusionSizeAboveSize": {
			err: func() error { _, err := tree.InclusionProof(ctx, 0, 11); return err }(), want: merkle.ErrSizeOutOfRange},
		"InclusionIndexAtSize": {
			err: func() error { _, err := tree.InclusionProof(ctx, 7, 7); return err }(), want: merkle.ErrIndexOutOfRange},
		"InclusionEmptyTree": {
			err: func() error { _, err := tree.InclusionProof(ctx, 0, 0); return err }(), want: merkle.ErrIndexOutOfRange},
		"ConsistencySize2AboveSize": {
			err: func() error { _, err := tree.ConsistencyProof(ctx, 1, 11); return err }(), want: merkle.ErrSizeOutOfRange},
		"ConsistencySize1AboveSize2": {
			err: func() error { _, err := tree.ConsistencyProof(ctx, 5, 4); return err }(), want: merkle.ErrSizeOutOfRange},
		"AppendTooManyLeaves": {
			err: tree.Append(ctx, make([][merkle.HashSize]byte, merkle.AppendLeavesMax+1)...), want: merkle.ErrTooManyLeaves},
		"OpenAboveStoredSize": {
			err: func() error { _, err := merkle.Open(ctx, store, 11); return err }(), want: merkle.ErrNodeNotFound},
		"GetMissingNode": {
			err: func() error {
				_, err := store.GetNodes(ctx, []merkle.NodeID{{Level: 0, Index: 10}})
				return err
			}(),
			want: merkle.ErrNodeNotFound},
		"PutConflictingNode": {
			err: store.PutNodes(ctx, []merkle.Node{
				{ID: merkle.NodeID{Level: 0, Index: 10}, Hash: merkle.HashLeaf([]byte("new"))},
				{ID: merkle.NodeID{Level: 1, Index: 0}, Hash: merkle.HashLeaf([]byte("forged"))},
			}),
			want: merkle.ErrNodeConflict},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("error = %v, want %v", tt.err, tt.want)
			}
		})
	}
	// The conflicting batch stored nothing, not even its new node.
	if _, err := store.GetNodes(ctx, []merkle.NodeID{{Level: 0, Index: 10}}); !errors.Is(err, merkle.ErrNodeNotFound) {
		t.Errorf("node 0/10 after refused batch: error = %v, want ErrNodeNotFound", err)
	}
}

// TestAppendFailureLeavesTreeUnchanged checks that a failed store write
// leaves size and roots as they were and that the same append then works.
func TestAppendFailureLeavesTreeUnchanged(t *testing.T) {
	ctx := context.Background()
	leaves := leafHashes(40)
	store := new(failingStore)
	tree, err := merkle.Open(ctx, store, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Append(ctx, leaves[:21]...); err != nil {
		t.Fatal(err)
	}
	store.fail = true
	if err := tree.Append(ctx, leaves[21:]...); !errors.Is(err, errDisk) {
		t.Fatalf("Append with failing store: error = %v, want %v", err, errDisk)
	}
	if got, err := tree.Root(ctx, tree.Size()); tree.Size() != 21 || err != nil || got != refRoot(leaves[:21]) {
		t.Fatalf("after failed Append: Size() = %d, Root = %x, %v; want 21, %x", tree.Size(), got, err, refRoot(leaves[:21]))
	}
	store.fail = false
	if err := tree.Append(ctx, leaves[21:]...); err != nil {
		t.Fatal(err)
	}
	if got, err := tree.Root(ctx, 40); err != nil || got != refRoot(leaves) {
		t.Fatalf("Root(40) = %x, %v; want %x", got, err, refRoot(leaves))
	}
}

// TestConcurrentAppendAndQueries runs one appender against readers that
// prove inclusion and consistency at sizes they saw; run it with -race.
func TestConcurrentAppendAndQueries(t *testing.T) {
	const leavesN, readers = 3000, 4
	ctx := context.Background()
	leaves := leafHashes(leavesN)
	tree, err := merkle.Open(ctx, new(merkle.MemStore), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Append(ctx, leaves[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 41))
			for {
				select {
				case <-done:
					return
				default:
				}
				size := tree.Size()
				index := rng.Uint64N(size)
				root, err := tree.Root(ctx, size)
				if err != nil {
					t.Errorf("Root(%d): %v", size, err)
					return
				}
				path, err := tree.InclusionProof(ctx, index, size)
				if err == nil {
					err = merkle.VerifyInclusion(leaves[index], index, size, path, root)
				}
				if err != nil {
					t.Errorf("inclusion (%d, %d): %v", index, size, err)
					return
				}
			}
		})
	}
	for i := 1; i < leavesN; i += 7 {
		if err := tree.Append(ctx, leaves[i:min(i+7, leavesN)]...); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}

// TestMemStoreRefusesBadBatches checks that MemStore stores nothing of a
// batch that leaves a gap or gives one new node two hashes.
func TestMemStoreRefusesBadBatches(t *testing.T) {
	ctx := context.Background()
	a, b := merkle.HashLeaf([]byte("a")), merkle.HashLeaf([]byte("b"))
	batches := map[string][]merkle.Node{
		"Gap": {
			{ID: merkle.NodeID{Level: 0, Index: 0}, Hash: a},
			{ID: merkle.NodeID{Level: 0, Index: 2}, Hash: b},
		},
		"LevelAboveMax": {
			{ID: merkle.NodeID{Level: 0, Index: 0}, Hash: a},
			{ID: merkle.NodeID{Level: merkle.LevelMax + 1, Index: 0}, Hash: b},
		},
		"NewNodeTwiceWithTwoHashes": {
			{ID: merkle.NodeID{Level: 0, Index: 0}, Hash: a},
			{ID: merkle.NodeID{Level: 0, Index: 0}, Hash: b},
		},
	}
	for name, nodes := range batches {
		t.Run(name, func(t *testing.T) {
			store := new(merkle.MemStore)
			if err := store.PutNodes(ctx, nodes); err == nil {
				t.Fatal("PutNodes succeeded, want an error")
			}
			if n := store.Len(); n != 0 {
				t.Errorf("Len() after refused batch = %d, want 0", n)
			}
		})
	}
}
