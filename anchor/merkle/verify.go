package merkle

import "fmt"

// ProofHashesMax is the longest path VerifyInclusion and VerifyConsistency
// accept: a tree of at most 2^64-1 leaves is at most 64 levels deep, and a
// consistency path may carry one more hash than an inclusion path.
const ProofHashesMax = 65

// VerifyInclusion checks that path proves the leaf with hash leafHash is at
// index (0-based) in the tree of the given size whose root is root, with the
// algorithm of RFC 9162 §2.1.3.2 step by step. It returns nil if it does,
// and otherwise an error wrapping ErrProofInvalid. root must come from a
// trusted source for that exact size (the anchor contract's rootAt).
func VerifyInclusion(leafHash [HashSize]byte, index, size uint64, path [][HashSize]byte, root [HashSize]byte) error {
	if index >= size {
		return fmt.Errorf("%w: leaf index %d not below tree size %d", ErrProofInvalid, index, size)
	}
	if len(path) > ProofHashesMax {
		return fmt.Errorf("%w: %d hashes in path (max %d)", ErrProofInvalid, len(path), ProofHashesMax)
	}
	fn, sn := index, size-1
	r := leafHash
	for _, p := range path {
		if sn == 0 {
			return fmt.Errorf("%w: inclusion path too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			r = HashChildren(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = HashChildren(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 {
		return fmt.Errorf("%w: inclusion path too short", ErrProofInvalid)
	}
	if r != root {
		return fmt.Errorf("%w: inclusion path leads to another root", ErrProofInvalid)
	}
	return nil
}

// VerifyConsistency checks that path proves the tree of size2 with root2
// extends the tree of size1 with root1, with the algorithm of RFC 9162
// §2.1.4.2 step by step for 0 < size1 < size2. Equal sizes need an empty
// path and equal roots; size1 = 0 needs an empty path and the empty root.
// It returns nil if the proof holds, and otherwise an error wrapping
// ErrProofInvalid.
func VerifyConsistency(size1, size2 uint64, path [][HashSize]byte, root1, root2 [HashSize]byte) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: size1 %d above size2 %d", ErrProofInvalid, size1, size2)
	case size1 == size2 || size1 == 0:
		if len(path) != 0 || (size1 == 0 && root1 != EmptyRoot()) || (size1 == size2 && root1 != root2) {
			return fmt.Errorf("%w: trivial consistency from %d to %d", ErrProofInvalid, size1, size2)
		}
		return nil
	case len(path) == 0 || len(path) > ProofHashesMax:
		return fmt.Errorf("%w: %d hashes in path", ErrProofInvalid, len(path))
	}
	if size1&(size1-1) == 0 { // size1 is a power of 2: its root is the seed.
		path = append([][HashSize]byte{root1}, path...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: consistency path too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = HashChildren(c, fr), HashChildren(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = HashChildren(sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 || fr != root1 || sr != root2 {
		return fmt.Errorf("%w: consistency path does not join the two roots", ErrProofInvalid)
	}
	return nil
}
