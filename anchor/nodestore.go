package anchor

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// nodesPerQueryMax bounds the nodes one SQL statement reads or writes (two
// or three parameters each), below SQLite's and PostgreSQL's parameter
// limits.
const nodesPerQueryMax = 300

var _ merkle.NodeStore = (*NodeStore)(nil)

// NodeStore is the merkle.NodeStore of the anchor_nodes table, on SQLite or
// PostgreSQL. It is safe for concurrent use.
type NodeStore struct {
	db *sqldb.DB
}

// NewNodeStore returns the node store in db, whose tables Migrate created.
func NewNodeStore(db *sqldb.DB) *NodeStore { return &NodeStore{db: db} }

// GetNodes returns the hashes of ids in order. It returns an error wrapping
// merkle.ErrNodeNotFound if any is not stored, or the database's error.
func (s *NodeStore) GetNodes(ctx context.Context, ids []merkle.NodeID) ([][merkle.HashSize]byte, error) {
	if len(ids) == 0 {
		return nil, ctx.Err()
	}
	found := make(map[merkle.NodeID][merkle.HashSize]byte, len(ids))
	for start := 0; start < len(ids); start += nodesPerQueryMax {
		if err := s.read(ctx, s.db, ids[start:min(start+nodesPerQueryMax, len(ids))], found); err != nil {
			return nil, err
		}
	}
	hashes := make([][merkle.HashSize]byte, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("get node %s: %w", id, merkle.ErrNodeNotFound)
		}
		hashes[i] = h
	}
	return hashes, nil
}

// sqlQuerier is a *sqldb.DB or a *sqldb.Tx.
type sqlQuerier interface {
	Exec(ctx context.Context, q string, args ...any) (sql.Result, error)
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

// read adds the stored hashes among ids to found.
func (s *NodeStore) read(ctx context.Context, q sqlQuerier, ids []merkle.NodeID, found map[merkle.NodeID][merkle.HashSize]byte) error {
	var b strings.Builder
	b.WriteString(`SELECT level, idx, hash FROM anchor_nodes WHERE `)
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(level = ? AND idx = ?)")
		args = append(args, int16(id.Level), int64(id.Index))
	}
	rows, err := q.Query(ctx, b.String(), args...)
	if err != nil {
		return fmt.Errorf("read %d tree nodes: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var level int16
		var index int64
		var hash []byte
		if err := rows.Scan(&level, &index, &hash); err != nil {
			return fmt.Errorf("read tree node: %w", err)
		}
		id := merkle.NodeID{Level: uint8(level), Index: uint64(index)}
		if len(hash) != merkle.HashSize {
			return fmt.Errorf("tree node %s has a %d-byte hash", id, len(hash))
		}
		found[id] = [merkle.HashSize]byte(hash)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read tree nodes: %w", err)
	}
	return nil
}

// PutNodes stores nodes in one transaction. A node already stored with the
// same hash is fine; with another hash PutNodes stores nothing and returns
// an error wrapping merkle.ErrNodeConflict. Otherwise it returns the
// database's error, having stored nothing.
func (s *NodeStore) PutNodes(ctx context.Context, nodes []merkle.Node) error {
	if len(nodes) == 0 {
		return ctx.Err()
	}
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for start := 0; start < len(nodes); start += nodesPerQueryMax {
			if err := s.insert(ctx, tx, nodes[start:min(start+nodesPerQueryMax, len(nodes))]); err != nil {
				return err
			}
		}
		return nil
	})
}

// insert writes nodes that are not stored yet and, if some were, checks
// that they were stored with the same hashes.
func (s *NodeStore) insert(ctx context.Context, tx *sqldb.Tx, nodes []merkle.Node) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO anchor_nodes (level, idx, hash) VALUES `)
	args := make([]any, 0, 3*len(nodes))
	for i, n := range nodes {
		if n.ID.Level > merkle.LevelMax {
			return fmt.Errorf("put node %s: level above %d", n.ID, merkle.LevelMax)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, int16(n.ID.Level), int64(n.ID.Index), n.Hash[:])
	}
	b.WriteString(` ON CONFLICT (level, idx) DO NOTHING`)
	res, err := tx.Exec(ctx, b.String(), args...)
	if err != nil {
		return fmt.Errorf("write %d tree nodes: %w", len(nodes), err)
	}
	if n, err := res.RowsAffected(); err == nil && n == int64(len(nodes)) {
		return nil
	}
	// Some were stored already (a retried append): they must not differ.
	ids := make([]merkle.NodeID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	stored := make(map[merkle.NodeID][merkle.HashSize]byte, len(nodes))
	if err := s.read(ctx, tx, ids, stored); err != nil {
		return err
	}
	for _, n := range nodes {
		if stored[n.ID] != n.Hash {
			return fmt.Errorf("put node %s: %w", n.ID, merkle.ErrNodeConflict)
		}
	}
	return nil
}
