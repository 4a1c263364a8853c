package anchor_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// tampered is a log anchored twice and then altered behind the stores'
// backs, reopened for checking.
type tampered struct {
	ids     []string // test entries; ids[i] is at position i+1 for i < 8, i+2 after
	chain   *ethchaintest.SimChain
	dir     string
	service *anchor.Service
}

// The anchored log every tamper case starts from: entries 1-8, the record
// of the anchor at size 8 at position 9, entries 10-17, the record of the
// anchor at size 17 at position 18.
const (
	firstAnchor  = 8
	secondAnchor = 17
)

// position returns the log position of test entry i.
func position(i int) uint64 {
	if i < firstAnchor {
		return uint64(i + 1)
	}
	return uint64(i + 2)
}

// mustAnchoredLog builds the log above, stops the Log and Worker, applies
// tamper to the event store file, and reopens the stores for a Service.
func mustAnchoredLog(t *testing.T, tamper func(t *testing.T, events *sqldb.DB)) *tampered {
	t.Helper()
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Chain: c.Writer, Client: c.Client,
		Worker: anchor.WorkerConfig{Interval: time.Hour, EveryEvents: firstAnchor}})
	ids := e.AppendEvents(t, firstAnchor)
	e.WaitAnchored(t, firstAnchor)
	ids = append(ids, e.AppendEvents(t, secondAnchor-firstAnchor-1)...)
	e.WaitAnchored(t, secondAnchor)
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), secondAnchor+1); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	events, err := sqldb.OpenSQLite(filepath.Join(e.Dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, events)
	events.Close()

	tp := &tampered{ids: ids, chain: c, dir: e.Dir}
	tp.service = mustService(t, e.Dir, "anchor.db", c)
	return tp
}

