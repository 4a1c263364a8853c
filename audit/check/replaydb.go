package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
)

// replayBatchEvents bounds the events applied to the replay database in
// one transaction. Nothing reads it meanwhile, so batches are as large as
// a projections rebuild's: the rows a batch touches are read once.
const replayBatchEvents = 50000

// replayDB is the read models rebuilt from the log by the projections' own
// Apply, in a fresh SQLite database, each up to the position its live
// checkpoint names. Its tables are generation 0 of each projection
// (projections.Tables{}), which no installation ever uses.
type replayDB struct {
	dir     string
	db      *sqldb.DB
	ps      []projections.Projection
	target  map[string]uint64 // apply up to this position: the live checkpoint
	applied map[string]uint64
	skip    map[string]string // why a projection is not compared
	batch   []projections.Event
	hole    uint64 // the first position the replay lacks (a damaged entry), 0 if none
}

// openReplay creates the replay database in a new directory of tempDir,
// with the targets of the projections' checkpoints in statuses.
func openReplay(ctx context.Context, tempDir string, ps []projections.Projection, statuses []projections.Status) (*replayDB, error) {
	dir, err := os.MkdirTemp(tempDir, "rendertrust-check-")
	if err != nil {
		return nil, fmt.Errorf("check: replay database: %w", err)
	}
	db, err := sqldb.OpenSQLite(filepath.Join(dir, "replay.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("check: replay database: %w", err)
	}
	r := &replayDB{dir: dir, db: db, ps: ps, target: map[string]uint64{}, applied: map[string]uint64{}, skip: map[string]string{}}
	for _, p := range ps {
		r.skip[p.Name()] = "its status could not be read"
	}
	for _, st := range statuses {
		delete(r.skip, st.Name)
		switch {
		case !st.Built:
			r.skip[st.Name] = "not built yet (the runner creates it)"
		case st.Stale:
			r.skip[st.Name] = "built from other table definitions: it needs a rebuild (the runner does it)"
		default:
			r.target[st.Name] = st.Position
		}
	}
	for _, p := range ps {
		for _, t := range p.Tables() {
			ddl := fmt.Sprintf("CREATE TABLE %s (%s, PRIMARY KEY (%s))", projections.Tables{}.Name(t.Name),
				strings.Join(t.Columns, ", "), strings.Join(t.PrimaryKey, ", "))
			if _, err := db.Exec(ctx, ddl); err != nil {
				r.close()
				return nil, fmt.Errorf("check: replay database: %w", err)
			}
		}
	}
	return r, nil
}

func (r *replayDB) close() {
	r.db.Close()
	os.RemoveAll(r.dir)
}

// feed queues the next event of the log, applying a full batch.
func (r *replayDB) feed(ctx context.Context, e projections.Event) error {
	if e.Position > r.maxTarget() {
		return nil
	}
	r.batch = append(r.batch, e)
	if len(r.batch) >= replayBatchEvents {
		return r.flush(ctx)
	}
	return nil
}

// markHole notes that the replay lacks the event at position.
func (r *replayDB) markHole(position uint64) {
	if r.hole == 0 {
		r.hole = position
	}
}

func (r *replayDB) maxTarget() uint64 {
	var m uint64
	for _, t := range r.target {
		m = max(m, t)
	}
	return m
}

// flush applies the queued events, which follow each other, to each
// projection up to its target, in one transaction.
func (r *replayDB) flush(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	last := r.batch[len(r.batch)-1].Position
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, p := range r.ps {
			evs := window(r.batch, r.applied[p.Name()], r.target[p.Name()])
			if _, skipped := r.skip[p.Name()]; skipped || len(evs) == 0 {
				continue
			}
			if err := p.Apply(ctx, tx, projections.Tables{}, evs); err != nil {
				return fmt.Errorf("check: replay %d events into %s: %w", len(evs), p.Name(), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, t := range r.target {
		r.applied[name] = max(r.applied[name], min(t, last))
	}
	r.batch = r.batch[:0]
	return nil
}

// window returns the events of evs with a position in (after, upTo].
func window(evs []projections.Event, after, upTo uint64) []projections.Event {
	lo, hi := 0, len(evs)
	for lo < hi && evs[lo].Position <= after {
		lo++
	}
	for hi > lo && evs[hi-1].Position > upTo {
		hi--
	}
	return evs[lo:hi]
}

// catchUp moves each projection's target to its live checkpoint in cps
// and replays the events the targets gained, read from log.
func (r *replayDB) catchUp(ctx context.Context, store Store, decode func(eventstore.RecordedEvent) projections.Event, cps map[string]uint64) error {
	from := uint64(0)
	for name, t := range r.target {
		switch cp := cps[name]; {
		case cp < t:
			r.skip[name] = fmt.Sprintf("its checkpoint moved back from %d to %d during the check", t, cp)
		default:
			r.target[name] = cp
			if from == 0 || r.applied[name]+1 < from {
				from = r.applied[name] + 1
			}
		}
	}
	for to := r.maxTarget(); from != 0 && from <= to; {
		recs, err := store.ReadAll(ctx, from, int(min(uint64(eventstore.ReadEventsMax), to-from+1)))
		if err != nil {
			return fmt.Errorf("check: read the log from %d: %w", from, err)
		}
		if len(recs) == 0 || recs[0].Position != from {
			return fmt.Errorf("check: read the log from %d: it ends before %d", from, to)
		}
		for _, rec := range recs {
			if err := r.feed(ctx, decode(rec)); err != nil {
				return err
			}
		}
		from = recs[len(recs)-1].Position + 1
	}
	return r.flush(ctx)
}
