package cluster

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// What the API processes of an installation must share for a client to use
// any of them: each must accept the access tokens every other one signs,
// and serve the results every other one stored. Each API process records
// its signing key, the keys it accepts and its result store in a row of
// api_processes when it starts, and a process whose configuration does not
// fit a live one's is refused before it serves (Join).
//
// Live = the row was refreshed within processLiveFor. A row refreshed every
// ProcessRefreshInterval costs one single-row update per API process every
// few seconds, and a process that died without deleting its row blocks an
// incompatible start for processLiveFor at most. A row tied to a session
// (an advisory lock per process) would be exact but cost a held connection
// per process; the check is a guard at start, not a fence, so the bounded
// staleness is enough.
const processesSchema = `CREATE TABLE IF NOT EXISTS api_processes (
	process_id  TEXT PRIMARY KEY,
	holder      TEXT NOT NULL,
	signing_key TEXT NOT NULL,
	accepts     TEXT NOT NULL,
	results     TEXT NOT NULL,
	seen_at     TIMESTAMPTZ NOT NULL
)`

const (
	// ProcessRefreshInterval is how often an API process refreshes its row.
	ProcessRefreshInterval = 5 * time.Second
	// processLiveFor is how long a row counts as a live process after its
	// last refresh.
	processLiveFor = 3 * ProcessRefreshInterval
	// processForgetAfter is when a dead process's row is deleted.
	processForgetAfter = time.Hour
	// processJoinLock serializes joins, so two processes starting at once
	// see each other.
	processJoinLock = 7351016
)

// The refusals of Join. Their messages are stable and name the flag to fix.
var (
	// ErrTokensRefused: a live API process would refuse the tokens this
	// one signs.
	ErrTokensRefused = &domain.Error{Code: domain.CodeInvalid,
		Message: "--jwt-key-file: a live API process does not accept this process's signing key; give every process its public key (--jwt-verify-key-files) and restart them first"}
	// ErrTokensNotAccepted: this process would refuse the tokens a live
	// API process signs.
	ErrTokensNotAccepted = &domain.Error{Code: domain.CodeInvalid,
		Message: "--jwt-key-file, --jwt-verify-key-files: this process does not accept the signing key of a live API process; use the same --jwt-key-file or add that key's public half to --jwt-verify-key-files"}
	// ErrResultsNotShared: a live API process stores results elsewhere.
	ErrResultsNotShared = &domain.Error{Code: domain.CodeInvalid,
		Message: "--results-dir, --s3-bucket, --s3-endpoint: a live API process stores job results in another store; give every API process the same bucket or the same shared directory"}
)

// ProcessConfig is what an API process offers the others.
type ProcessConfig struct {
	// Holder names the process in refusals (host:pid).
	Holder string
	// SigningKey is the key id (http.KeyID) of the key it signs tokens with.
	SigningKey string
	// Accepts are the key ids it verifies tokens of, SigningKey among them.
	Accepts []string
	// Results identifies its result store: the same string in two
	// processes means the same bucket or directory.
	Results string
}

// Process is an API process's row in api_processes.
type Process struct {
	db  *sqldb.DB
	id  string
	cfg ProcessConfig
	log *slog.Logger
}

// Join checks c against every live API process on db (PostgreSQL) and, if
// it fits, records it. It returns ErrTokensRefused, ErrTokensNotAccepted or
// ErrResultsNotShared (wrapped, with the process that does not fit) when c
// does not fit. A nil log is slog.Default().
func Join(ctx context.Context, db *sqldb.DB, c ProcessConfig, log *slog.Logger) (*Process, error) {
	if db == nil || db.Dialect != sqldb.Postgres {
		return nil, errors.New("cluster: the API process registry lives in PostgreSQL")
	}
	if err := db.Migrate(ctx, "cluster_api_processes", []string{processesSchema}); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Process{db: db, id: rand.Text(), cfg: c, log: log}
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, processJoinLock); err != nil {
			return err
		}
		live, err := liveProcesses(ctx, tx)
		if err != nil {
			return err
		}
		for _, other := range live {
			if err := fits(c, other); err != nil {
				return err
			}
		}
		return p.write(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// fits returns why c cannot serve beside other, or nil.
func fits(c, other ProcessConfig) error {
	switch {
	case !slices.Contains(other.Accepts, c.SigningKey):
		return fmt.Errorf("%w (process %s accepts keys %s; this one signs with %s)", ErrTokensRefused, other.Holder, other.Accepts, c.SigningKey)
	case !slices.Contains(c.Accepts, other.SigningKey):
		return fmt.Errorf("%w (process %s signs with key %s; this one accepts %s)", ErrTokensNotAccepted, other.Holder, other.SigningKey, c.Accepts)
	case c.Results != other.Results:
		return fmt.Errorf("%w (process %s: %s; this one: %s)", ErrResultsNotShared, other.Holder, other.Results, c.Results)
	}
	return nil
}

// liveProcesses reads the processes refreshed within processLiveFor, and
// forgets the ones dead for processForgetAfter.
func liveProcesses(ctx context.Context, tx *sqldb.Tx) ([]ProcessConfig, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM api_processes WHERE seen_at < now() - make_interval(secs => ?)`, processForgetAfter.Seconds()); err != nil {
		return nil, fmt.Errorf("cluster: forget dead api processes: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT holder, signing_key, accepts, results FROM api_processes WHERE seen_at > now() - make_interval(secs => ?)`, processLiveFor.Seconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: read api processes: %w", err)
	}
	defer rows.Close()
	var out []ProcessConfig
	for rows.Next() {
		var c ProcessConfig
		var accepts string
		if err := rows.Scan(&c.Holder, &c.SigningKey, &accepts, &c.Results); err != nil {
			return nil, fmt.Errorf("cluster: read api processes: %w", err)
		}
		c.Accepts = strings.Fields(accepts)
		out = append(out, c)
	}
	return out, rows.Err()
}

// write records or refreshes the process's row.
func (p *Process) write(ctx context.Context, tx interface {
	Exec(context.Context, string, ...any) (sql.Result, error)
}) error {
	_, err := tx.Exec(ctx, `INSERT INTO api_processes (process_id, holder, signing_key, accepts, results, seen_at)
		VALUES (?, ?, ?, ?, ?, now()) ON CONFLICT (process_id) DO UPDATE SET seen_at = now()`,
		p.id, p.cfg.Holder, p.cfg.SigningKey, strings.Join(p.cfg.Accepts, " "), p.cfg.Results)
	if err != nil {
		return fmt.Errorf("cluster: record api process: %w", err)
	}
	return nil
}

// Run refreshes the process's row every ProcessRefreshInterval until ctx
// ends, then deletes it (a clean stop leaves nothing for the next start
// to check against). Failures are logged and retried. It returns ctx's
// error.
func (p *Process) Run(ctx context.Context) error {
	tick := time.NewTicker(ProcessRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.leave()
			return ctx.Err()
		case <-tick.C:
		}
		if err := p.write(ctx, p.db); err != nil && ctx.Err() == nil {
			p.log.Warn("api process registry: retrying", "err", err)
		}
	}
}

// processLeaveTimeout bounds deleting the row at a stop.
const processLeaveTimeout = 5 * time.Second

func (p *Process) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), processLeaveTimeout)
	defer cancel()
	if _, err := p.db.Exec(ctx, `DELETE FROM api_processes WHERE process_id = ?`, p.id); err != nil {
		p.log.Warn("api process registry: the row stays until it ages out", "err", err)
	}
}
