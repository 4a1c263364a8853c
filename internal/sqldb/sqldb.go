// Package sqldb is the one SQL layer under the read models and the mutable
// tables (identity, tokens, idempotency): database/sql on SQLite or
// PostgreSQL, with queries written once using '?' placeholders.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the SQL database behind a DB.
type Dialect int

// The dialects sqldb speaks.
const (
	SQLite Dialect = iota
	Postgres
)

const (
	// sqliteBusyTimeout is how long a SQLite writer waits for the lock.
	sqliteBusyTimeout = 10 * time.Second
	// sqliteConnsMax bounds SQLite connections (WAL readers run in parallel).
	sqliteConnsMax = 8
	// postgresConnsMax bounds PostgreSQL connections from one process.
	postgresConnsMax = 32
)

// DB is a database handle that rebinds '?' placeholders for its dialect and
// keeps every statement it ran prepared, so the database parses each query
// once, not once per call.
type DB struct {
	*sql.DB
	Dialect   Dialect
	stmts     sync.Map // query text → *sql.Stmt
	stmtCount atomic.Int64
}

// stmtsMax bounds the statements kept prepared; queries built at run time
// (IN lists of varying length) past it run unprepared.
const stmtsMax = 1000

// stmt returns the prepared statement for q (rebound), preparing it once.
// It returns nil when q cannot be kept (too many statements already).
func (db *DB) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	if db.stmtCount.Load() >= stmtsMax || !cacheable(q) {
		return nil, nil
	}
	st, err := db.DB.PrepareContext(ctx, db.Rebind(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	db.stmtCount.Add(1)
	return st, nil
}

// OpenSQLite opens (creating) the SQLite file at path: WAL, synchronous=FULL,
// write transactions that take the lock at BEGIN.
func OpenSQLite(path string) (*DB, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "cache_size(-65536)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteConnsMax)
	db.SetMaxIdleConns(sqliteConnsMax)
	return &DB{DB: db, Dialect: SQLite}, nil
}

// OpenPostgres connects to the PostgreSQL database at dsn.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(postgresConnsMax)
	db.SetMaxIdleConns(postgresConnsMax)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &DB{DB: db, Dialect: Postgres}, nil
}

// Rebind rewrites '?' placeholders as $1, $2 … for PostgreSQL. Queries must
// not contain '?' inside string literals.
func (db *DB) Rebind(q string) string { return rebind(db.Dialect, q) }

func rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cacheable reports whether q is plain DML worth keeping prepared (DDL is
// run once and must not pin plans across schema changes).
func cacheable(q string) bool {
	q = strings.ToUpper(strings.TrimSpace(q))
	for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"} {
		if strings.HasPrefix(q, p) {
			return true
		}
	}
	return false
}

// Exec runs a statement.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := db.stmt(ctx, q)
	if err != nil || st == nil {
		return db.DB.ExecContext(ctx, db.Rebind(q), args...)
	}
	return st.ExecContext(ctx, args...)
}

// Query runs a query.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := db.stmt(ctx, q)
	if err != nil || st == nil {
		return db.DB.QueryContext(ctx, db.Rebind(q), args...)
	}
	return st.QueryContext(ctx, args...)
}

// QueryRow runs a query that returns at most one row.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := db.stmt(ctx, q)
	if err != nil || st == nil {
		return db.DB.QueryRowContext(ctx, db.Rebind(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// InTx runs fn in a write transaction, committing when it returns nil and
// rolling back otherwise.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Tx{Tx: tx, Dialect: db.Dialect}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Tx is a transaction that rebinds '?' placeholders for its dialect.
type Tx struct {
	*sql.Tx
	Dialect Dialect
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, rebind(tx.Dialect, q), args...)
}

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, rebind(tx.Dialect, q), args...)
}

// QueryRow runs a query that returns at most one row, in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, rebind(tx.Dialect, q), args...)
}

// Migrate applies statements in order, each once, recording them under
// component in the schema_migrations table. Statements are only ever
// appended to a component's list, never edited.
func (db *DB) Migrate(ctx context.Context, component string, statements []string) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if db.Dialect == Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7351002)`); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (component, step))`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var done int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = ?`, component).Scan(&done); err != nil {
			return fmt.Errorf("read migrations of %s: %w", component, err)
		}
		for i := done; i < len(statements); i++ {
			if _, err := tx.Exec(ctx, statements[i]); err != nil {
				return fmt.Errorf("migrate %s step %d: %w", component, i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, step) VALUES (?, ?)`, component, i+1); err != nil {
				return err
			}
		}
		return nil
	})
}
