package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Shared node liveness. A node heartbeats whichever API process its
// request reaches; every process must know it is alive (the dispatcher's
// leader to give it work, every API process to accept submissions for its
// job types). Heartbeats are operational state, not events, so they go to
// one PostgreSQL table, not to the log.
//
// Write cost: 10,000 nodes heartbeating every 10 s are 1,000 heartbeats a
// second. Each process buffers them and writes its buffer once a second in
// one multi-row upsert (so at most one row write per node per second
// whatever the node's rate), and the table has no index but its primary
// key, so every update is a HOT update of a ~60-byte row: about 1,000 row
// updates and well under 1 MB of WAL a second for the whole installation,
// in one statement per process per second. The log would instead keep
// 86 million events a day forever, hashed into the audit tree, read by
// every projection and anchored.
const heartbeatsSchema = `CREATE TABLE IF NOT EXISTS node_heartbeats (
	node_id    TEXT PRIMARY KEY,
	seen_at    TIMESTAMPTZ NOT NULL,
	written_at TIMESTAMPTZ NOT NULL
)`

const (
	// HeartbeatFlushInterval is how often a process writes the heartbeats
	// it received and reads the ones the others wrote.
	HeartbeatFlushInterval = time.Second
	// heartbeatReadSlack re-reads rows written this long before the last
	// read: a row's written_at is its statement's start, which may precede
	// its commit (and so the previous read) by a little.
	heartbeatReadSlack = 2 * time.Second
	// heartbeatRowsMax bounds the rows of one upsert statement.
	heartbeatRowsMax = 1000
)

// Heartbeats shares node heartbeats between the processes of an
// installation through the node_heartbeats table (PostgreSQL).
type Heartbeats struct {
	db    *sqldb.DB
	heard func(node domain.NodeID, at time.Time)
	log   *slog.Logger

	mu       sync.Mutex
	pending  map[domain.NodeID]time.Time // received, not written yet
	readFrom time.Time                   // the database's clock at the last read
}

// NewHeartbeats creates the table if needed and returns Heartbeats that
// report every heartbeat any process wrote to heard (the dispatcher's
// Registry.Heard). A nil log is slog.Default().
func NewHeartbeats(ctx context.Context, db *sqldb.DB, heard func(domain.NodeID, time.Time), log *slog.Logger) (*Heartbeats, error) {
	if db == nil || db.Dialect != sqldb.Postgres {
		return nil, errors.New("cluster: shared heartbeats live in PostgreSQL")
	}
	if err := db.Migrate(ctx, "cluster_heartbeats", []string{heartbeatsSchema}); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Heartbeats{db: db, heard: heard, log: log, pending: map[domain.NodeID]time.Time{}}, nil
}

// Record queues a heartbeat of node heard at at, for the next write.
func (h *Heartbeats) Record(node domain.NodeID, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at.After(h.pending[node]) {
		h.pending[node] = at
	}
}

// Run writes and reads heartbeats every HeartbeatFlushInterval until ctx
// ends; failures (the database away) are logged and the heartbeats kept
// for the next round. It returns ctx's error.
func (h *Heartbeats) Run(ctx context.Context) error {
	tick := time.NewTicker(HeartbeatFlushInterval)
	defer tick.Stop()
	for {
		if err := h.Sync(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("shared heartbeats: retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Sync writes the queued heartbeats, then reports the ones written since
// the last Sync (by any process) to heard.
func (h *Heartbeats) Sync(ctx context.Context) error {
	if err := h.flush(ctx); err != nil {
		return err
	}
	return h.read(ctx)
}

// flush writes the queued heartbeats, in node order (two processes
// upserting the same nodes lock them in the same order).
func (h *Heartbeats) flush(ctx context.Context) error {
	h.mu.Lock()
	batch := h.pending
	h.pending = map[domain.NodeID]time.Time{}
	h.mu.Unlock()
	nodes := make([]domain.NodeID, 0, len(batch))
	for n := range batch {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for chunk := range slices.Chunk(nodes, heartbeatRowsMax) {
		if err := h.upsert(ctx, chunk, batch); err != nil {
			h.requeue(batch)
			return err
		}
	}
	return nil
}

func (h *Heartbeats) upsert(ctx context.Context, nodes []domain.NodeID, at map[domain.NodeID]time.Time) error {
	args := make([]any, 0, 2*len(nodes))
	for _, n := range nodes {
		args = append(args, string(n), at[n].UTC())
	}
	q := `INSERT INTO node_heartbeats (node_id, seen_at, written_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, now()), ", len(nodes)), ", ") +
		` ON CONFLICT (node_id) DO UPDATE SET seen_at = GREATEST(node_heartbeats.seen_at, EXCLUDED.seen_at), written_at = now()`
	if _, err := h.db.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("cluster: write %d heartbeats: %w", len(nodes), err)
	}
	return nil
}

// requeue puts back heartbeats that could not be written, unless newer ones
// came meanwhile.
func (h *Heartbeats) requeue(batch map[domain.NodeID]time.Time) {
	for n, at := range batch {
		h.Record(n, at)
	}
}

// read reports the heartbeats written since the last read (less the slack).
func (h *Heartbeats) read(ctx context.Context) error {
	h.mu.Lock()
	from := h.readFrom.Add(-heartbeatReadSlack)
	h.mu.Unlock()
	var now time.Time
	if err := h.db.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return fmt.Errorf("cluster: read heartbeats: %w", err)
	}
	rows, err := h.db.Query(ctx, `SELECT node_id, seen_at FROM node_heartbeats WHERE written_at > ?`, from)
	if err != nil {
		return fmt.Errorf("cluster: read heartbeats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var node string
		var at time.Time
		if err := rows.Scan(&node, &at); err != nil {
			return fmt.Errorf("cluster: read heartbeats: %w", err)
		}
		h.heard(domain.NodeID(node), at)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: read heartbeats: %w", err)
	}
	h.mu.Lock()
	h.readFrom = now
	h.mu.Unlock()
	return nil
}
