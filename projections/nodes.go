package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// nodesProjection is the "nodes" read model: one row per enrolled compute
// node with its capabilities (table rm_nodes). Health and load are not
// events; queries take them from a NodeHeartbeats.
type nodesProjection struct{}

var _ Projection = nodesProjection{}

const nodesView = "rm_nodes"

var nodeColumns = []string{"node_id", "name", "job_types", "gpu", "slots", "retired", "enrolled_at", "retired_at", "updated_at", "position"}

// Name returns "nodes".
func (nodesProjection) Name() string { return "nodes" }

// Tables returns rm_nodes, keyed by node id. job_types is a
// comma-separated list.
func (nodesProjection) Tables() []Table {
	return []Table{{
		Name: nodesView,
		Columns: []string{
			"node_id TEXT NOT NULL", "name TEXT NOT NULL", "job_types TEXT NOT NULL", "gpu BOOLEAN NOT NULL",
			"slots BIGINT NOT NULL", "retired BOOLEAN NOT NULL", "enrolled_at BIGINT NOT NULL",
			"retired_at BIGINT NOT NULL", "updated_at BIGINT NOT NULL", "position BIGINT NOT NULL",
		},
		PrimaryKey: []string{"node_id"},
	}}
}

// nodeRow is one row of rm_nodes.
type nodeRow struct {
	NodeID, Name, JobTypes string
	GPU                    bool
	Slots                  int64
	Retired                bool
	EnrolledAt, RetiredAt  int64
	UpdatedAt, Position    int64
	dirty                  bool
}

func (n *nodeRow) values(args []any) []any {
	return append(args, n.NodeID, n.Name, n.JobTypes, n.GPU, n.Slots, n.Retired, n.EnrolledAt, n.RetiredAt, n.UpdatedAt, n.Position)
}

func (n *nodeRow) scan(rows interface{ Scan(...any) error }) error {
	return rows.Scan(&n.NodeID, &n.Name, &n.JobTypes, &n.GPU, &n.Slots, &n.Retired, &n.EnrolledAt, &n.RetiredAt, &n.UpdatedAt, &n.Position)
}

// Apply folds node events into rm_nodes.
func (nodesProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	table := t.Name(nodesView)
	nodes := map[domain.NodeID]*nodeRow{}
	var keys []string
	for _, e := range events {
		if id, ok := nodeOf(e.Decoded); ok && nodes[id] == nil {
			nodes[id] = &nodeRow{NodeID: string(id)}
			keys = append(keys, string(id))
		}
	}
	err := lookup(ctx, tx, table, nodeColumns, "node_id", keys, func(rows *sql.Rows) error {
		var n nodeRow
		if err := n.scan(rows); err != nil {
			return err
		}
		nodes[domain.NodeID(n.NodeID)] = &n
		return nil
	})
	if err != nil {
		return err
	}
	var changed []*nodeRow
	for _, e := range events {
		id, ok := nodeOf(e.Decoded)
		if !ok {
			continue
		}
		n := nodes[id]
		if !n.dirty {
			n.dirty = true
			changed = append(changed, n)
		}
		foldNode(n, e)
	}
	w := rowWriter{table: table, columns: nodeColumns, conflict: []string{"node_id"}}
	return w.write(ctx, tx, len(changed), func(i int, args []any) []any { return changed[i].values(args) })
}

func foldNode(n *nodeRow, e Event) {
	at := micros(domain.OccurredAt(e.Decoded))
	switch d := e.Decoded.(type) {
	case domain.NodeEnrolled:
		n.Name, n.JobTypes, n.GPU, n.Slots, n.EnrolledAt = d.Name, joinJobTypes(d.JobTypes), d.GPU, int64(d.Slots), at
	case domain.NodeCapabilitiesChanged:
		n.JobTypes, n.GPU, n.Slots = joinJobTypes(d.JobTypes), d.GPU, int64(d.Slots)
	case domain.NodeRetired:
		n.Retired, n.RetiredAt = true, at
	}
	n.UpdatedAt, n.Position = at, int64(e.Position)
}

func nodeOf(e domain.Event) (domain.NodeID, bool) {
	switch e := e.(type) {
	case domain.NodeEnrolled:
		return e.NodeID, true
	case domain.NodeCapabilitiesChanged:
		return e.NodeID, true
	case domain.NodeRetired:
		return e.NodeID, true
	}
	return "", false
}

func joinJobTypes(ts []domain.JobType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// NodeHeartbeats is the operational state of nodes, which is not in the
// log: the caller (the node API) keeps it.
type NodeHeartbeats interface {
	// NodeStatus returns when the node was last heard from (the zero time
	// if never) and how many jobs it is running.
	NodeStatus(id domain.NodeID) (lastSeen time.Time, load int)
}

// Node is a compute node as the API shows it.
type Node struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	JobTypes   []domain.JobType `json:"job_types"`
	GPU        bool             `json:"gpu"`
	Slots      int              `json:"slots"`
	Retired    bool             `json:"retired"`
	EnrolledAt time.Time        `json:"enrolled_at"`
	RetiredAt  *time.Time       `json:"retired_at,omitempty"`
	// Healthy is true for a node that is not retired and was heard from
	// within domain.NodeHealthyWithin (30 s).
	Healthy    bool       `json:"healthy"`
	Load       int        `json:"load"` // jobs running
	LastSeenAt *time.Time `json:"last_seen_at,omitempty"`
}

// nodesListMax bounds the nodes one Nodes call returns.
const nodesListMax = 10000

// Nodes returns every enrolled node (retired ones too), by id, with its
// health and load from hb as of now. It fails only with a database error.
func (r *Reader) Nodes(ctx context.Context, hb NodeHeartbeats, now time.Time) ([]Node, error) {
	rows, err := r.db.Query(ctx, "SELECT "+strings.Join(nodeColumns, ", ")+" FROM "+nodesView+" ORDER BY node_id LIMIT ?", nodesListMax)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	out := []Node{}
	for rows.Next() {
		var n nodeRow
		if err := n.scan(rows); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = append(out, n.node(hb, now))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

// Node returns node id with its health and load from hb as of now. It
// fails with an error wrapping domain.ErrNodeNotFound for a node never
// enrolled, or a database error.
func (r *Reader) Node(ctx context.Context, id domain.NodeID, hb NodeHeartbeats, now time.Time) (Node, error) {
	var n nodeRow
	err := n.scan(r.db.QueryRow(ctx, "SELECT "+strings.Join(nodeColumns, ", ")+" FROM "+nodesView+" WHERE node_id = ?", string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, fmt.Errorf("%w: %s", domain.ErrNodeNotFound, id)
	}
	if err != nil {
		return Node{}, fmt.Errorf("read node %s: %w", id, err)
	}
	return n.node(hb, now), nil
}

func (n *nodeRow) node(hb NodeHeartbeats, now time.Time) Node {
	out := Node{
		ID: n.NodeID, Name: n.Name, JobTypes: []domain.JobType{}, GPU: n.GPU, Slots: int(n.Slots),
		Retired: n.Retired, EnrolledAt: timeOf(n.EnrolledAt), RetiredAt: optionalTime(n.RetiredAt),
	}
	for _, t := range strings.Split(n.JobTypes, ",") {
		if t != "" {
			out.JobTypes = append(out.JobTypes, domain.JobType(t))
		}
	}
	if hb != nil {
		seen, load := hb.NodeStatus(domain.NodeID(n.NodeID))
		out.Healthy, out.Load = !n.Retired && domain.Healthy(seen, now), load
		if !seen.IsZero() {
			seen = seen.UTC()
			out.LastSeenAt = &seen
		}
	}
	return out
}
