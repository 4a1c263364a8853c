package bundle_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/bundle"
	"github.com/rendertrust/rendertrust/domain"
)

// TestBundleResealedHeader: a forger who changes the header of a bundle —
// the anchor's root, tree size, chain id, contract, transaction or block,
// the subject's window (positions or times) — even consistently in every
// place it appears, and recomputes the seal, is refused against the chain.
// The strongest forgery changes an entry and recomputes its leaf and the
// root along its path: every offline check passes, and only the chain,
// which holds the true root, refuses it.
func TestBundleResealedHeader(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		Body bundle.Body `json:"body"`
	}
	if err := json.Unmarshal(f.export(t, bundle.Selection{Job: f.job}), &doc); err != nil {
		t.Fatal(err)
	}
	first := doc.Body.Entries[0]
	owner := domain.UserID(doc.Body.Subject.Owner)
	file := f.export(t, oneEntry(t, f, owner, first.Position))
	at := recordedAt(t, first.Entry)

	cases := []struct {
		name    string
		change  func(b *bundle.Body)
		offline bool   // the forgery passes every offline check
		want    string // a check that must fail against the chain (its name's prefix, | between choices)
	}{
		{"LatestRoot", func(b *bundle.Body) { b.Latest.Root[0] ^= 1 }, false, "anchor |latest anchor"},
		{"RootEverywhere", forgeEntry, true, "entry 1/|latest anchor"},
		{"TreeSize", func(b *bundle.Body) { b.Latest.TreeSize++ }, false, "anchor |consistency|latest anchor"},
		{"ChainID", everyAnchor(func(a *proof.Anchor) { a.ChainID++ }), true, "entry 1/|latest anchor"},
		{"Contract", everyAnchor(func(a *proof.Anchor) { a.Contract = "0x" + strings.Repeat("ab", 20) }), true, "entry 1/|latest anchor"},
		{"TxHash", everyAnchor(func(a *proof.Anchor) { a.TxHash = "0x" + strings.Repeat("cd", 32) }), true, "entry 1/|latest anchor"},
		{"BlockNumber", everyAnchor(func(a *proof.Anchor) { a.BlockNumber++ }), true, "entry 1/|latest anchor"},
		{"BlockHash", everyAnchor(func(a *proof.Anchor) { a.BlockHash = "0x" + strings.Repeat("ef", 32) }), true, "entry 1/|latest anchor"},
		{"WindowPositions", func(b *bundle.Body) { b.Subject.Window.FromPosition = first.Position + 1 }, false, "subject"},
		{"WindowTimes", func(b *bundle.Body) { b.Subject.Window = &bundle.Window{ToTime: at.Add(-time.Second)} }, false, "subject"},
		{"WindowDropped", func(b *bundle.Body) { b.Subject.Window = nil }, false, "completeness"}, // credits are bought before they are held: the entry is not the account's first,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc struct {
				Body bundle.Body `json:"body"`
			}
			if err := json.Unmarshal(file, &doc); err != nil {
				t.Fatal(err)
			}
			c.change(&doc.Body)
			forged, err := bundle.Encode(&doc.Body)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(forged, file) {
				t.Fatal("the change changed nothing")
			}
			if off := verifyOffline(t, forged); off.Verified != c.offline {
				t.Fatalf("offline, the forgery verifies %v, want %v:\n%s", off.Verified, c.offline, text(off))
			}
			r := verify(t, forged, f)
			if r.Verified {
				t.Fatalf("a resealed bundle with a changed header verifies against the chain:\n%s", text(r))
			}
			for _, ch := range failedChecks(r) {
				if ch.Name == "seal" || ch.Name == "format" || ch.Name == "body" {
					t.Errorf("the forgery is resealed, yet %s failed", ch.Name)
				}
			}
			if !slices.ContainsFunc(strings.Split(c.want, "|"), func(w string) bool { return failedNamed(failedChecks(r), w) }) {
				t.Errorf("none of the checks %q failed:\n%s", c.want, text(r))
			}
		})
	}
}

// everyAnchor changes every anchor a bundle names, the latest, each
// entry's and each consistency proof's, so they still agree offline.
func everyAnchor(change func(*proof.Anchor)) func(*bundle.Body) {
	return func(b *bundle.Body) {
		change(&b.Latest.Anchor)
		for _, e := range b.Entries {
			change(&e.Anchor)
		}
		for _, c := range b.Consistency {
			change(&c.Anchor1)
			change(&c.Anchor2)
		}
	}
}

// forgeEntry changes the one entry's bytes and recomputes its leaf hash and
// the root along its audit path, then names that root everywhere: a tree
// consistent in itself whose root the chain never saw.
func forgeEntry(b *bundle.Body) {
	if len(b.Entries) != 1 || len(b.Consistency) != 0 || b.Entries[0].TreeSize != b.Latest.TreeSize {
		panic("forgeEntry wants a one-entry bundle proven at the latest anchor")
	}
	e := b.Entries[0]
	e.Entry = bytes.Replace(e.Entry, []byte(`"amount":`), []byte(`"amount":9`), 1)
	leaf := merkle.HashLeaf(e.Entry)
	e.LeafHash = leaf
	e.Root = rootFromPath(leaf, e.LeafIndex, e.TreeSize, e.AuditPath)
	b.Latest.Root = e.Root
}

// rootFromPath folds an inclusion path into its root (RFC 9162 §2.1.3.2),
// as merkle.VerifyInclusion does before comparing.
func rootFromPath(leaf [merkle.HashSize]byte, index, size uint64, path []proof.Hash) proof.Hash {
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if fn&1 == 1 || fn == sn {
			r = merkle.HashChildren(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = merkle.HashChildren(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	return r
}

// recordedAt is an entry's recorded time.
func recordedAt(t *testing.T, entry []byte) time.Time {
	t.Helper()
	var env struct {
		RecordedAt time.Time `json:"recorded_at"`
	}
	if err := json.Unmarshal(entry, &env); err != nil {
		t.Fatal(err)
	}
	return env.RecordedAt
}
