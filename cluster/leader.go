package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rendertrust/rendertrust/domain"
)

// leadersSchema holds each worker role's current epoch. A new leader bumps
// its role's epoch; an effect fenced by Term.Fence reads it FOR SHARE, so
// the bump waits for every effect of the previous term still in flight and
// every later effect of that term sees the new epoch and is refused.
const leadersSchema = `CREATE TABLE IF NOT EXISTS cluster_leaders (
	role   TEXT PRIMARY KEY,
	epoch  BIGINT NOT NULL,
	holder TEXT NOT NULL,
	since  TIMESTAMPTZ NOT NULL
)`

const (
	// DefaultPingInterval is how often a leader checks that its lock's
	// connection is alive; with pingTimeout it bounds how long a leader whose
	// connection dropped keeps believing it leads.
	DefaultPingInterval = time.Second
	pingTimeout         = 2 * time.Second
	// campaignRetryMin and campaignRetryMax bound the backoff of Lead
	// between campaigns that failed (the database unreachable).
	campaignRetryMin = 200 * time.Millisecond
	campaignRetryMax = 3 * time.Second
	// lockNamespace prefixes the names hashed into advisory lock keys.
	lockNamespace = "rendertrust.cluster."
	// tcpKeepalive* make the server notice a vanished leader's connection
	// (and free its lock) within seconds even when no packet says goodbye.
	tcpKeepaliveIdle     = "2"
	tcpKeepaliveInterval = "1"
	tcpKeepaliveCount    = "2"
)

// ErrDeposed: the term this process acted under has ended — another process
// leads the role now, or this one lost its lock. The effect was not applied.
var ErrDeposed = &domain.Error{Code: domain.CodeUnavailable, Message: "this process no longer leads the role"}

// Config configures an Elector.
type Config struct {
	// DSN is the PostgreSQL connection string. Every process of an
	// installation uses the same database: the locks live in it.
	DSN string
	// Holder names this process in cluster_leaders (default host:pid is the
	// caller's choice; it is for operators, not for correctness).
	Holder string
	// PingInterval is DefaultPingInterval when zero.
	PingInterval time.Duration
	// Logger receives leadership changes (slog.Default when nil).
	Logger *slog.Logger
}

// Elector campaigns for roles on one PostgreSQL database.
type Elector struct {
	cfg Config
}

// NewElector returns an Elector; it connects only when campaigning.
func NewElector(cfg Config) *Elector {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Elector{cfg: cfg}
}

// Term is one process's leadership of one role, from winning the lock until
// Resign or the loss of the lock's connection.
type Term struct {
	Role  Role
	Epoch int64

	conn     *pgx.Conn // holds the session advisory lock; only the watcher uses it
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error
	stop     chan struct{}
	watching sync.WaitGroup
}

// Campaign blocks until this process leads role (or ctx ends) and returns
// the term, whose epoch is one more than the previous leader's.
func (e *Elector) Campaign(ctx context.Context, role Role) (*Term, error) {
	conn, err := e.connect(ctx)
	if err != nil {
		return nil, err
	}
	epoch, err := e.win(ctx, conn, role)
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	t := &Term{Role: role, Epoch: epoch, conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	t.watching.Add(1)
	go t.watch(e.cfg.PingInterval)
	e.cfg.Logger.Info("leading", "role", role, "epoch", epoch, "holder", e.cfg.Holder)
	return t, nil
}

func (e *Elector) connect(ctx context.Context) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(e.cfg.DSN)
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalid, "cluster: database URL: %v", err)
	}
	cc.RuntimeParams["tcp_keepalives_idle"] = tcpKeepaliveIdle
	cc.RuntimeParams["tcp_keepalives_interval"] = tcpKeepaliveInterval
	cc.RuntimeParams["tcp_keepalives_count"] = tcpKeepaliveCount
	cc.RuntimeParams["application_name"] = "rendertrust-leader"
	return pgx.ConnectConfig(ctx, cc)
}

// win takes role's lock on conn (waiting for the current leader to go) and
// bumps the role's epoch.
func (e *Elector) win(ctx context.Context, conn *pgx.Conn, role Role) (int64, error) {
	if err := ensureSchema(ctx, conn); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey(string(role))); err != nil {
		return 0, fmt.Errorf("cluster: wait for the %s lock: %w", role, err)
	}
	var epoch int64
	err := conn.QueryRow(ctx, `INSERT INTO cluster_leaders (role, epoch, holder, since) VALUES ($1, 1, $2, now())
		ON CONFLICT (role) DO UPDATE SET epoch = cluster_leaders.epoch + 1, holder = EXCLUDED.holder, since = now()
		RETURNING epoch`, string(role), e.cfg.Holder).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("cluster: start the %s term: %w", role, err)
	}
	return epoch, nil
}