// mustService opens the event store and the audit log database dbFile in
// dir and returns a Service on them that verifies against c.
func mustService(t *testing.T, dir, dbFile string, c *ethchaintest.SimChain) *anchor.Service {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db, err := sqldb.OpenSQLite(filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return anchor.NewService(db, store, anchor.ServiceConfig{Chain: c.Client, Trust: c.Trust()})
}

// mustExec runs statements on the event store file in one transaction.
func mustExec(t *testing.T, db *sqldb.DB, stmts ...string) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(context.Background(), s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// rewrite replaces the bytes of the event at position with edit's result,
// and, if rehash, its stored leaf hash too, so that the event store itself
// sees nothing wrong.
func rewrite(t *testing.T, db *sqldb.DB, position uint64, rehash bool, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	var b []byte
	if err := db.QueryRow(ctx, `SELECT bytes FROM events WHERE position = ?`, position).Scan(&b); err != nil {
		t.Fatalf("tamper: read %d: %v", position, err)
	}
	b = edit(b)
	q, args := `UPDATE events SET bytes = ? WHERE position = ?`, []any{b, position}
	if rehash {
		h := merkle.HashLeaf(b)
		q, args = `UPDATE events SET bytes = ?, leaf_hash = ? WHERE position = ?`, []any{b, h[:], position}
	}
	if _, err := db.Exec(ctx, q, args...); err != nil {
		t.Fatalf("tamper: write %d: %v", position, err)
	}
}

// flipByte changes one byte inside the entry's data (a digit of "n").
func flipByte(b []byte) []byte {
	i := bytes.Index(b, []byte(`"n":`)) + len(`"n":`)
	b = slices.Clone(b)
	b[i] = '9' - (b[i] - '0')
	return b
}

// mustUnverified verifies entry i and checks that it fails with (at least)
// the checks want.
func (tp *tampered) mustUnverified(t *testing.T, i int, want ...string) {
	t.Helper()
	res, err := tp.service.Verify(context.Background(), tp.ids[i])
	if err != nil {
		t.Fatalf("Verify(entry at %d): %v", position(i), err)
	}
	if res.Verified {
		t.Fatalf("Verify(entry at %d) passed after tampering", position(i))
	}
	for _, check := range want {
		if res.Checks[check] {
			t.Errorf("Verify(entry at %d): check %s passed, want it failed (failed: %v)", position(i), check, res.Failed())
		}
		if res.Details[check] == "" {
			t.Errorf("Verify(entry at %d): failed check %s says nothing about what broke", position(i), check)
		}
	}
	t.Logf("Verify(entry at %d): failed %v; %s", position(i), res.Failed(), res.Details[res.Failed()[0]])
}

// mustVerifiedEntry checks that entry i still verifies.
func (tp *tampered) mustVerifiedEntry(t *testing.T, i int) {
	t.Helper()
	ethchaintest.MustVerified(t, "Verify of an untouched entry", func() (*proof.Result, error) {
		return tp.service.Verify(context.Background(), tp.ids[i])
	})
}

// mustAuditFinds runs Audit and checks that it reports a problem of each
// check at each position or tree size in want ("leaf_index@5",
// "anchor_root#17").
func (tp *tampered) mustAuditFinds(t *testing.T, want ...string) {
	t.Helper()
	report, err := tp.service.Audit(context.Background())
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if report.Verified {
		t.Fatal("Audit passed after tampering")
	}
	var got []string
	for _, p := range report.Problems {
		switch {
		case p.Position != 0:
			got = append(got, p.Check+"@"+itoa(p.Position))
		default:
			got = append(got, p.Check+"#"+itoa(p.TreeSize))
		}
		if p.Detail == "" {
			t.Errorf("audit problem %+v has no detail", p)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Audit found %v, want %s among them", got, w)
		}
	}
	for _, p := range report.Problems {
		t.Logf("audit: %s at position %d / size %d: %s", p.Check, p.Position, p.TreeSize, p.Detail)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestTamperChangeOneByte: one byte of entry 5 changes, its stored hash
// updated to match so that the event store sees nothing. The entry no
// longer verifies (its bytes are not the logged leaf, nor in the anchored
// tree); an untouched entry still does; the audit names the entry and the
// two anchors the changed log no longer reproduces.
func TestTamperChangeOneByte(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) { rewrite(t, db, 5, true, flipByte) })
	tp.mustUnverified(t, 4, proof.CheckLeafHash, proof.CheckInclusion)
	tp.mustVerifiedEntry(t, 3)
	tp.mustVerifiedEntry(t, 12)
	tp.mustAuditFinds(t, anchor.AuditLeafIndex+"@5", anchor.AuditAnchorRoot+"#8", anchor.AuditAnchorRoot+"#17")
}

// TestTamperChangeOneByteOnly: the same change without updating the stored
// hash: the event store refuses the entry, and verification says so.
func TestTamperChangeOneByteOnly(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) { rewrite(t, db, 5, false, flipByte) })
	tp.mustUnverified(t, 4, anchor.CheckEntryStored, proof.CheckLeafHash, proof.CheckInclusion)
	tp.mustAuditFinds(t, anchor.AuditEntryStored+"@5", anchor.AuditAnchorRoot+"#8", anchor.AuditAnchorRoot+"#17")
}

// TestTamperDeleteEvent: entry 5 is deleted, leaving a gap.
func TestTamperDeleteEvent(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) {
		mustExec(t, db, `DELETE FROM events WHERE position = 5`)
	})
	tp.mustUnverified(t, 4, anchor.CheckEntryStored, proof.CheckLeafHash, proof.CheckEntryID, proof.CheckInclusion)
	tp.mustAuditFinds(t, anchor.AuditEntryStored+"@5", anchor.AuditAnchorRoot+"#8", anchor.AuditAnchorRoot+"#17")
}

