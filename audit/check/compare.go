package check

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
)

// projections compares every read model with the replay, at the position
// its checkpoint names: in one read-only snapshot of the state database it
// reads the checkpoints, brings the replay to them, and merges each live
// table with its replay row by row in primary-key order.
func (c *checker) projections(ctx context.Context) error {
	db := c.cfg.DB
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect == sqldb.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	stx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("check: begin a snapshot of the read models: %w", err)
	}
	defer stx.Rollback()
	tx := &sqldb.Tx{Tx: stx, Dialect: db.Dialect}
	cps, err := checkpoints(ctx, tx)
	if err != nil {
		return err
	}
	if err := c.rep.catchUp(ctx, c.cfg.Store, projectionEvent, cps); err != nil {
		return err
	}
	total, err := c.rep.rows(ctx)
	if err != nil {
		return err
	}
	step := startStep(c.cfg.Progress, "check 3/3: read models against the replay", "rows", total)
	defer step.finish()
	for _, p := range c.cfg.Projections {
		pc := ProjectionCheck{Name: p.Name(), Position: c.rep.target[p.Name()], Skipped: c.rep.skip[p.Name()]}
		if pc.Skipped == "" && c.rep.hole != 0 && c.rep.hole <= pc.Position {
			pc.Skipped = fmt.Sprintf("the log is damaged at position %d, below its checkpoint: a replay would differ for that reason alone", c.rep.hole)
		}
		for _, t := range p.Tables() {
			if pc.Skipped != "" {
				break
			}
			n, err := c.compareTable(ctx, tx, p.Name(), t, pc.Position, step)
			if err != nil {
				return err
			}
			pc.Rows += n
		}
		c.r.Projections = append(c.r.Projections, pc)
	}
	return nil
}

// checkpoints reads every projection's checkpoint position inside the
// snapshot (projection_checkpoints, see the projections package doc).
func checkpoints(ctx context.Context, tx *sqldb.Tx) (map[string]uint64, error) {
	rows, err := tx.Query(ctx, `SELECT name, position FROM projection_checkpoints`)
	if err != nil {
		return nil, fmt.Errorf("check: read the projections' checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var pos int64
		if err := rows.Scan(&name, &pos); err != nil {
			return nil, fmt.Errorf("check: read the projections' checkpoints: %w", err)
		}
		out[name] = uint64(pos)
	}
	return out, rows.Err()
}

// projectionEvent decodes rec as the projections do.
func projectionEvent(rec eventstore.RecordedEvent) projections.Event {
	e := projections.Event{RecordedEvent: rec}
	if rec.SchemaVersion == domain.SchemaVersion {
		e.Decoded, _ = domain.DecodeEvent(rec.Type, rec.Data)
	}
	return e
}

// rows counts the replay's rows, for the progress report.
func (r *replayDB) rows(ctx context.Context) (uint64, error) {
	var total uint64
	for _, p := range r.ps {
		for _, t := range p.Tables() {
			var n int64
			if err := r.db.QueryRow(ctx, "SELECT COUNT(*) FROM "+projections.Tables{}.Name(t.Name)).Scan(&n); err != nil {
				return 0, fmt.Errorf("check: count the replay of %s: %w", t.Name, err)
			}
			total += uint64(n)
		}
	}
	return total, nil
}

// table is one read-model table as the comparison reads it.
type table struct {
	projection string
	def        projections.Table
	columns    []string
	key        []int // indexes of the primary key's columns
	position   int   // index of the "position" column, -1 if none
	entryID    int   // index of the "entry_id" column, -1 if none
	checkpoint uint64
}

func newTable(projection string, t projections.Table, checkpoint uint64) *table {
	tb := &table{projection: projection, def: t, position: -1, entryID: -1, checkpoint: checkpoint}
	for i, c := range t.Columns {
		name := strings.Fields(c)[0]
		tb.columns = append(tb.columns, name)
		switch name {
		case "position":
			tb.position = i
		case "entry_id":
			tb.entryID = i
		}
	}
	for _, k := range t.PrimaryKey {
		tb.key = append(tb.key, slices.Index(tb.columns, k))
	}
	return tb
}

// query returns the SELECT of every column of from, in primary-key order
// by bytes (collation "C" on PostgreSQL, SQLite's BINARY), as the merge
// compares keys.
func (tb *table) query(from string, d sqldb.Dialect) string {
	order := make([]string, len(tb.def.PrimaryKey))
	for i, k := range tb.def.PrimaryKey {
		order[i] = k
		if d == sqldb.Postgres && tb.isText(k) {
			order[i] += ` COLLATE "C"`
		}
	}
	return "SELECT " + strings.Join(tb.columns, ", ") + " FROM " + from + " ORDER BY " + strings.Join(order, ", ")
}

func (tb *table) isText(col string) bool {
	i := slices.Index(tb.columns, col)
	return i >= 0 && strings.Contains(strings.ToUpper(tb.def.Columns[i]), " TEXT")
}

// compareTable merges the live table (in the snapshot) with its replay
// and reports every row that differs. It returns the rows compared.
func (c *checker) compareTable(ctx context.Context, tx *sqldb.Tx, projection string, t projections.Table, checkpoint uint64, step *progress) (uint64, error) {
	tb := newTable(projection, t, checkpoint)
	live, err := tx.Query(ctx, tb.query(t.Name, tx.Dialect))
	if err != nil {
		return 0, fmt.Errorf("check: read %s: %w", t.Name, err)
	}
	defer live.Close()
	replayed, err := c.rep.db.Query(ctx, tb.query(projections.Tables{}.Name(t.Name), sqldb.SQLite))
	if err != nil {
		return 0, fmt.Errorf("check: read the replay of %s: %w", t.Name, err)
	}
	defer replayed.Close()
	l, r := newCursor(live, len(tb.columns)), newCursor(replayed, len(tb.columns))
	var n uint64
	for {
		lok, rok := l.next(), r.next()
		if !lok && !rok {
			break
		}
		switch k := tb.compareKeys(l.row, r.row); {
		case k < 0:
			c.projectionFinding(ctx, tb, l.row, "the read model has a row the replay does not")
			l.take()
		case k > 0:
			c.projectionFinding(ctx, tb, r.row, "the read model lacks this row, which the replay has")
			r.take()
		default:
			if diff := tb.diff(l.row, r.row); diff != "" {
				c.projectionFinding(ctx, tb, r.row, diff)
			}
			l.take()
			r.take()
		}
		n++
		step.add(1)
	}
	return n, errors.Join(l.err, r.err)
}

// cursor reads rows one at a time; row is the current one, nil once
// taken or at the end.
type cursor struct {
	rows *sql.Rows
	n    int
	row  []any
	done bool
	err  error
}

func newCursor(rows *sql.Rows, columns int) *cursor { return &cursor{rows: rows, n: columns} }

// next loads the next row unless one is loaded; it reports whether a row
// is loaded.
func (c *cursor) next() bool {
	if c.row != nil {
		return true
	}
	if c.done {
		return false
	}
	if !c.rows.Next() {
		c.done, c.err = true, c.rows.Err()
		return false
	}
	vals := make([]any, c.n)
	ptrs := make([]any, c.n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := c.rows.Scan(ptrs...); err != nil {
		c.done, c.err = true, err
		return false
	}
	for i, v := range vals {
		vals[i] = normalize(v)
	}
	c.row = vals
	return true
}

func (c *cursor) take() { c.row = nil }

// normalize maps a scanned value to one comparable across SQLite and
// PostgreSQL: text as string, integers and booleans as int64.
func normalize(v any) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case int32:
		return int64(v)
	case int:
		return int64(v)
	}
	return v
}

