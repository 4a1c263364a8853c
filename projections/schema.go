package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// migrations create the tables every projection shares. Only ever append.
var migrations = []string{
	`CREATE TABLE projection_checkpoints (
		name TEXT NOT NULL PRIMARY KEY,
		generation BIGINT NOT NULL,
		position BIGINT NOT NULL,
		updated_at BIGINT NOT NULL)`,
	`CREATE TABLE projection_generations (
		name TEXT NOT NULL,
		generation BIGINT NOT NULL,
		fingerprint TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (name, generation))`,
	`CREATE TABLE projection_failures (
		name TEXT NOT NULL PRIMARY KEY,
		position BIGINT NOT NULL,
		error TEXT NOT NULL,
		failed_at BIGINT NOT NULL)`,
}

// schemaLockID serializes, on PostgreSQL, the transactions that create
// generations (SQLite serializes every write transaction anyway).
const schemaLockID = 7351_0004

// checkpoint is a projection's row in projection_checkpoints.
type checkpoint struct {
	generation uint64
	position   uint64
	updatedAt  time.Time
}

// migrate creates the shared tables.
func migrate(ctx context.Context, db *sqldb.DB) error {
	if err := db.Migrate(ctx, "projections", migrations); err != nil {
		return fmt.Errorf("migrate projections: %w", err)
	}
	return nil
}

// lockSchema takes, on PostgreSQL, the transaction lock that serializes
// generation changes.
func lockSchema(ctx context.Context, tx *sqldb.Tx) error {
	if tx.Dialect != sqldb.Postgres {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, schemaLockID); err != nil {
		return fmt.Errorf("lock projection schema: %w", err)
	}
	return nil
}