// ensureSchema creates cluster_leaders once: concurrent CREATE TABLE IF NOT
// EXISTS can fail in PostgreSQL, so creators take turns.
func ensureSchema(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cluster: create schema: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("schema")); err != nil {
		return fmt.Errorf("cluster: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, leadersSchema); err != nil {
		return fmt.Errorf("cluster: create schema: %w", err)
	}
	return tx.Commit(ctx)
}

// lockKey is the advisory lock key of name: stable across processes and
// versions, since two versions of the server may run during an upgrade.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(lockNamespace + name))
	return int64(h.Sum64())
}

// watch pings the lock's connection until Resign; the first failure ends
// the term.
func (t *Term) watch(every time.Duration) {
	defer t.watching.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := t.conn.Ping(ctx)
		cancel()
		if err != nil {
			t.end(fmt.Errorf("cluster: the %s lock's connection failed: %w", t.Role, err))
			t.conn.Close(context.Background())
			return
		}
	}
}

func (t *Term) end(err error) {
	t.lostOnce.Do(func() {
		t.lostErr = err
		close(t.lost)
	})
}

// Lost is closed when the term ends: stop acting for the role.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Err says why the term ended (nil while it lasts).
func (t *Term) Err() error {
	select {
	case <-t.lost:
		return t.lostErr
	default:
		return nil
	}
}

// Resign ends the term and frees the lock for a standby.
func (t *Term) Resign() {
	t.end(fmt.Errorf("cluster: resigned the %s role", t.Role))
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	t.watching.Wait()
	if !t.conn.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		t.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(string(t.Role)))
		t.conn.Close(ctx)
	}
}

// RowQuerier is a transaction (or connection) on the installation's
// PostgreSQL database: *sql.Tx, or an adapter of pgx.Tx.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Fence checks, inside the transaction that applies an effect of the role,
// that this term still leads it, and holds the role's epoch row so no new
// term can start before the transaction ends. It returns ErrDeposed (wrapped)
// when another term has started or this one was lost.
func (t *Term) Fence(ctx context.Context, tx RowQuerier) error {
	if err := t.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrDeposed, err)
	}
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM cluster_leaders WHERE role = $1 FOR SHARE`, string(t.Role)).Scan(&epoch)
	if err != nil {
		return fmt.Errorf("cluster: fence the %s effect: %w", t.Role, err)
	}
	if epoch != t.Epoch {
		return fmt.Errorf("%w: %s epoch %d replaced by %d", ErrDeposed, t.Role, t.Epoch, epoch)
	}
	return nil
}

// Lead runs work for as long as ctx lasts, whenever this process leads
// role: it campaigns, runs work with a context canceled when the term is
// lost, and campaigns again. A campaign that fails (database unreachable) is
// retried with backoff. Lead returns when ctx ends.
func (e *Elector) Lead(ctx context.Context, role Role, work func(ctx context.Context, t *Term) error) {
	backoff := campaignRetryMin
	for ctx.Err() == nil {
		t, err := e.Campaign(ctx, role)
		if err != nil {
			if ctx.Err() == nil {
				e.cfg.Logger.Warn("campaign failed", "role", role, "err", err, "retry_in", backoff)
				sleep(ctx, backoff)
				backoff = min(2*backoff, campaignRetryMax)
			}
			continue
		}
		backoff = campaignRetryMin
		e.serve(ctx, t, work)
	}
}

// serve runs work under t until work returns, t is lost or ctx ends.
func (e *Elector) serve(ctx context.Context, t *Term, work func(ctx context.Context, t *Term) error) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- work(wctx, t) }()
	select {
	case <-t.Lost():
		cancel()
		<-done
		e.cfg.Logger.Warn("lost leadership", "term", termName(t), "err", t.Err())
	case err := <-done:
		cancel()
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("leader's work stopped", "term", termName(t), "err", err)
		}
	case <-ctx.Done():
		cancel()
		<-done
	}
	t.Resign()
}

func termName(t *Term) string { return string(t.Role) + "#" + strconv.FormatInt(t.Epoch, 10) }

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// IsDeposed reports whether err says a term ended under an effect.
func IsDeposed(err error) bool { return errors.Is(err, ErrDeposed) }
