// Package storetest is the contract suite every merkle.NodeStore passes:
// the memory store here, and the SQLite and PostgreSQL stores in their own
// packages, each with
//
//	func TestNodeStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) merkle.NodeStore { return openEmptyStore(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// suiteLeaves is the size of the tree each case builds.
const suiteLeaves = 300

// Run runs the NodeStore contract cases as subtests. newStore returns an
// empty store; it is called once per case.
func Run(t *testing.T, newStore func(t *testing.T) merkle.NodeStore) {
	cases := map[string]func(*testing.T, merkle.NodeStore){
		"GetReturnsHashesInOrder":      testGetInOrder,
		"GetMissingNode":               testGetMissing,
		"PutSameNodesAgain":            testPutAgain,
		"PutConflictStoresNothing":     testPutConflict,
		"TreeRootsAndProofsAfterOpen":  testTreeOnStore,
		"ReadsDuringAppend":            testReadsDuringAppend,
		"CanceledContextIsAnError":     testCanceled,
		"EmptyRequestsAreFine":         testEmpty,
		"NodesOfEveryLevelRoundTrip":   testDeepLevels,
		"GetRepeatedAndUnorderedNodes": testGetUnordered,
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { tc(t, newStore(t)) })
	}
}

// leaves returns n distinct leaf hashes.
func leaves(n int) [][merkle.HashSize]byte {
	out := make([][merkle.HashSize]byte, n)
	for i := range out {
		out[i] = merkle.HashLeaf(fmt.Appendf(nil, "storetest leaf %d", i))
	}
	return out
}

