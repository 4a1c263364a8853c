package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/audittest"
	"github.com/rendertrust/rendertrust/audit/bundle"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

var ctx = context.Background()

// fixture is an anchored installation and a job with a charge and a refund.
type fixture struct {
	in  *audittest.Installation
	sim *projectiontest.Sim
	job domain.JobID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	in := audittest.New(t, audittest.Options{})
	sim := projectiontest.NewSim(projectiontest.Config{Users: 4, Nodes: 2, Seed: 3})
	in.Load(t, sim, 400)
	in.Settle(t)
	var job string
	err := in.DB.QueryRow(ctx, `SELECT job_id FROM rm_jobs WHERE refunded > 0 ORDER BY job_id LIMIT 1`).Scan(&job)
	if err != nil {
		t.Fatalf("no refunded job in the history: %v", err)
	}
	t.Logf("job %s", job)
	return &fixture{in: in, sim: sim, job: domain.JobID(job)}
}

func (f *fixture) export(t *testing.T, sel bundle.Selection) []byte {
	t.Helper()
	body, err := bundle.Export(ctx, f.in.Store, f.in.Proofs, sel, time.Now())
	if err != nil {
		t.Fatalf("export %+v: %v", sel, err)
	}
	file, err := bundle.Encode(body)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// verify verifies file against f's chain.
func verify(t *testing.T, file []byte, f *fixture) *bundle.Report {
	t.Helper()
	r, err := bundle.Verify(ctx, file, f.in.Chain.Client(), f.in.Chain.Trust())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return r
}

func verifyOffline(t *testing.T, file []byte) *bundle.Report {
	t.Helper()
	r, err := bundle.Verify(ctx, file, nil, proof.Trust{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return r
}

func text(r *bundle.Report) string {
	var b bytes.Buffer
	r.Write(&b)
	return b.String()
}

// TestBundle: 1. a job's bundle holds its whole lifecycle and its money —
// hold, charge and refund — and verifies offline and against the chain;
// 2. a user's bundle within a window holds exactly the account's entries
// in it; 3. after any single byte of the file changes, verification fails
// with a message that names what broke; 4. entries not anchored yet fail
// the export, or are left out on request.
func TestBundle(t *testing.T) {
	f := newFixture(t)

	// 1.
	file := f.export(t, bundle.Selection{Job: f.job})
	r := verify(t, file, f)
	if !r.Verified || !r.ChainChecked {
		t.Fatalf("the job's bundle does not verify:\n%s", text(r))
	}
	t.Logf("job bundle, %d bytes:\n%s", len(file), text(r))
	var doc struct {
		Body bundle.Body `json:"body"`
	}
	if err := json.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, p := range doc.Body.Entries {
		types[entryType(t, p.Entry)] = true
	}
	for _, want := range []string{domain.EventJobSubmitted, domain.EventJobCompleted, domain.EventCreditsHeld, domain.EventCreditsDeducted, domain.EventCreditsRefunded} {
		if !types[want] {
			t.Errorf("the job's bundle has no %s entry (has %v)", want, types)
		}
	}
	if off := verifyOffline(t, file); !off.Verified || off.ChainChecked || !strings.Contains(text(off), "NOT checked on a chain") {
		t.Errorf("offline verification:\n%s", text(off))
	}

	// 2.
	from, to := doc.Body.Entries[0].Position, doc.Body.Entries[len(doc.Body.Entries)-1].Position
	owner := domain.UserID(doc.Body.Subject.Owner)
	userFile := f.export(t, bundle.Selection{User: owner, From: replay.Until{Position: from}, To: replay.Until{Position: to}})
	if r := verify(t, userFile, f); !r.Verified || r.Entries != accountEntries(t, f, owner, from, to) {
		t.Fatalf("the user's bundle, want the %d entries of account-%s at positions %d..%d:\n%s",
			accountEntries(t, f, owner, from, to), owner, from, to, text(r))
	}

	// 3.
	t.Run("EveryByteChanged", func(t *testing.T) { flipBytes(t, file) })
	t.Run("RandomBytesChangedOnChain", func(t *testing.T) { flipSample(t, f, file) })
	t.Run("Resealed", func(t *testing.T) { resealed(t, file) })

	// 4.
	t.Run("NotAnchored", func(t *testing.T) { notAnchored(t, f) })
}

// accountEntries counts the events of user's account at positions
// from..to.
func accountEntries(t *testing.T, f *fixture, user domain.UserID, from, to uint64) int {
	t.Helper()
	recs, err := f.in.Store.ReadStream(ctx, domain.AccountStream(user), 1, eventstore.ReadEventsMax)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Position >= from && r.Position <= to {
			n++
		}
	}
	return n
}

func entryType(t *testing.T, entry []byte) string {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(entry, &env); err != nil {
		t.Fatal(err)
	}
	return env.Type
}

// flipBytes changes each byte of the file in turn (under the race
// detector, which makes it ten times slower: every byte of the framing,
// the first entry and the seal, and a dense random sample of the rest) and
// verifies the result offline: each must fail with a message, and a change
// inside an entry must fail that entry's check.
func flipBytes(t *testing.T, file []byte) {
	t.Helper()
	entries := entryRanges(file)
	flipped := bytes.Clone(file)
	positions := flipPositions(file, entries)
	for _, i := range positions {
		flipped[i] ^= 0x01
		r := verifyOffline(t, flipped)
		flipped[i] = file[i]
		if r.Verified {
			t.Fatalf("byte %d (%q→%q) changed and the bundle still verifies", i, file[i], file[i]^1)
		}
		failed := failedChecks(r)
		if len(failed) == 0 || failed[0].Detail == "" {
			t.Fatalf("byte %d changed: no failed check says why:\n%s", i, text(r))
		}
		if k, ok := entries.at(i); ok && !failedNamed(failed, "entry "+strconv.Itoa(k+1)+"/") {
			t.Fatalf("byte %d of entry %d changed, and its check did not fail:\n%s", i, k+1, text(r))
		}
	}
	t.Logf("all %d single-byte changes (of %d bytes) fail verification", len(positions), len(file))
}

// raceSampleBytes is how many random positions flipBytes changes under
// the race detector, besides the framing and the first entry.
const raceSampleBytes = 1500

func flipPositions(file []byte, entries ranges) []int {
	if !raceEnabled {
		out := make([]int, len(file))
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for i := range 200 { // the framing and the seal
		out = append(out, i)
	}
	for i := entries[0][0]; i < entries[0][1]; i++ {
		out = append(out, i)
	}
	for i := len(file) - 8; i < len(file); i++ {
		out = append(out, i)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range raceSampleBytes {
		out = append(out, r.IntN(len(file)))
	}
	return out
}

// flipSample changes random bytes and verifies against the chain.
func flipSample(t *testing.T, f *fixture, file []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		i := r.IntN(len(file))
		flipped := bytes.Clone(file)
		flipped[i] ^= byte(1 + r.IntN(255))
		if res := verify(t, flipped, f); res.Verified {
			t.Fatalf("byte %d changed and the bundle verifies against the chain", i)
		}
	}
}

func failedChecks(r *bundle.Report) []bundle.Check {
	var out []bundle.Check
	for _, c := range r.Checks {
		if c.Status == bundle.StatusFailed {
			out = append(out, c)
		}
	}
	return out
}

func failedNamed(cs []bundle.Check, prefix string) bool {
	for _, c := range cs {
		if strings.HasPrefix(c.Name, prefix) {
			return true
		}
	}
	return false
}

// ranges are the byte ranges of each entry's base64 bytes in a file.
type ranges [][2]int

func entryRanges(file []byte) ranges {
	var out ranges
	key := []byte(`"entry": "`)
	for off := 0; ; {
		i := bytes.Index(file[off:], key)
		if i < 0 {
			return out
		}
		start := off + i + len(key)
		end := start + bytes.IndexByte(file[start:], '"')
		out = append(out, [2]int{start, end})
		off = end
	}
}

func (rs ranges) at(i int) (int, bool) {
	for k, r := range rs {
		if i >= r[0] && i < r[1] {
			return k, true
		}
	}
	return 0, false
}

// resealed: a forger who changes the content and recomputes the seal
// still fails: the entry's bytes no longer hash to its leaf, a changed path
// no longer folds into the root, a changed latest root is no longer
// consistent, and a dropped entry leaves a gap.
func resealed(t *testing.T, file []byte) {
	cases := []struct {
		name   string
		change func(b *bundle.Body)
		want   string // the check that must fail (its name's prefix)
	}{
		{"EntryBytes", func(b *bundle.Body) {
			e := b.Entries[len(b.Entries)-1]
			e.Entry = bytes.Replace(e.Entry, []byte(`"amount":`), []byte(`"amount":9`), 1)
		}, ""},
		{"AuditPath", func(b *bundle.Body) { b.Entries[0].AuditPath[0][0] ^= 1 }, "entry 1/"},
		// The entries' roots are joined to the latest by a consistency
		// proof, or are the latest root (when an anchor covers them all).
		{"LatestRoot", func(b *bundle.Body) { b.Latest.Root[0] ^= 1 }, "consistency|anchor "},
		{"DroppedEntry", func(b *bundle.Body) { b.Entries = append(b.Entries[:1], b.Entries[2:]...) }, "completeness"},
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
			r := verifyOffline(t, forged)
			if r.Verified {
				t.Fatalf("a resealed forgery verifies:\n%s", text(r))
			}
			for _, ch := range failedChecks(r) {
				if ch.Name == "seal" || ch.Name == "format" {
					t.Errorf("the forgery is resealed, yet %s failed", ch.Name)
				}
			}
			want := c.want
			if want == "" { // the last entry
				want = "entry " + strconv.Itoa(len(doc.Body.Entries)) + "/"
			}
			if !slices.ContainsFunc(strings.Split(want, "|"), func(w string) bool { return failedNamed(failedChecks(r), w) }) {
				t.Errorf("check %q did not fail:\n%s", want, text(r))
			}
		})
	}
}

// notAnchored: entries past the latest anchor fail the export, or are
// left out and counted with AnchoredOnly. It stops f's workers.
func notAnchored(t *testing.T, f *fixture) {
	f.in.Stop()
	user := projectiontest.UserID(0)
	acc := f.sim.Accounts[0]
	ev, err := acc.Grant("late-grant", 5, "goodwill", f.sim.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := acc.Version()
	acc.Apply(ev[0])
	if _, err := f.in.Store.Append(ctx, domain.AccountStream(user), eventstore.Exact(before), projectiontest.EventData(ev[0])); err != nil {
		t.Fatal(err)
	}
	_, err = bundle.Export(ctx, f.in.Store, f.in.Proofs, bundle.Selection{User: user}, time.Now())
	if !errors.Is(err, bundle.ErrNotAnchored) || !strings.Contains(err.Error(), "--anchored-only") {
		t.Fatalf("export with an unanchored entry: %v, want ErrNotAnchored", err)
	}
	body, err := bundle.Export(ctx, f.in.Store, f.in.Proofs, bundle.Selection{User: user, AnchoredOnly: true}, time.Now())
	if err != nil || body.Unanchored != 1 {
		t.Fatalf("export --anchored-only: %v, %d left out; want 1", err, body.Unanchored)
	}
	file, _ := bundle.Encode(body)
	if r := verify(t, file, f); !r.Verified {
		t.Fatalf("the anchored part does not verify:\n%s", text(r))
	}
	if _, err := bundle.Export(ctx, f.in.Store, f.in.Proofs, bundle.Selection{Job: "no-such-job"}, time.Now()); !errors.Is(err, domain.ErrJobNotFound) {
		t.Errorf("export of an unknown job: %v, want ErrJobNotFound", err)
	}
}
