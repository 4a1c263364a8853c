package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Projection is one read model: a name, its tables, and how a batch of
// events changes them. Implementations must be safe for concurrent use: a
// runner and a rebuild may apply batches at the same time (to different
// generations).
type Projection interface {
	// Name identifies the projection in checkpoints, metrics and the
	// command line: lower-case letters, digits and '_'.
	Name() string
	// Tables returns the projection's tables. Their definitions are
	// fingerprinted: changing them makes the runner rebuild the projection.
	Tables() []Table
	// Apply folds events, in position order, into the tables t names,
	// inside tx. Events it has no use for, and events whose Decoded is nil
	// (unknown types), are ignored. An error rolls back what it wrote of
	// the batch; the other projections go on, and it is retried later.
	Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error
}

// Event is a recorded event and its decoded domain event. Decoded is nil
// when the domain does not know the event's type or schema version.
type Event struct {
	eventstore.RecordedEvent
	Decoded domain.Event
	// Sanitized is true when Decoded had control characters in its text,
	// which projections see replaced by spaces (the log keeps them).
	Sanitized bool
}

// Table declares one read-model table. Name is the view that queries use;
// the rows live in a generation table Name_g{generation}.
type Table struct {
	// Name is the view's name: "rm_" followed by lower-case letters,
	// digits and '_'.
	Name string
	// Columns are column definitions, e.g. "job_id TEXT NOT NULL", in
	// types both SQLite and PostgreSQL accept (TEXT, BIGINT, BOOLEAN).
	Columns []string
	// PrimaryKey lists the primary key's columns.
	PrimaryKey []string
	// Indexes lists each secondary index's columns, e.g.
	// {"owner", "submitted_at DESC"}.
	Indexes [][]string
}

// Tables names the physical tables of one generation of a projection.
type Tables struct {
	generation uint64
}

// Name returns the generation table behind the view named view, e.g.
// "rm_jobs_g3" for "rm_jobs".
func (t Tables) Name(view string) string { return generationTable(view, t.generation) }

// Generation returns the generation the tables belong to.
func (t Tables) Generation() uint64 { return t.generation }

func generationTable(view string, generation uint64) string {
	return view + "_g" + strconv.FormatUint(generation, 10)
}

var (
	projectionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)
	tableNameRE      = regexp.MustCompile(`^rm_[a-z0-9_]{1,40}$`)
)

// ErrUnknownProjection is returned (wrapped) for a projection name that is
// not among the projections given.
var ErrUnknownProjection = errors.New("unknown projection")

// checkProjections fails when a name or table name is malformed (they are
// spliced into SQL) or used twice.
func checkProjections(ps []Projection) error {
	if len(ps) == 0 {
		return errors.New("no projections")
	}
	names, tables := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		if !projectionNameRE.MatchString(p.Name()) || names[p.Name()] {
			return fmt.Errorf("projection name %q is malformed or used twice", p.Name())
		}
		names[p.Name()] = true
		for _, t := range p.Tables() {
			if !tableNameRE.MatchString(t.Name) || tables[t.Name] {
				return fmt.Errorf("projection %s: table name %q is malformed or used twice", p.Name(), t.Name)
			}
			tables[t.Name] = true
		}
	}
	return nil
}

// selectProjections returns the projections of ps named by names (all of
// them when names is empty), or an error wrapping ErrUnknownProjection.
func selectProjections(ps []Projection, names []string) ([]Projection, error) {
	if len(names) == 0 {
		return ps, nil
	}
	byName := map[string]Projection{}
	var known []string
	for _, p := range ps {
		byName[p.Name()] = p
		known = append(known, p.Name())
	}
	var out []Projection
	seen := map[string]bool{}
	for _, n := range names {
		p, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProjection, n, strings.Join(known, ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// fingerprint identifies a projection's table definitions, so tables built
// by other code are recognized.
func fingerprint(p Projection) string {
	h := sha256.New()
	for _, t := range p.Tables() {
		for _, stmt := range tableDDL(t, 0) {
			h.Write([]byte(stmt))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// tableDDL returns the statements that create generation gen of t: the
// table with its primary key, then its secondary indexes.
func tableDDL(t Table, gen uint64) []string {
	name := generationTable(t.Name, gen)
	cols := strings.Join(t.Columns, ", ")
	stmts := []string{fmt.Sprintf("CREATE TABLE %s (%s, PRIMARY KEY (%s))", name, cols, strings.Join(t.PrimaryKey, ", "))}
	return append(stmts, indexDDL(t, gen)...)
}

// indexDDL returns the statements that create the secondary indexes of
// generation gen of t.
func indexDDL(t Table, gen uint64) []string {
	name := generationTable(t.Name, gen)
	var stmts []string
	for i, idx := range t.Indexes {
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX %s_i%d ON %s (%s)", name, i+1, name, strings.Join(idx, ", ")))
	}
	return stmts
}

// All returns the read models the API serves: jobs, balances,
// transactions, usage, nodes and job attempts.
func All() []Projection {
	return []Projection{jobsProjection{}, balancesProjection{}, transactionsProjection{}, usageProjection{}, nodesProjection{},
		jobAttemptsProjection{}}
}

// decodeEvents decodes the domain event of each recorded event. Unknown
// types and schema versions give a nil Decoded; a known type whose data does
// not decode is an error (the log holds something the domain never wrote).
func decodeEvents(recs []eventstore.RecordedEvent) ([]Event, error) {
	out := make([]Event, len(recs))
	for i, rec := range recs {
		out[i].RecordedEvent = rec
		if rec.SchemaVersion != domain.SchemaVersion {
			continue
		}
		e, err := domain.DecodeEvent(rec.Type, rec.Data)
		if errors.Is(err, domain.ErrUnknownEventType) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("event at position %d: %w", rec.Position, err)
		}
		out[i].Decoded, out[i].Sanitized = sanitize(e)
	}
	return out, nil
}

// skipLabel is the type label of an unknown event in the skip metric.
func skipLabel(e Event) string {
	if e.SchemaVersion != domain.SchemaVersion {
		return fmt.Sprintf("%s@v%d", e.Type, e.SchemaVersion)
	}
	return e.Type
}
