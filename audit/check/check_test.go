package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/audittest"
	"github.com/rendertrust/rendertrust/audit/check"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// fixtureEvents is the size of each test installation's history.
const fixtureEvents = 250

// backends are the two ways an installation keeps its data.
var backends = []struct {
	name string
	opts audittest.Options
}{
	{"SQLite", audittest.Options{}},
	{"PostgreSQL", audittest.Options{Postgres: true}},
}

// newFixture starts an installation with a settled, anchored history.
func newFixture(t *testing.T, opts audittest.Options) (*audittest.Installation, *projectiontest.Sim, uint64) {
	t.Helper()
	in := audittest.New(t, opts)
	sim := projectiontest.NewSim(projectiontest.Config{Users: 8, Nodes: 3, Seed: 7})
	in.Load(t, sim, fixtureEvents)
	return in, sim, in.Settle(t)
}

func run(t *testing.T, in *audittest.Installation) *check.Report {
	t.Helper()
	cfg := check.Config{Store: in.Store, DB: in.DB, TempDir: t.TempDir()}
	if in.Chain != nil {
		cfg.Chain = in.Chain.Client()
	}
	r, err := check.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return r
}

// report returns r as indented JSON, for failure messages.
func report(r *check.Report) string {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestCheckHealthy: on an anchored installation whose workers are
// caught up, every check runs over everything and finds nothing.
func TestCheckHealthy(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			in, _, head := newFixture(t, b.opts)
			r := run(t, in)
			t.Logf("report:\n%s", report(r))
			if !r.OK() {
				t.Fatalf("findings on a healthy installation:\n%s", report(r))
			}
			// The anchor worker may record one more anchor between the
			// settle and the check: everything up to the settled head
			// must be checked, and the newer record may or may not be.
			if r.Events < head || r.Logged < head || r.AnchorsChecked == 0 || !r.ChainChecked || r.TreeNodes < head || r.MoneyEvents == 0 {
				t.Errorf("checked events %d, logged %d, anchors %d, chain %t, tree nodes %d, money %d; want all of head ≥ %d\n%s",
					r.Events, r.Logged, r.AnchorsChecked, r.ChainChecked, r.TreeNodes, r.MoneyEvents, head, report(r))
			}
			if len(r.Projections) != len(projections.All()) {
				t.Fatalf("compared %d projections, want %d", len(r.Projections), len(projections.All()))
			}
			for _, p := range r.Projections {
				if p.Skipped != "" || p.Position < head || (p.Rows == 0 && p.Name != "usage") {
					t.Errorf("projection %+v, want compared at ≥ %d", p, head)
				}
			}
		})
	}
}

// TestCheckToleratesLag: with the workers stopped and more events
// appended, the audit log and the read models lag the log; that is no
// finding, and the read models are compared at their checkpoints.
func TestCheckToleratesLag(t *testing.T) {
	in, sim, settled := newFixture(t, audittest.Options{})
	in.Stop()
	head := in.Load(t, sim, 100)
	r := run(t, in)
	if !r.OK() {
		t.Fatalf("findings while lagging:\n%s", report(r))
	}
	if r.Events != head || r.Logged != settled {
		t.Errorf("events %d, logged %d; want %d, %d", r.Events, r.Logged, head, settled)
	}
	for _, p := range r.Projections {
		if p.Position != settled {
			t.Errorf("projection %s compared at %d, want its checkpoint %d", p.Name, p.Position, settled)
		}
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "catching up") {
		t.Errorf("notes %q do not say the audit log is catching up", r.Notes)
	}
}

// fault is one kind of damage and what the check must report for it.
type fault struct {
	name string
	// inject damages the installation and returns the finding the check
	// must report and a function that undoes the damage (nil when it
	// cannot be undone: an append).
	inject func(t *testing.T, in *audittest.Installation, head uint64) (check.Finding, func())
	// consequence reports whether a further finding follows from the
	// damage (an anchor whose root can no longer be reproduced).
	consequence func(want, got check.Finding) bool
}

