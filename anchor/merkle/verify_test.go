package merkle_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// propertyCases is how many random (index, size) or (size1, size2) pairs
// each property test draws.
const propertyCases = 3000

type hash = [merkle.HashSize]byte

// inclusionClaim is what an inclusion proof asserts.
type inclusionClaim struct {
	leaf        hash
	index, size uint64
	path        []hash
	root        hash
}

// consistencyClaim is what a consistency proof asserts.
type consistencyClaim struct {
	size1, size2 uint64
	path         []hash
	root1, root2 hash
}

// verifiers returns the result of this package's verifier and of
// transparency-dev/merkle's reference verifier for c.
func (c inclusionClaim) verifiers() (ours, ref error) {
	ours = merkle.VerifyInclusion(c.leaf, c.index, c.size, c.path, c.root)
	ref = proof.VerifyInclusion(rfc6962.DefaultHasher, c.index, c.size, c.leaf[:], slices(c.path), c.root[:])
	return ours, ref
}

func (c consistencyClaim) verifiers() (ours, ref error) {
	ours = merkle.VerifyConsistency(c.size1, c.size2, c.path, c.root1, c.root2)
	ref = proof.VerifyConsistency(rfc6962.DefaultHasher, c.size1, c.size2, slices(c.path), c.root1[:], c.root2[:])
	return ours, ref
}

func slices(hashes []hash) [][]byte {
	out := make([][]byte, len(hashes))
	for i := range hashes {
		out[i] = hashes[i][:]
	}
	return out
}

// flipped returns h with one bit of one byte flipped.
func flipped(rng *rand.Rand, h hash) hash {
	h[rng.IntN(len(h))] ^= 1 << rng.IntN(8)
	return h
}

// withPath returns a copy of path with element i flipped.
func withFlippedElement(rng *rand.Rand, path []hash) []hash {
	out := append([]hash(nil), path...)
	i := rng.IntN(len(out))
	out[i] = flipped(rng, out[i])
	return out
}

func randomHash(rng *rand.Rand) hash {
	var h hash
	for i := range h {
		h[i] = byte(rng.Uint32())
	}
	return h
}

// propertyTree builds the tree the property tests share and returns a
// function giving its root at any size.
func propertyTree(t *testing.T) (*merkle.Tree, [][merkle.HashSize]byte, func(uint64) hash) {
	t.Helper()
	leaves := leafHashes(propertyLeaves)
	tree, _ := mustBuild(t, rand.New(rand.NewPCG(21, 22)), leaves)
	rootAt := func(size uint64) hash {
		t.Helper()
		r, err := tree.Root(context.Background(), size)
		if err != nil {
			t.Fatalf("Root(%d): %v", size, err)
		}
		return r
	}
	return tree, leaves, rootAt
}

// inclusionForgeries returns claims made from the genuine claim c that
// must not verify.
func inclusionForgeries(rng *rand.Rand, c inclusionClaim, rootAt func(uint64) hash) map[string]inclusionClaim {
	forged := map[string]inclusionClaim{}
	add := func(name string, edit func(*inclusionClaim)) {
		f := c
		f.path = append([]hash(nil), c.path...)
		edit(&f)
		forged[name] = f
	}
	add("FlippedLeaf", func(f *inclusionClaim) { f.leaf = flipped(rng, f.leaf) })
	add("WrongRoot", func(f *inclusionClaim) { f.root = flipped(rng, f.root) })
	add("IndexAtSize", func(f *inclusionClaim) { f.index = f.size })
	add("LengthenedPath", func(f *inclusionClaim) { f.path = append(f.path, randomHash(rng)) })
	add("PrependedPath", func(f *inclusionClaim) { f.path = append([]hash{randomHash(rng)}, f.path...) })
	if len(c.path) > 0 {
		add("FlippedPathByte", func(f *inclusionClaim) { f.path = withFlippedElement(rng, f.path) })
		add("ShortenedPath", func(f *inclusionClaim) { f.path = f.path[:len(f.path)-1] })
		add("DroppedFirstHash", func(f *inclusionClaim) { f.path = f.path[1:] })
	}
	if c.index+1 < c.size {
		add("NextIndex", func(f *inclusionClaim) { f.index++ })
	}
	if c.index > 0 {
		add("PreviousIndex", func(f *inclusionClaim) { f.index-- })
	}
	if c.size < propertyLeaves {
		add("SizePlusOne", func(f *inclusionClaim) { f.size++; f.root = rootAt(f.size) })
	}
	return forged
}

