package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

const (
	// statementParamsMax bounds the parameters of one multi-row statement
	// (SQLite allows 32,766, PostgreSQL 65,535).
	statementParamsMax = 12000
	// lookupKeysMax bounds the keys of one "WHERE key IN (…)" read.
	lookupKeysMax = 500
)

// rowWriter writes rows of one table with multi-row INSERT statements, as
// upserts when conflict names the key (the other columns are overwritten).
type rowWriter struct {
	table    string
	columns  []string
	conflict []string // key columns; nil for plain inserts
}

// write writes n rows; row(i, args) appends row i's values to args, one per
// column, in column order. Full-size statements are prepared once per call.
func (w rowWriter) write(ctx context.Context, tx *sqldb.Tx, n int, row func(i int, args []any) []any) error {
	perStatement := max(1, statementParamsMax/len(w.columns))
	var full *sql.Stmt
	if n >= 2*perStatement {
		stmt, err := tx.PrepareContext(ctx, rebindFor(tx.Dialect, w.statement(perStatement)))
		if err != nil {
			return fmt.Errorf("prepare writes to %s: %w", w.table, err)
		}
		defer stmt.Close()
		full = stmt
	}
	args := make([]any, 0, min(n, perStatement)*len(w.columns))
	for start := 0; start < n; start += perStatement {
		end := min(n, start+perStatement)
		args = args[:0]
		for i := start; i < end; i++ {
			args = row(i, args)
		}
		if len(args) != (end-start)*len(w.columns) {
			panic(fmt.Sprintf("projections: %d values for %d rows of %s", len(args), end-start, w.table))
		}
		var err error
		if full != nil && end-start == perStatement {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.Exec(ctx, w.statement(end-start), args...)
		}
		if err != nil {
			return fmt.Errorf("write %d rows to %s: %w", end-start, w.table, err)
		}
	}
	return nil
}

func (w rowWriter) statement(rows int) string {
	var b strings.Builder
	b.Grow(64 + rows*(4*len(w.columns)+3))
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", w.table, strings.Join(w.columns, ", "))
	tuple := "(" + placeholders(len(w.columns)) + ")"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	if w.conflict != nil {
		fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET ", strings.Join(w.conflict, ", "))
		first := true
		for _, c := range w.columns {
			if isKey(c, w.conflict) {
				continue
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&b, "%s = excluded.%s", c, c)
		}
	}
	return b.String()
}

// rebindFor rewrites q's placeholders for dialect d, as sqldb's Exec does.
func rebindFor(d sqldb.Dialect, q string) string { return (&sqldb.DB{Dialect: d}).Rebind(q) }

func isKey(col string, key []string) bool {
	for _, k := range key {
		if k == col {
			return true
		}
	}
	return false
}

// lookup reads the rows of table whose column key is one of keys, in chunks
// of lookupKeysMax, calling scan for each row.
func lookup(ctx context.Context, tx *sqldb.Tx, table string, columns []string, key string, keys []string, scan func(*sql.Rows) error) error {
	for start := 0; start < len(keys); start += lookupKeysMax {
		chunk := keys[start:min(len(keys), start+lookupKeysMax)]
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (%s)", strings.Join(columns, ", "), table, key, placeholders(len(chunk)))
		rows, err := tx.Query(ctx, q, anySlice(chunk)...)
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", table, err)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
	}
	return nil
}
