package anchor_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
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
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 5, Confirmations: 2}})

	// 1.
	ids := e.AppendEvents(t, 10)
	first := e.WaitAnchored(t, 10)
	if first != 10 {
		t.Fatalf("first anchored size = %d, want 10", first)
	}
	if err := e.Log.Wait(ctx, 11); err != nil {
		t.Fatal(err)
	}
	recs, err := e.Store.ReadStream(ctx, "anchors", 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Position != 11 || recs[0].Type != "anchor.recorded" {
		t.Fatalf("anchors stream = %+v, %v; want one anchor.recorded at position 11", recs, err)
	}

	// 2.
	p, err := e.Service.Proof(ctx, ids[3])
	if err != nil {
		t.Fatalf("Proof: %v", err)
	}
	checkProofJSON(t, p)
	if p.Position != 4 || p.LeafIndex != 3 || p.TreeSize != 10 {
		t.Errorf("proof position %d, leaf index %d, tree size %d; want 4, 3, 10", p.Position, p.LeafIndex, p.TreeSize)
	}
	ethchaintest.MustVerified(t, "offline verify", func() (*proof.Result, error) { return proof.VerifyInclusion(ctx, c.Client, c.Trust(), p) })
	ethchaintest.MustVerified(t, "Service.Verify", func() (*proof.Result, error) { return e.Service.Verify(ctx, ids[3]) })

	// 3.
	time.Sleep(20 * ethchaintest.Poll)
	if got := e.Worker.Stats().Anchors; got != 1 {
		t.Errorf("anchors after an idle spell = %d, want 1", got)
	}

	// 4.
	more := e.AppendEvents(t, 1)
	if err := e.Log.Wait(ctx, 12); err != nil {
		t.Fatal(err)
	}
	_, err = e.Service.Proof(ctx, more[0])
	var na *anchor.NotAnchoredError
	if !errors.As(err, &na) || !errors.Is(err, anchor.ErrNotAnchored) || na.Position != 12 || na.AnchoredSize != 10 || na.ExpectedWait <= 0 {
		t.Fatalf("Proof of an unanchored entry: %v; want NotAnchoredError at 12, anchored 10, with a wait", err)
	}

	// 5.
	for range 4 {
		more = append(more, e.AppendEvents(t, 1)...)
	}
	second := e.WaitAnchored(t, 16)
	if second != 16 {
		t.Fatalf("second anchored size = %d, want 16", second)
	}
	ethchaintest.MustVerified(t, "Service.Verify of a newer entry", func() (*proof.Result, error) { return e.Service.Verify(ctx, more[4]) })
	ethchaintest.MustVerified(t, "VerifyConsistency(10, 16)", func() (*proof.Result, error) { return e.Service.VerifyConsistency(ctx, 10, 16) })
	cp, err := e.Service.Consistency(ctx, 10, 16)
	if err != nil || cp.TreeSize1 != 10 || cp.TreeSize2 != 16 || len(cp.ConsistencyPath) == 0 {
		t.Fatalf("Consistency(10, 16) = %+v, %v", cp, err)
	}
	if _, err := e.Service.Consistency(ctx, 10, 15); !errors.Is(err, anchor.ErrSizeNotAnchored) {
		t.Errorf("Consistency(10, 15) error = %v, want ErrSizeNotAnchored", err)
	}
	if _, err := e.Service.Proof(ctx, "no-such-entry"); !errors.Is(err, anchor.ErrEntryNotFound) {
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

// TestServiceAnswers checks the Service's answers for the HTTP layer: the
// stream of an entry, the cached anchored size, and the not-anchored error
// as an application error with a retry time.
func TestServiceAnswers(t *testing.T) {
	ctx := t.Context()
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{NoWorker: true})
	ids := e.AppendEvents(t, 2)
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	if stream, err := e.Service.EntryStream(ctx, ids[1]); err != nil || stream != ethchaintest.Stream {
		t.Errorf("EntryStream = %q, %v; want %q", stream, err, ethchaintest.Stream)
	}
	if _, err := e.Service.EntryStream(ctx, "nope"); !errors.Is(err, anchor.ErrEntryNotFound) || domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("EntryStream(unknown) = %v, want ErrEntryNotFound (not_found)", err)
	}
	if got := e.Service.AnchoredSize(); got != 0 {
		t.Errorf("AnchoredSize() = %d, want 0", got)
	}
	_, err := e.Service.Proof(ctx, ids[0])
	var ra interface{ RetryAfterSeconds() int }
	if domain.ErrorCode(err) != domain.CodeNotAnchored || !errors.As(err, &ra) || ra.RetryAfterSeconds() < 1 {
		t.Errorf("Proof before any anchor: %v (code %q); want not_anchored with a retry time", err, domain.ErrorCode(err))
	}
	if _, err := e.Service.Verify(ctx, ids[0]); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Verify without a chain: %v, want code unavailable", err)
	}
}