// anchorsAfter accepts the anchor_root findings of anchors at or above
// the damaged position: their roots cannot be reproduced any more.
func anchorsAfter(want, got check.Finding) bool {
	return got.Check == check.AnchorRoot && got.TreeSize >= want.Position
}

func none(want, got check.Finding) bool { return false }

// TestCheckFindsEachFault injects each kind of damage and checks that the
// report names exactly it: the check, the position and the entry (and the
// row for a read model), with only the findings that follow from it
// besides. The damages that can be undone share one installation, and the
// check is clean again after each is undone; an append gets its own.
func TestCheckFindsEachFault(t *testing.T) {
	undoable := []fault{
		{"AlteredByte", alterByte(false), anchorsAfter},
		{"AlteredByteWithItsHashRecomputed", alterByte(true), anchorsAfter},
		{"DeletedRow", deleteRow, anchorsAfter},
		{"ProjectionRowEdited", editProjectionRow, none},
		{"ProjectionRowDeleted", deleteProjectionRow, none},
		{"TreeNodeAltered", alterTreeNode, none},
	}
	appended := []fault{
		{"OneSidedPosting", oneSidedPosting, none},
		{"BrokenPostings", brokenPostings, none},
		{"MisfiledEvent", misfile, none},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			in, _, head := newFixture(t, b.opts)
			for _, f := range undoable {
				t.Run(f.name, func(t *testing.T) {
					want, undo := f.inject(t, in, head)
					expectFinding(t, run(t, in), f, want)
					undo()
					if r := run(t, in); !r.OK() {
						t.Fatalf("findings after undoing the damage:\n%s", report(r))
					}
				})
			}
		})
	}
	for _, f := range appended {
		t.Run(f.name, func(t *testing.T) {
			in, _, head := newFixture(t, audittest.Options{})
			want, _ := f.inject(t, in, head)
			expectFinding(t, run(t, in), f, want)
		})
	}
}

// expectFinding checks that r holds want and otherwise only consequences
// of f.
func expectFinding(t *testing.T, r *check.Report, f fault, want check.Finding) {
	t.Helper()
	text := report(r)
	t.Logf("report:\n%s", text)
	if r.OK() {
		t.Fatalf("no finding after %s", f.name)
	}
	found := false
	for _, got := range r.Findings {
		switch {
		case matches(want, got):
			found = true
		case !f.consequence(want, got):
			t.Errorf("unexpected finding %+v", got)
		}
	}
	if !found {
		t.Errorf("missing finding %+v", want)
	}
	if !strings.Contains(text, want.EntryID) || !strings.Contains(text, fmt.Sprint(want.Position)) {
		t.Errorf("the report does not name entry %s at position %d", want.EntryID, want.Position)
	}
}

// matches reports whether got is the finding want describes; want.Detail
// is a part of got.Detail.
func matches(want, got check.Finding) bool {
	return got.Check == want.Check && got.Position == want.Position && got.EntryID == want.EntryID &&
		got.Table == want.Table && got.Key == want.Key && strings.Contains(got.Detail, want.Detail)
}

// middle returns an event near the middle of the log that pred accepts.
func middle(t *testing.T, in *audittest.Installation, head uint64, pred func(eventstore.RecordedEvent) bool) eventstore.RecordedEvent {
	t.Helper()
	evs, err := in.Store.ReadAll(context.Background(), head/2, eventstore.ReadEventsMax)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if pred(e) {
			return e
		}
	}
	t.Fatal("no event to damage")
	return eventstore.RecordedEvent{}
}

func anyEvent(e eventstore.RecordedEvent) bool { return e.Stream != domain.AnchorStream }

