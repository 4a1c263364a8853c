package merkle_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

const (
	// benchBatchLeaves is how many leaves one Append carries in the
	// benchmarks, about what one group commit of the event store holds.
	benchBatchLeaves = 1024
	// bigTreeLeaves is the size of the tree the proof benchmarks query.
	bigTreeLeaves = 10_000_000
)

// BenchmarkAppend measures leaves appended per second to a MemStore.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	pool := leafHashes(1 << 16)
	tree, err := merkle.Open(ctx, new(merkle.MemStore), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for done := 0; done < b.N; {
		start := done % len(pool)
		n := min(benchBatchLeaves, b.N-done, len(pool)-start)
		if err := tree.Append(ctx, pool[start:start+n]...); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

var bigTree struct {
	once   sync.Once
	tree   *merkle.Tree
	leaves [][merkle.HashSize]byte
	root   [merkle.HashSize]byte
}

// mustBigTree builds the 10,000,000-leaf tree once per test binary.
func mustBigTree(b *testing.B) (*merkle.Tree, [][merkle.HashSize]byte, [merkle.HashSize]byte) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	bigTree.once.Do(func() {
		ctx := context.Background()
		start := time.Now()
		leaves := leafHashes(bigTreeLeaves)
		store := new(merkle.MemStore)
		tree, err := merkle.Open(ctx, store, 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(leaves); i += benchBatchLeaves {
			if err := tree.Append(ctx, leaves[i:min(i+benchBatchLeaves, len(leaves))]...); err != nil {
				b.Fatal(err)
			}
		}
		root, err := tree.Root(ctx, bigTreeLeaves)
		if err != nil {
			b.Fatal(err)
		}
		bigTree.tree, bigTree.leaves, bigTree.root = tree, leaves, root
		b.Logf("built %d-leaf tree (%d nodes) in %v", bigTreeLeaves, store.Len(), time.Since(start))
	})
	return bigTree.tree, bigTree.leaves, bigTree.root
}

// BenchmarkInclusionProof10M measures making an inclusion proof for a
// random leaf of a 10,000,000-leaf tree at its current size.
func BenchmarkInclusionProof10M(b *testing.B) {
	tree, _, _ := mustBigTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(51, 52))
	for b.Loop() {
		if _, err := tree.InclusionProof(ctx, rng.Uint64N(bigTreeLeaves), bigTreeLeaves); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInclusionProofPastSize10M measures an inclusion proof at a
// random past size of a 10,000,000-leaf tree.
func BenchmarkInclusionProofPastSize10M(b *testing.B) {
	tree, _, _ := mustBigTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(53, 54))
	for b.Loop() {
		size := 1 + rng.Uint64N(bigTreeLeaves)
		if _, err := tree.InclusionProof(ctx, rng.Uint64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyInclusion10M measures VerifyInclusion of a proof in a
// 10,000,000-leaf tree.
func BenchmarkVerifyInclusion10M(b *testing.B) {
	tree, leaves, root := mustBigTree(b)
	const index = 7_654_321
	path, err := tree.InclusionProof(context.Background(), index, bigTreeLeaves)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := merkle.VerifyInclusion(leaves[index], index, bigTreeLeaves, path, root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistencyProof10M measures a consistency proof from a random
// past size to the current size of a 10,000,000-leaf tree.
func BenchmarkConsistencyProof10M(b *testing.B) {
	tree, _, _ := mustBigTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(55, 56))
	for b.Loop() {
		if _, err := tree.ConsistencyProof(ctx, 1+rng.Uint64N(bigTreeLeaves-1), bigTreeLeaves); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRootPastSize10M measures Root at a random past size of a
// 10,000,000-leaf tree.
func BenchmarkRootPastSize10M(b *testing.B) {
	tree, _, _ := mustBigTree(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(57, 58))
	for b.Loop() {
		if _, err := tree.Root(ctx, 1+rng.Uint64N(bigTreeLeaves-1)); err != nil {
			b.Fatal(err)
		}
	}
}