// compareKeys orders two rows by primary key; a nil row sorts after
// every other (the end of its table).
func (tb *table) compareKeys(a, b []any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	for _, i := range tb.key {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

func compareValues(a, b any) int {
	switch a := a.(type) {
	case int64:
		if b, ok := b.(int64); ok {
			return cmp.Compare(a, b)
		}
	case string:
		if b, ok := b.(string); ok {
			return strings.Compare(a, b)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// diff says which columns of a live row differ from its replay, "" if
// none.
func (tb *table) diff(live, replayed []any) string {
	var parts []string
	for i, col := range tb.columns {
		if compareValues(live[i], replayed[i]) != 0 || (live[i] == nil) != (replayed[i] == nil) {
			parts = append(parts, fmt.Sprintf("%s is %s in the read model, %s in the replay", col, show(live[i]), show(replayed[i])))
		}
	}
	return strings.Join(parts, "; ")
}

// projectionFinding reports a row of tb, naming its key and the position
// and entry of the last event that changed it.
func (c *checker) projectionFinding(ctx context.Context, tb *table, row []any, what string) {
	f := Finding{Check: Projection, Projection: tb.projection, Table: tb.def.Name, Key: tb.keyText(row)}
	if tb.position >= 0 {
		if p, ok := row[tb.position].(int64); ok && p > 0 {
			f.Position = uint64(p)
		}
	}
	if tb.entryID >= 0 {
		f.EntryID, _ = row[tb.entryID].(string)
	} else {
		f.EntryID = c.entryAt(ctx, f.Position)
	}
	f.Detail = fmt.Sprintf("%s row %s, as of checkpoint %d: %s", tb.def.Name, f.Key, tb.checkpoint, what)
	c.r.add(f)
}

func (tb *table) keyText(row []any) string {
	parts := make([]string, len(tb.key))
	for i, k := range tb.key {
		parts[i] = tb.columns[k] + "=" + fmt.Sprint(row[k])
	}
	return strings.Join(parts, ", ")
}

// showBytesMax bounds a value quoted in a finding.
const showBytesMax = 120

func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		if len(v) > showBytesMax {
			v = v[:showBytesMax] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}