// alterByte changes one digit of an entry's recorded time in the store
// (which no read model uses), and with rehash also its stored hash, as a
// careful forger would.
func alterByte(rehash bool) func(*testing.T, *audittest.Installation, uint64) (check.Finding, func()) {
	return func(t *testing.T, in *audittest.Installation, head uint64) (check.Finding, func()) {
		e := middle(t, in, head, anyEvent)
		undo := keepRow(t, in.EventsSQL(t), "events", "position", int64(e.Position))
		b := bytes.Clone(e.Bytes)
		i := bytes.Index(b, []byte(`","schema_version"`)) - 2 // the last microsecond digit
		b[i] = '0' + (b[i]-'0'+1)%10
		db := in.EventsSQL(t)
		q, args := `UPDATE events SET bytes = ? WHERE position = ?`, []any{b, int64(e.Position)}
		if rehash {
			h := eventstore.LeafHash(b)
			q, args = `UPDATE events SET bytes = ?, leaf_hash = ? WHERE position = ?`, []any{b, h[:], int64(e.Position)}
		}
		if _, err := db.Exec(context.Background(), q, args...); err != nil {
			t.Fatal(err)
		}
		if rehash {
			return check.Finding{Check: check.LeafIndex, Position: e.Position, EntryID: e.ID, Detail: "changed: its bytes hash to"}, undo
		}
		return check.Finding{Check: check.Entry, Position: e.Position, EntryID: e.ID, Detail: "leaf hash does not match the stored bytes"}, undo
	}
}

func deleteRow(t *testing.T, in *audittest.Installation, head uint64) (check.Finding, func()) {
	e := middle(t, in, head, anyEvent)
	undo := keepRow(t, in.EventsSQL(t), "events", "position", int64(e.Position))
	if _, err := in.EventsSQL(t).Exec(context.Background(), `DELETE FROM events WHERE position = ?`, int64(e.Position)); err != nil {
		t.Fatal(err)
	}
	return check.Finding{Check: check.Entry, Position: e.Position, EntryID: e.ID, Detail: "missing"}, undo
}