// TestVerifyInclusionProperty draws random sizes (1..5000) and indices,
// checks that both verifiers accept the tree's proof against the root at
// that size, and that both reject every forgery made from it.
func TestVerifyInclusionProperty(t *testing.T) {
	ctx := context.Background()
	tree, leaves, rootAt := propertyTree(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range propertyCases {
		size := 1 + rng.Uint64N(propertyLeaves)
		index := rng.Uint64N(size)
		path, err := tree.InclusionProof(ctx, index, size)
		if err != nil {
			t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
		}
		c := inclusionClaim{leaf: leaves[index], index: index, size: size, path: path, root: rootAt(size)}
		if ours, ref := c.verifiers(); ours != nil || ref != nil {
			t.Fatalf("genuine proof (%d, %d): ours %v, reference %v", index, size, ours, ref)
		}
		for name, f := range inclusionForgeries(rng, c, rootAt) {
			ours, ref := f.verifiers()
			if !errors.Is(ours, merkle.ErrProofInvalid) || ref == nil {
				t.Fatalf("%s of (%d, %d): ours %v, reference %v; want both to reject", name, index, size, ours, ref)
			}
		}
	}
}

// consistencyForgeries returns claims made from the genuine claim c, with
// 0 < size1 < size2, that must not verify.
func consistencyForgeries(rng *rand.Rand, c consistencyClaim, rootAt func(uint64) hash) map[string]consistencyClaim {
	forged := map[string]consistencyClaim{}
	add := func(name string, edit func(*consistencyClaim)) {
		f := c
		f.path = append([]hash(nil), c.path...)
		edit(&f)
		forged[name] = f
	}
	add("FlippedPathByte", func(f *consistencyClaim) { f.path = withFlippedElement(rng, f.path) })
	add("ShortenedPath", func(f *consistencyClaim) { f.path = f.path[:len(f.path)-1] })
	add("DroppedFirstHash", func(f *consistencyClaim) { f.path = f.path[1:] })
	add("LengthenedPath", func(f *consistencyClaim) { f.path = append(f.path, randomHash(rng)) })
	add("PrependedRoot1", func(f *consistencyClaim) { f.path = append([]hash{f.root1}, f.path...) })
	add("WrongRoot1", func(f *consistencyClaim) { f.root1 = flipped(rng, f.root1) })
	add("WrongRoot2", func(f *consistencyClaim) { f.root2 = flipped(rng, f.root2) })
	add("SwappedRoots", func(f *consistencyClaim) { f.root1, f.root2 = f.root2, f.root1 })
	add("Size1MinusOne", func(f *consistencyClaim) { f.size1--; f.root1 = rootAt(f.size1) })
	if c.size1+1 < c.size2 {
		add("Size1PlusOne", func(f *consistencyClaim) { f.size1++; f.root1 = rootAt(f.size1) })
	}
	if c.size2 < propertyLeaves {
		add("Size2PlusOne", func(f *consistencyClaim) { f.size2++; f.root2 = rootAt(f.size2) })
	}
	return forged
}

// TestVerifyConsistencyProperty draws random 0 ≤ size1 ≤ size2 ≤ 5000,
// checks that both verifiers accept the tree's proof against the roots at
// those sizes, and that both reject every forgery made from it.
func TestVerifyConsistencyProperty(t *testing.T) {
	ctx := context.Background()
	tree, _, rootAt := propertyTree(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range propertyCases {
		size2 := 1 + rng.Uint64N(propertyLeaves)
		size1 := rng.Uint64N(size2 + 1)
		switch i % 50 { // make the edge cases certain to occur
		case 0:
			size1 = 0
		case 1:
			size1 = size2
		case 2:
			size1 = 1 << rng.IntN(12) % size2
		}
		path, err := tree.ConsistencyProof(ctx, size1, size2)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d): %v", size1, size2, err)
		}
		c := consistencyClaim{size1: size1, size2: size2, path: path, root1: rootAt(size1), root2: rootAt(size2)}
		if ours, ref := c.verifiers(); ours != nil || ref != nil {
			t.Fatalf("genuine proof (%d, %d): ours %v, reference %v", size1, size2, ours, ref)
		}
		if size1 == 0 || size1 == size2 {
			continue
		}
		for name, f := range consistencyForgeries(rng, c, rootAt) {
			ours, ref := f.verifiers()
			if !errors.Is(ours, merkle.ErrProofInvalid) || ref == nil {
				t.Fatalf("%s of (%d, %d): ours %v, reference %v; want both to reject", name, size1, size2, ours, ref)
			}
		}
	}
}

