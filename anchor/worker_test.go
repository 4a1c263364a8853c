package anchor_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/domain"
)

// TestAnchorScenario walks the audit log through its life on a simulated
// chain:
//
//  1. ten entries arrive; with EveryEvents 5 the worker anchors them and
//     records the anchor as an event of the "anchors" stream (position 11);
//  2. an entry's proof has exactly the public JSON fields, verifies offline
//     against the chain, and Service.Verify passes every check;
//  3. while nothing but the anchor record arrived, nothing is anchored;
//  4. one more entry is not anchored yet: Proof says so, with a wait;
//  5. four more reach EveryEvents; the new anchor covers everything so
//     far, and a consistency proof between the two anchors verifies.
func TestAnchorScenario(t *testing.T) {
	ctx := t.Context()
	c := mustSimChain(t)
	c.mine(t, 5*time.Millisecond)
	e := newEnv(t, envConfig{chain: c.writer, client: c.client,
		worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 5, Confirmations: 2}})

	// 1.
	ids := e.appendEvents(t, 10)
	first := e.waitAnchored(t, 10)
	if first != 10 {
		t.Fatalf("first anchored size = %d, want 10", first)
	}
	if err := e.log.Wait(ctx, 11); err != nil {
		t.Fatal(err)
	}
	recs, err := e.store.ReadStream(ctx, "anchors", 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Position != 11 || recs[0].Type != "anchor.recorded" {
		t.Fatalf("anchors stream = %+v, %v; want one anchor.recorded at position 11", recs, err)
	}

	// 2.
	p, err := e.service.Proof(ctx, ids[3])
	if err != nil {
		t.Fatalf("Proof: %v", err)
	}
	checkProofJSON(t, p)
	if p.Position != 4 || p.LeafIndex != 3 || p.TreeSize != 10 {
		t.Errorf("proof position %d, leaf index %d, tree size %d; want 4, 3, 10", p.Position, p.LeafIndex, p.TreeSize)
	}
	mustVerified(t, "offline verify", func() (*proof.Result, error) { return proof.VerifyInclusion(ctx, c.client, c.trust(), p) })
	mustVerified(t, "Service.Verify", func() (*proof.Result, error) { return e.service.Verify(ctx, ids[3]) })

	// 3.
	time.Sleep(20 * testPoll)
	if got := e.worker.Stats().Anchors; got != 1 {
		t.Errorf("anchors after an idle spell = %d, want 1", got)
	}

	// 4.
	more := e.appendEvents(t, 1)
	if err := e.log.Wait(ctx, 12); err != nil {
		t.Fatal(err)
	}
	_, err = e.service.Proof(ctx, more[0])
	var na *anchor.NotAnchoredError
	if !errors.As(err, &na) || !errors.Is(err, anchor.ErrNotAnchored) || na.Position != 12 || na.AnchoredSize != 10 || na.ExpectedWait <= 0 {
		t.Fatalf("Proof of an unanchored entry: %v; want NotAnchoredError at 12, anchored 10, with a wait", err)
	}

	// 5.
	for range 4 {
		more = append(more, e.appendEvents(t, 1)...)
	}
	second := e.waitAnchored(t, 16)
	if second != 16 {
		t.Fatalf("second anchored size = %d, want 16", second)
	}
	mustVerified(t, "Service.Verify of a newer entry", func() (*proof.Result, error) { return e.service.Verify(ctx, more[4]) })
	mustVerified(t, "VerifyConsistency(10, 16)", func() (*proof.Result, error) { return e.service.VerifyConsistency(ctx, 10, 16) })
	cp, err := e.service.Consistency(ctx, 10, 16)
	if err != nil || cp.TreeSize1 != 10 || cp.TreeSize2 != 16 || len(cp.ConsistencyPath) == 0 {
		t.Fatalf("Consistency(10, 16) = %+v, %v", cp, err)
	}
	if _, err := e.service.Consistency(ctx, 10, 15); !errors.Is(err, anchor.ErrSizeNotAnchored) {
		t.Errorf("Consistency(10, 15) error = %v, want ErrSizeNotAnchored", err)
	}
	if _, err := e.service.Proof(ctx, "no-such-entry"); !errors.Is(err, anchor.ErrEntryNotFound) {
		t.Errorf("Proof(unknown) error = %v, want ErrEntryNotFound", err)
	}
}

// checkProofJSON checks the proof's JSON has exactly the public fields.
func checkProofJSON(t *testing.T, p *proof.Inclusion) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"alg", "anchor", "audit_path", "entry", "entry_id", "leaf_hash", "leaf_index", "position", "root", "tree_size"}
	if got := slices.Sorted(mapsKeys(m)); !reflect.DeepEqual(got, want) {
		t.Errorf("proof JSON fields = %v, want %v", got, want)
	}
	var a map[string]json.RawMessage
	if err := json.Unmarshal(m["anchor"], &a); err != nil {
		t.Fatal(err)
	}
	wantAnchor := []string{"block_hash", "block_number", "chain_id", "contract", "tx_hash"}
	if got := slices.Sorted(mapsKeys(a)); !reflect.DeepEqual(got, wantAnchor) {
		t.Errorf("proof anchor fields = %v, want %v", got, wantAnchor)
	}
	var back proof.Inclusion
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, p) {
		t.Errorf("proof does not round-trip through JSON: %v\n%s", err, b)
	}
}

func mapsKeys(m map[string]json.RawMessage) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// mustVerified runs a verification and fails unless every check passed.
func mustVerified(t *testing.T, what string, verify func() (*proof.Result, error)) *proof.Result {
	t.Helper()
	res, err := verify()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !res.Verified || len(res.Checks) == 0 {
		t.Fatalf("%s: not verified: failed %v, details %v", what, res.Failed(), res.Details)
	}
	return res
}

// waitCtx returns a context that ends after waitTimeout.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestServiceAnswers checks the Service's answers for the HTTP layer: the
// stream of an entry, the cached anchored size, and the not-anchored error
// as an application error with a retry time.
func TestServiceAnswers(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, envConfig{noWorker: true})
	ids := e.appendEvents(t, 2)
	if err := e.log.Wait(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	if stream, err := e.service.EntryStream(ctx, ids[1]); err != nil || stream != testStream {
		t.Errorf("EntryStream = %q, %v; want %q", stream, err, testStream)
	}
	if _, err := e.service.EntryStream(ctx, "nope"); !errors.Is(err, anchor.ErrEntryNotFound) || domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("EntryStream(unknown) = %v, want ErrEntryNotFound (not_found)", err)
	}
	if got := e.service.AnchoredSize(); got != 0 {
		t.Errorf("AnchoredSize() = %d, want 0", got)
	}
	_, err := e.service.Proof(ctx, ids[0])
	var ra interface{ RetryAfterSeconds() int }
	if domain.ErrorCode(err) != domain.CodeNotAnchored || !errors.As(err, &ra) || ra.RetryAfterSeconds() < 1 {
		t.Errorf("Proof before any anchor: %v (code %q); want not_anchored with a retry time", err, domain.ErrorCode(err))
	}
	if _, err := e.service.Verify(ctx, ids[0]); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Verify without a chain: %v, want code unavailable", err)
	}
}