// querier is a DB or a Tx.
type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// loadCheckpoints reads the checkpoints of names; forUpdate locks the rows
// (PostgreSQL), in name order. Projections without a row are absent.
func loadCheckpoints(ctx context.Context, q querier, dialect sqldb.Dialect, names []string, forUpdate bool) (map[string]checkpoint, error) {
	sorted := slices.Sorted(slices.Values(names))
	query := `SELECT name, generation, position, updated_at FROM projection_checkpoints WHERE name IN (` +
		placeholders(len(sorted)) + `) ORDER BY name`
	if forUpdate && dialect == sqldb.Postgres {
		query += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, query, anySlice(sorted)...)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	out := make(map[string]checkpoint, len(names))
	for rows.Next() {
		var (
			name           string
			gen, pos, atUS int64
		)
		if err := rows.Scan(&name, &gen, &pos, &atUS); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		out[name] = checkpoint{generation: uint64(gen), position: uint64(pos), updatedAt: time.UnixMicro(atUS).UTC()}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// saveCheckpoints moves the checkpoints of the projections in moves (name
// → generation and new position) within their generation, in one
// statement. It fails with errGenerationMoved when a row is no longer at
// its generation.
func saveCheckpoints(ctx context.Context, tx *sqldb.Tx, moves map[string]checkpoint, now time.Time) error {
	if len(moves) == 0 {
		return nil
	}
	var tuples []string
	var args []any
	for _, name := range slices.Sorted(maps.Keys(moves)) {
		tuples = append(tuples, "(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))")
		args = append(args, name, int64(moves[name].generation), int64(moves[name].position))
	}
	// VALUES columns are column1, column2 … in both SQLite and PostgreSQL.
	q := `UPDATE projection_checkpoints SET position = v.column3, updated_at = ? FROM (VALUES ` +
		strings.Join(tuples, ", ") + `) AS v WHERE projection_checkpoints.name = v.column1 AND projection_checkpoints.generation = v.column2`
	res, err := tx.Exec(ctx, q, append([]any{now.UnixMicro()}, args...)...)
	if err != nil {
		return fmt.Errorf("save checkpoints: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(moves)) {
		return fmt.Errorf("save %d checkpoints, %d rows matched their generation: %w", len(moves), n, errGenerationMoved)
	}
	return nil
}

// errGenerationMoved means a checkpoint changed generation during a batch.
var errGenerationMoved = errors.New("the projection's generation changed")

// generationFingerprint returns the fingerprint recorded for generation gen
// of projection name, "" when there is none.
func generationFingerprint(ctx context.Context, q querier, name string, gen uint64) (string, error) {
	rows, err := q.Query(ctx, `SELECT fingerprint FROM projection_generations WHERE name = ? AND generation = ?`, name, int64(gen))
	if err != nil {
		return "", fmt.Errorf("read generation %d of %s: %w", gen, name, err)
	}
	defer rows.Close()
	var fp string
	if rows.Next() {
		if err := rows.Scan(&fp); err != nil {
			return "", fmt.Errorf("read generation %d of %s: %w", gen, name, err)
		}
	}
	return fp, rows.Err()
}

// newGeneration records the next generation of p and creates its tables,
// inside tx (which must hold lockSchema); with indexes false it leaves out
// the secondary indexes, for a rebuild to create after its bulk load. It
// returns the generation.
func newGeneration(ctx context.Context, tx *sqldb.Tx, p Projection, now time.Time, indexes bool) (uint64, error) {
	var last int64
	err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(generation), 0) FROM projection_generations WHERE name = ?`, p.Name()).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("allocate generation of %s: %w", p.Name(), err)
	}
	gen := uint64(last) + 1
	if _, err := tx.Exec(ctx, `INSERT INTO projection_generations (name, generation, fingerprint, created_at) VALUES (?, ?, ?, ?)`,
		p.Name(), int64(gen), fingerprint(p), now.UnixMicro()); err != nil {
		return 0, fmt.Errorf("allocate generation of %s: %w", p.Name(), err)
	}
	for _, t := range p.Tables() {
		stmts := tableDDL(t, gen)
		if !indexes {
			stmts = stmts[:1]
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return 0, fmt.Errorf("create %s generation %d: %w", t.Name, gen, err)
			}
		}
	}
	return gen, nil
}

// createIndexes creates the secondary indexes of generation gen of p.
func createIndexes(ctx context.Context, db *sqldb.DB, p Projection, gen uint64) error {
	for _, t := range p.Tables() {
		for _, stmt := range indexDDL(t, gen) {
			if _, err := db.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("index %s generation %d: %w", t.Name, gen, err)
			}
		}
	}
	return nil
}

// pointViews makes p's views read generation gen. replace is false when the
// views' columns change (another fingerprint), which PostgreSQL's CREATE OR
// REPLACE VIEW refuses.
func pointViews(ctx context.Context, tx *sqldb.Tx, p Projection, gen uint64, replace bool) error {
	for _, t := range p.Tables() {
		var stmts []string
		target := generationTable(t.Name, gen)
		if tx.Dialect == sqldb.Postgres && replace {
			// Same columns: replace in place, so the view keeps its identity
			// and concurrent queries never see it missing.
			stmts = []string{fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM %s", t.Name, target)}
		} else {
			stmts = []string{"DROP VIEW IF EXISTS " + t.Name, fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM %s", t.Name, target)}
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("point view %s at generation %d: %w", t.Name, gen, err)
			}
		}
	}
	return nil
}

// ensureProjections creates generation 1, its views and its checkpoint for
// every projection of ps that has no checkpoint yet. It returns the names
// whose current generation was built from other table definitions (stale).
func ensureProjections(ctx context.Context, db *sqldb.DB, ps []Projection, now time.Time) (stale []string, err error) {
	err = db.InTx(ctx, func(tx *sqldb.Tx) error {
		stale = nil
		if err := lockSchema(ctx, tx); err != nil {
			return err
		}
		cps, err := loadCheckpoints(ctx, tx, tx.Dialect, names(ps), false)
		if err != nil {
			return err
		}
		for _, p := range ps {
			cp, ok := cps[p.Name()]
			if !ok {
				if err := createFirstGeneration(ctx, tx, p, now); err != nil {
					return err
				}
				continue
			}
			fp, err := generationFingerprint(ctx, tx, p.Name(), cp.generation)
			if err != nil {
				return err
			}
			if fp != fingerprint(p) {
				stale = append(stale, p.Name())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create projection tables: %w", err)
	}
	return stale, nil
}

func createFirstGeneration(ctx context.Context, tx *sqldb.Tx, p Projection, now time.Time) error {
	gen, err := newGeneration(ctx, tx, p, now, true)
	if err != nil {
		return err
	}
	if err := pointViews(ctx, tx, p, gen, false); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, generation, position, updated_at) VALUES (?, ?, 0, ?)`,
		p.Name(), int64(gen), now.UnixMicro())
	if err != nil {
		return fmt.Errorf("create checkpoint of %s: %w", p.Name(), err)
	}
	return nil
}

// dropGenerations drops every generation table of p except keep's, and
// returns how many it dropped.
func dropGenerations(ctx context.Context, db *sqldb.DB, p Projection, keep func(gen uint64) bool) (int, error) {
	dropped := 0
	for _, t := range p.Tables() {
		gens, err := listGenerations(ctx, db, t.Name)
		if err != nil {
			return dropped, err
		}
		for _, gen := range gens {
			if keep(gen) {
				continue
			}
			if _, err := db.Exec(ctx, "DROP TABLE IF EXISTS "+generationTable(t.Name, gen)); err != nil {
				return dropped, fmt.Errorf("drop %s: %w", generationTable(t.Name, gen), err)
			}
			dropped++
		}
	}
	return dropped, nil
}

// listGenerations returns the generations of view's table that exist.
func listGenerations(ctx context.Context, db *sqldb.DB, view string) ([]uint64, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?`
	if db.Dialect == sqldb.Postgres {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE ?`
	}
	rows, err := db.Query(ctx, q, view+"%")
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", view, err)
	}
	defer rows.Close()
	var gens []uint64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list tables of %s: %w", view, err)
		}
		suffix, ok := strings.CutPrefix(name, view+"_g")
		if gen, err := strconv.ParseUint(suffix, 10, 64); ok && err == nil {
			gens = append(gens, gen)
		}
	}
	return gens, rows.Err()
}

func names(ps []Projection) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
