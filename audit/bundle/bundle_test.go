package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// in it; 3. after any single byte of the file changes (to each of four
// values), verification fails with a message that names what broke, the
// seal's exactly; 4. entries not anchored yet fail
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
	t.Run("EveryByteChanged", func(t *testing.T) { flipBytes(t, file, flipPositions(file)) })
	t.Run("EveryByteOfOneEntryChanged", func(t *testing.T) {
		one := f.export(t, oneEntry(t, f, owner, from))
		flipBytes(t, one, allPositions(one))
	})
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

// tamperMasks are the changes made to each byte: XORed with each, so every
// bit of it changes in one of them, and a byte may become a space, a
// control character or a byte that is not ASCII.
var tamperMasks = []byte{0x01, 0x20, 0x80, 0xff}

// flipBytes changes each byte of positions (all of file's, or a sample
// under the race detector: see flipPositions) with every tamperMasks value
// and verifies the result offline: each must fail; when the file is still
// framed as a bundle the seal check must fail naming exactly the seal the
// file says and the SHA-256 of its body, and otherwise the format check
// must fail; a change inside an entry of a still framed file must fail that
// entry's check.
func flipBytes(t *testing.T, file []byte, positions []int) {
	t.Helper()
	entries := entryRanges(file)
	flipped := bytes.Clone(file)
	for _, i := range positions {
		for _, mask := range tamperMasks {
			flipped[i] ^= mask
			r := verifyOffline(t, flipped)
			if why := tamperMissed(flipped, r, entries, i); why != "" {
				t.Fatalf("byte %d (%q→%q) changed: %s\n%s", i, file[i], flipped[i], why, text(r))
			}
			flipped[i] = file[i]
		}
	}
	t.Logf("all %d changes of %d bytes (of %d; each XOR %x) fail verification, the seal's compared exactly", len(positions)*len(tamperMasks), len(positions), len(file), tamperMasks)
}

// tamperMissed says what r, the report of the changed file, misses ("" if
// nothing): the file's byte i changed; entries are the original's ranges.
func tamperMissed(file []byte, r *bundle.Report, entries ranges, i int) string {
	if r.Verified {
		return "the bundle still verifies"
	}
	failed := failedChecks(r)
	if len(failed) == 0 || failed[0].Detail == "" {
		return "no failed check says why"
	}
	sealCheck, hasSeal := checkNamed(r, "seal")
	named, body, framed := framing(file)
	if !framed {
		if format, _ := checkNamed(r, "format"); format.Status != bundle.StatusFailed || hasSeal {
			return "the framing is broken, yet the format check did not fail alone"
		}
		return ""
	}
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("the body hashes to %s, the bundle says %s: the file was changed after export", hex.EncodeToString(sum[:]), named)
	if !hasSeal || sealCheck.Status != bundle.StatusFailed || sealCheck.Detail != want {
		return fmt.Sprintf("the seal check is %+v, want FAILED with %q", sealCheck, want)
	}
	if k, ok := entries.at(i); ok && !failedNamed(failed, "entry "+strconv.Itoa(k+1)+"/") {
		return fmt.Sprintf("the change is in entry %d and its check did not fail", k+1)
	}
	return ""
}

// framing splits file as the format lays it out, byte for byte:
// {"sha256":"<seal>","body":<body>} and a newline, with the seal 64
// printable characters and the whole valid JSON. framed is false when the
// file is not laid out so, when verification must fail its format check.
func framing(file []byte) (seal string, body []byte, framed bool) {
	const head, mid, tail = `{"sha256":"`, `","body":`, "}\n"
	const sealLen = 64
	if len(file) < len(head)+sealLen+len(mid)+len(tail) || !bytes.HasPrefix(file, []byte(head)) ||
		!bytes.Equal(file[len(head)+sealLen:len(head)+sealLen+len(mid)], []byte(mid)) || !bytes.HasSuffix(file, []byte(tail)) || !json.Valid(file) {
		return "", nil, false
	}
	seal = string(file[len(head) : len(head)+sealLen])
	for _, c := range []byte(seal) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", nil, false
		}
	}
	return seal, file[len(head)+sealLen+len(mid) : len(file)-len(tail)], true
}

func checkNamed(r *bundle.Report, name string) (bundle.Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return bundle.Check{}, false
}

// raceSampleBytes is how many random positions of a large bundle
// flipPositions changes under the race detector (which makes verification
// ten times slower), besides its framing and seal.
const raceSampleBytes = 100

// flipPositions returns every position of file, or under the race detector
// those of the framing and the seal and a random sample of the rest; the
// small bundle's test changes all of its bytes even then.
func flipPositions(file []byte) []int {
	if !raceEnabled {
		return allPositions(file)
	}
	var out []int
	for i := range 100 { // the framing and the seal
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

// oneEntry selects the single entry of user's account at position.
func oneEntry(t *testing.T, f *fixture, user domain.UserID, position uint64) bundle.Selection {
	t.Helper()
	if accountEntries(t, f, user, position, position) != 1 {
		t.Fatalf("no entry of account-%s at position %d", user, position)
	}
	return bundle.Selection{User: user, From: replay.Until{Position: position}, To: replay.Until{Position: position}}
}

func allPositions(file []byte) []int {
	out := make([]int, len(file))
	for i := range out {
		out[i] = i
	}
	return out
}
