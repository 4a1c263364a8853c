package proof_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/rendertrust/rendertrust/anchor/proof"
)

// FuzzVerifyInclusion decodes arbitrary proof documents and verifies them
// against a chain anchoring a six-entry log at sizes 5 and 6. It must never
// panic, and it is sound: a proof that verifies is one of the true entries
// at its true index under an anchored root.
func FuzzVerifyInclusion(f *testing.F) {
	chain, prove := mustProofs(f, 6, 5, 6)
	for _, c := range [][2]uint64{{3, 5}, {0, 6}, {5, 6}, {4, 5}} {
		b, err := json.Marshal(prove(c[0], c[1]))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"alg":"rfc9162-sha256","tree_size":0,"leaf_index":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p proof.Inclusion
		if json.Unmarshal(doc, &p) != nil {
			return
		}
		res, err := proof.VerifyInclusion(context.Background(), chain, trust, &p)
		if err != nil {
			t.Fatalf("the fake chain cannot fail, yet: %v", err)
		}
		if !res.Verified {
			return
		}
		if p.TreeSize != 5 && p.TreeSize != 6 || p.LeafIndex >= p.TreeSize || p.Root != chain.roots[p.TreeSize] ||
			!bytes.Equal(p.Entry, fmt.Appendf(nil, `{"id":"e%d"}`, p.LeafIndex)) {
			t.Fatalf("a forged proof verified: %s", doc)
		}
	})
}