// mustGrow appends leaves to a tree on store in batches of batch leaves and
// returns the tree and every node it wrote, as a MemStore copy.
func mustGrow(t *testing.T, store merkle.NodeStore, ls [][merkle.HashSize]byte, batch int) (*merkle.Tree, *merkle.MemStore) {
	t.Helper()
	ctx := context.Background()
	mirror := new(merkle.MemStore)
	tree, err := merkle.Open(ctx, store, 0)
	if err != nil {
		t.Fatalf("Open(store, 0): %v", err)
	}
	shadow, err := merkle.Open(ctx, mirror, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(ls); i += batch {
		b := ls[i:min(i+batch, len(ls))]
		if err := tree.Append(ctx, b...); err != nil {
			t.Fatalf("Append at %d: %v", i, err)
		}
		if err := shadow.Append(ctx, b...); err != nil {
			t.Fatal(err)
		}
	}
	return tree, mirror
}

// allIDs returns the IDs of every node of a tree of size leaves.
func allIDs(size uint64) []merkle.NodeID {
	var ids []merkle.NodeID
	for level := uint8(0); size>>level > 0; level++ {
		for i := range size >> level {
			ids = append(ids, merkle.NodeID{Level: level, Index: i})
		}
	}
	return ids
}

func mustGet(t *testing.T, store merkle.NodeStore, ids []merkle.NodeID) [][merkle.HashSize]byte {
	t.Helper()
	hashes, err := store.GetNodes(context.Background(), ids)
	if err != nil {
		t.Fatalf("GetNodes(%d ids): %v", len(ids), err)
	}
	if len(hashes) != len(ids) {
		t.Fatalf("GetNodes(%d ids) returned %d hashes", len(ids), len(hashes))
	}
	return hashes
}

func testGetInOrder(t *testing.T, store merkle.NodeStore) {
	mustGrow(t, store, leaves(suiteLeaves), 7)
	_, mirror := mustGrow(t, new(merkle.MemStore), leaves(suiteLeaves), 7)
	ids := allIDs(suiteLeaves)
	got, want := mustGet(t, store, ids), mustGet(t, mirror, ids)
	for i := range ids {
		if got[i] != want[i] {
			t.Fatalf("node %s = %x, want %x", ids[i], got[i], want[i])
		}
	}
}

func testGetUnordered(t *testing.T, store merkle.NodeStore) {
	_, mirror := mustGrow(t, store, leaves(suiteLeaves), 50)
	ids := []merkle.NodeID{{Level: 3, Index: 2}, {Level: 0, Index: 299}, {Level: 3, Index: 2}, {Level: 0, Index: 0}, {Level: 8, Index: 0}}
	got, want := mustGet(t, store, ids), mustGet(t, mirror, ids)
	for i := range ids {
		if got[i] != want[i] {
			t.Errorf("node %s (position %d) = %x, want %x", ids[i], i, got[i], want[i])
		}
	}
}

func testGetMissing(t *testing.T, store merkle.NodeStore) {
	mustGrow(t, store, leaves(10), 10)
	for _, missing := range []merkle.NodeID{{Level: 0, Index: 10}, {Level: 1, Index: 5}, {Level: 4, Index: 0}} {
		hashes, err := store.GetNodes(context.Background(), []merkle.NodeID{{Level: 0, Index: 0}, missing})
		if !errors.Is(err, merkle.ErrNodeNotFound) || hashes != nil {
			t.Errorf("GetNodes(0/0, %s) = %d hashes, %v; want none, ErrNodeNotFound", missing, len(hashes), err)
		}
	}
}

func testPutAgain(t *testing.T, store merkle.NodeStore) {
	ls := leaves(suiteLeaves)
	tree, _ := mustGrow(t, store, ls, 13)
	want, err := tree.Root(context.Background(), suiteLeaves)
	if err != nil {
		t.Fatal(err)
	}
	// A tree reopened at an older size writes nodes the store holds again.
	again, err := merkle.Open(context.Background(), store, 100)
	if err != nil {
		t.Fatalf("Open(100): %v", err)
	}
	if err := again.Append(context.Background(), ls[100:]...); err != nil {
		t.Fatalf("Append of stored leaves: %v", err)
	}
	if got, err := again.Root(context.Background(), suiteLeaves); err != nil || got != want {
		t.Fatalf("Root after re-append = %x, %v; want %x", got, err, want)
	}
}

func testPutConflict(t *testing.T, store merkle.NodeStore) {
	mustGrow(t, store, leaves(10), 10)
	next := merkle.NodeID{Level: 0, Index: 10}
	err := store.PutNodes(context.Background(), []merkle.Node{
		{ID: next, Hash: merkle.HashLeaf([]byte("new"))},
		{ID: merkle.NodeID{Level: 1, Index: 2}, Hash: merkle.HashLeaf([]byte("forged"))},
	})
	if !errors.Is(err, merkle.ErrNodeConflict) {
		t.Fatalf("PutNodes(conflict) error = %v, want ErrNodeConflict", err)
	}
	if _, err := store.GetNodes(context.Background(), []merkle.NodeID{next}); !errors.Is(err, merkle.ErrNodeNotFound) {
		t.Errorf("node %s of the refused batch: error = %v, want ErrNodeNotFound", next, err)
	}
}

func testTreeOnStore(t *testing.T, store merkle.NodeStore) {
	ctx := context.Background()
	ls := leaves(suiteLeaves)
	_, mirror := mustGrow(t, store, ls, 11)
	want, err := merkle.Open(ctx, mirror, suiteLeaves)
	if err != nil {
		t.Fatal(err)
	}
	full, err := merkle.Open(ctx, store, suiteLeaves)
	if err != nil {
		t.Fatalf("Open(%d): %v", suiteLeaves, err)
	}
	last, _ := want.Root(ctx, suiteLeaves)
	for _, size := range []uint64{1, 2, 3, 64, 100, 255, 256, 257, 299, 300} {
		tree, err := merkle.Open(ctx, store, size)
		if err != nil {
			t.Fatalf("Open(%d): %v", size, err)
		}
		root, err := tree.Root(ctx, size)
		if wantRoot, _ := want.Root(ctx, size); err != nil || root != wantRoot {
			t.Fatalf("Root(%d) = %x, %v; want %x", size, root, err, wantRoot)
		}
		for _, index := range []uint64{0, size / 2, size - 1} {
			path, err := tree.InclusionProof(ctx, index, size)
			if err == nil {
				err = merkle.VerifyInclusion(ls[index], index, size, path, root)
			}
			if err != nil {
				t.Fatalf("inclusion of %d at %d: %v", index, size, err)
			}
		}
		path, err := full.ConsistencyProof(ctx, size, suiteLeaves)
		if err == nil {
			err = merkle.VerifyConsistency(size, suiteLeaves, path, root, last)
		}
		if err != nil {
			t.Fatalf("consistency %d to %d: %v", size, suiteLeaves, err)
		}
	}
}

func testReadsDuringAppend(t *testing.T, store merkle.NodeStore) {
	ctx := context.Background()
	ls := leaves(suiteLeaves)
	tree, err := merkle.Open(ctx, store, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Append(ctx, ls[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(0); ; i++ {
			select {
			case <-done:
				return
			default:
			}
			size := tree.Size()
			index := i % size
			root, err := tree.Root(ctx, size)
			if err != nil {
				t.Errorf("Root(%d): %v", size, err)
				return
			}
			path, err := tree.InclusionProof(ctx, index, size)
			if err == nil {
				err = merkle.VerifyInclusion(ls[index], index, size, path, root)
			}
			if err != nil {
				t.Errorf("inclusion of %d at %d: %v", index, size, err)
				return
			}
		}
	})
	for i := 1; i < len(ls); i += 3 {
		if err := tree.Append(ctx, ls[i:min(i+3, len(ls))]...); err != nil {
			t.Errorf("Append at %d: %v", i, err)
			break
		}
	}
	close(done)
	wg.Wait()
}

func testCanceled(t *testing.T, store merkle.NodeStore) {
	mustGrow(t, store, leaves(4), 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.GetNodes(ctx, []merkle.NodeID{{Level: 0, Index: 0}}); err == nil {
		t.Error("GetNodes with a canceled context succeeded")
	}
	next := merkle.NodeID{Level: 0, Index: 4}
	if err := store.PutNodes(ctx, []merkle.Node{{ID: next, Hash: merkle.HashLeaf(nil)}}); err == nil {
		t.Error("PutNodes with a canceled context succeeded")
	}
	if _, err := store.GetNodes(context.Background(), []merkle.NodeID{next}); !errors.Is(err, merkle.ErrNodeNotFound) {
		t.Errorf("node %s put with a canceled context: error = %v, want ErrNodeNotFound", next, err)
	}
}

func testEmpty(t *testing.T, store merkle.NodeStore) {
	if err := store.PutNodes(context.Background(), nil); err != nil {
		t.Errorf("PutNodes(nil) = %v", err)
	}
	if hashes, err := store.GetNodes(context.Background(), nil); err != nil || len(hashes) != 0 {
		t.Errorf("GetNodes(nil) = %d hashes, %v; want none, nil", len(hashes), err)
	}
}

// testDeepLevels stores the first node of every level, as a tree of 2^63
// leaves would, and reads them back.
func testDeepLevels(t *testing.T, store merkle.NodeStore) {
	var nodes []merkle.Node
	var ids []merkle.NodeID
	for level := range uint8(merkle.LevelMax + 1) {
		id := merkle.NodeID{Level: level, Index: 0}
		nodes = append(nodes, merkle.Node{ID: id, Hash: merkle.HashLeaf([]byte{level})})
		ids = append(ids, id)
	}
	if err := store.PutNodes(context.Background(), nodes); err != nil {
		t.Fatalf("PutNodes(levels 0..%d): %v", merkle.LevelMax, err)
	}
	got := mustGet(t, store, ids)
	for i, n := range nodes {
		if got[i] != n.Hash {
			t.Errorf("node %s = %x, want %x", n.ID, got[i], n.Hash)
		}
	}
}