// TestTamperDeleteEventAndRenumber: entry 5 is deleted and every later
// entry moved down one position to hide the gap.
func TestTamperDeleteEventAndRenumber(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) {
		mustExec(t, db,
			`DELETE FROM events WHERE position = 5`,
			`UPDATE events SET position = -position WHERE position > 5`,
			`UPDATE events SET position = -position - 1 WHERE position < 0`)
	})
	tp.mustUnverified(t, 4, anchor.CheckEntryStored, proof.CheckEntryID)
	tp.mustUnverified(t, 5, anchor.CheckEntryStored, proof.CheckEntryID)
	tp.mustVerifiedEntry(t, 3)
	tp.mustAuditFinds(t, anchor.AuditLeafIndex+"@5", anchor.AuditLeafIndex+"@6",
		anchor.AuditEntryStored+"@18", anchor.AuditAnchorRoot+"#8", anchor.AuditAnchorRoot+"#17")
}

// TestTamperReorderTwoEvents: the rows of entries 3 and 6 swap positions.
func TestTamperReorderTwoEvents(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) {
		mustExec(t, db,
			`UPDATE events SET position = -1 WHERE position = 3`,
			`UPDATE events SET position = 3 WHERE position = 6`,
			`UPDATE events SET position = 6 WHERE position = -1`)
	})
	tp.mustUnverified(t, 2, anchor.CheckEntryStored, proof.CheckEntryID, proof.CheckLeafHash, proof.CheckInclusion)
	tp.mustUnverified(t, 5, anchor.CheckEntryStored, proof.CheckEntryID, proof.CheckLeafHash, proof.CheckInclusion)
	tp.mustVerifiedEntry(t, 3)
	tp.mustAuditFinds(t, anchor.AuditLeafIndex+"@3", anchor.AuditLeafIndex+"@6",
		anchor.AuditAnchorRoot+"#8", anchor.AuditAnchorRoot+"#17")
}

// TestTamperReplaceSuffix: every entry after the first anchor's record
// (positions 10-17) is rewritten, stored hashes updated. Entries the first
// anchor covers still verify; the rewritten ones do not; the audit finds
// the second anchor unreproducible but the first intact; and a log rebuilt
// from the rewritten store, as a forger would rebuild it, fails
// consistency between the two anchors.
func TestTamperReplaceSuffix(t *testing.T) {
	tp := mustAnchoredLog(t, func(t *testing.T, db *sqldb.DB) {
		for pos := uint64(firstAnchor + 2); pos <= secondAnchor; pos++ {
			rewrite(t, db, pos, true, func(b []byte) []byte {
				return bytes.ReplaceAll(b, []byte("test event"), []byte("forged event"))
			})
		}
	})
	tp.mustVerifiedEntry(t, 0)
	tp.mustVerifiedEntry(t, firstAnchor-1)
	for i := firstAnchor; i < len(tp.ids); i++ {
		tp.mustUnverified(t, i, proof.CheckLeafHash, proof.CheckInclusion)
	}
	tp.mustAuditFinds(t, anchor.AuditLeafIndex+"@10", anchor.AuditLeafIndex+"@17", anchor.AuditAnchorRoot+"#17")

	// The forger's view: a fresh audit log over the rewritten store.
	rebuilt := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: tp.dir, NoWorker: true, DBFile: "rebuilt.DB"})
	if err := rebuilt.Log.Wait(ethchaintest.WaitCtx(t), secondAnchor+1); err != nil {
		t.Fatal(err)
	}
	rebuilt.Stop()
	forged := mustService(t, tp.dir, "rebuilt.DB", tp.chain)
	res, err := forged.VerifyConsistency(context.Background(), firstAnchor, secondAnchor)
	if err != nil {
		t.Fatalf("VerifyConsistency on the rebuilt log: %v", err)
	}
	if res.Verified || res.Checks[proof.CheckConsistency] {
		t.Fatalf("VerifyConsistency(%d, %d) on the rebuilt log passed: %+v", firstAnchor, secondAnchor, res)
	}
	t.Logf("consistency on the rebuilt log: failed %v: %s", res.Failed(), res.Details[proof.CheckConsistency])
	if _, err := forged.Proof(context.Background(), tp.ids[firstAnchor]); err == nil {
		t.Error("Proof of a rewritten entry from the rebuilt log succeeded")
	}
}