// TestVerifyRejectsMalformedInput covers the inputs the property tests do
// not reach: impossible sizes, over-long paths, and paths cut or extended
// so that they lead to an interior node or a made-up parent passed off as
// the root of the claimed size.
func TestVerifyRejectsMalformedInput(t *testing.T) {
	var h hash
	longPath := make([]hash, merkle.ProofHashesMax+1)
	h0, h1, x := merkle.HashLeaf([]byte("0")), merkle.HashLeaf([]byte("1")), merkle.HashLeaf([]byte("x"))
	h01 := merkle.HashChildren(h0, h1)
	tests := map[string]error{
		"InclusionLeafAsRoot":           merkle.VerifyInclusion(h0, 0, 2, nil, h0),
		"InclusionSubtreeAsRoot":        merkle.VerifyInclusion(h0, 0, 4, []hash{h1}, h01),
		"InclusionExtendedPastRoot":     merkle.VerifyInclusion(h0, 0, 2, []hash{h1, x}, merkle.HashChildren(x, h01)),
		"ConsistencySubtreeAsRoot2":     merkle.VerifyConsistency(1, 4, []hash{h1}, h0, h01),
		"ConsistencyExtendedPastRoot2":  merkle.VerifyConsistency(1, 2, []hash{h1, x}, h0, merkle.HashChildren(h01, x)),
		"InclusionIndexAtSize":          merkle.VerifyInclusion(h, 5, 5, nil, h),
		"InclusionEmptyTree":            merkle.VerifyInclusion(h, 0, 0, nil, merkle.EmptyRoot()),
		"InclusionPathTooLong":          merkle.VerifyInclusion(h, 0, 1<<63, longPath, h),
		"InclusionMissingPath":          merkle.VerifyInclusion(h, 0, 2, nil, h),
		"ConsistencySize1AboveSize2":    merkle.VerifyConsistency(3, 2, []hash{h}, h, h),
		"ConsistencyEqualWithPath":      merkle.VerifyConsistency(2, 2, []hash{h}, h, h),
		"ConsistencyEqualOtherRoot":     merkle.VerifyConsistency(2, 2, nil, h, merkle.EmptyRoot()),
		"ConsistencyFromEmptyWrongRoot": merkle.VerifyConsistency(0, 2, nil, h, h),
		"ConsistencyFromEmptyWithPath":  merkle.VerifyConsistency(0, 2, []hash{h}, merkle.EmptyRoot(), h),
		"ConsistencyEmptyPath":          merkle.VerifyConsistency(1, 2, nil, h, h),
		"ConsistencyPathTooLong":        merkle.VerifyConsistency(1, 1<<63, longPath, h, h),
	}
	for name, err := range tests {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(err, merkle.ErrProofInvalid) {
				t.Errorf("error = %v, want ErrProofInvalid", err)
			}
		})
	}
}