// brokenPostings appends, through the store and not the commands, a grant
// whose postings give the user more than its amount.
func brokenPostings(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	user := projectiontest.UserID(1)
	g := domain.CreditsGranted{UserID: user, GrantID: "crafted-1", Amount: 100, Reason: "crafted",
		Postings: []domain.Posting{{Debit: domain.AccountPromotions, Credit: domain.UserAccount(user), Amount: 150}},
		At:       time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	pos, id := appendRaw(t, in, domain.AccountStream(user), g)
	in.Settle(t)
	return check.Finding{Check: check.Postings, Position: pos, EntryID: id, Detail: "the grant of 100 credits moves +150 on user:" + string(user) + ", want +100"}, nil
}

// oneSidedPosting appends, through the store, a grant whose posting
// credits the user and debits no account: money from nowhere.
func oneSidedPosting(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	user := projectiontest.UserID(2)
	g := domain.CreditsGranted{UserID: user, GrantID: "crafted-3", Amount: 100, Reason: "crafted",
		Postings: []domain.Posting{{Credit: domain.UserAccount(user), Amount: 100}},
		At:       time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	pos, id := appendRaw(t, in, domain.AccountStream(user), g)
	in.Settle(t)
	return check.Finding{Check: check.Postings, Position: pos, EntryID: id, Detail: "posting 0: empty account"}, nil
}

// misfile appends a grant to user 1 into user 2's account stream.
func misfile(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	user := projectiontest.UserID(1)
	g := domain.CreditsGranted{UserID: user, GrantID: "crafted-2", Amount: 5, Reason: "crafted",
		Postings: []domain.Posting{{Debit: domain.AccountPromotions, Credit: domain.UserAccount(user), Amount: 5}},
		At:       time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	pos, id := appendRaw(t, in, domain.AccountStream(projectiontest.UserID(2)), g)
	in.Settle(t)
	return check.Finding{Check: check.Stream, Position: pos, EntryID: id, Detail: "its data says it belongs to " + domain.AccountStream(user)}, nil
}

func appendRaw(t *testing.T, in *audittest.Installation, stream string, e domain.Event) (uint64, string) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	id := eventstore.NewEventID()
	res, err := in.Store.Append(context.Background(), stream, eventstore.Any,
		eventstore.EventData{ID: id, Type: e.EventType(), SchemaVersion: domain.SchemaVersion, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return res.LastPosition, id
}

// generation returns the table behind a projection's view.
func generation(t *testing.T, in *audittest.Installation, projection, view string) string {
	t.Helper()
	st, err := projections.ReadStatus(context.Background(), in.DB, in.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name == projection {
			return fmt.Sprintf("%s_g%d", view, s.Generation)
		}
	}
	t.Fatalf("no projection %s", projection)
	return ""
}

// editProjectionRow marks a completed job failed in rm_jobs, as a
// careless operator's UPDATE would.
func editProjectionRow(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	ctx := context.Background()
	var job string
	var pos int64
	err := in.DB.QueryRow(ctx, `SELECT job_id, position FROM rm_jobs WHERE status = 'COMPLETED' ORDER BY job_id LIMIT 1`).Scan(&job, &pos)
	if err != nil {
		t.Fatal(err)
	}
	table := generation(t, in, "jobs", "rm_jobs")
	undo := keepRow(t, in.DB, table, "job_id", job)
	if _, err := in.DB.Exec(ctx, `UPDATE `+table+` SET status = 'FAILED' WHERE job_id = ?`, job); err != nil {
		t.Fatal(err)
	}
	return check.Finding{Check: check.Projection, Position: uint64(pos), EntryID: entryAt(t, in, uint64(pos)),
		Table: "rm_jobs", Key: "job_id=" + job, Detail: `status is "FAILED" in the read model, "COMPLETED" in the replay`}, undo
}

// deleteProjectionRow deletes a user's balance row.
func deleteProjectionRow(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	ctx := context.Background()
	var user string
	var pos int64
	if err := in.DB.QueryRow(ctx, `SELECT user_id, position FROM rm_balances ORDER BY user_id LIMIT 1`).Scan(&user, &pos); err != nil {
		t.Fatal(err)
	}
	table := generation(t, in, "balances", "rm_balances")
	undo := keepRow(t, in.DB, table, "user_id", user)
	if _, err := in.DB.Exec(ctx, `DELETE FROM `+table+` WHERE user_id = ?`, user); err != nil {
		t.Fatal(err)
	}
	return check.Finding{Check: check.Projection, Position: uint64(pos), EntryID: entryAt(t, in, uint64(pos)),
		Table: "rm_balances", Key: "user_id=" + user, Detail: "the read model lacks this row"}, undo
}

// alterTreeNode changes the stored hash of the node over positions 5..8,
// from which the proofs of those entries are served.
func alterTreeNode(t *testing.T, in *audittest.Installation, _ uint64) (check.Finding, func()) {
	undo := keepRow(t, in.DB, "anchor_nodes", "level = 2 AND idx", 1)
	if _, err := in.DB.Exec(context.Background(), `UPDATE anchor_nodes SET hash = ? WHERE level = 2 AND idx = 1`, bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	return check.Finding{Check: check.TreeNode, Position: 5, EntryID: entryAt(t, in, 5), Key: "node 2/1", Detail: "stored node 2/1 (positions 5..8) is 0707"}, undo
}

func entryAt(t *testing.T, in *audittest.Installation, pos uint64) string {
	t.Helper()
	evs, err := in.Store.ReadAll(context.Background(), pos, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %d: %v", pos, err)
	}
	return evs[0].ID
}

// keepRow reads the row of table where column = key and returns a
// function that puts it back as it was (deleting what is there).
func keepRow(t *testing.T, db *sqldb.DB, table, column string, key any) func() {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `SELECT * FROM `+table+` WHERE `+column+` = ?`, key)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		t.Fatalf("no row of %s where %s = %v", table, column, key)
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	return func() {
		t.Helper()
		if _, err := db.Exec(ctx, `DELETE FROM `+table+` WHERE `+column+` = ?`, key); err != nil {
			t.Fatal(err)
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
		if _, err := db.Exec(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES (`+marks+`)`, vals...); err != nil {
			t.Fatal(err)
		}
	}
}
