// Package check is the full integrity check of a RenderTrust installation
// (`rendertrust check`). It reads everything once more and reports each
// thing that is not as the log says it must be, naming its log position and
// entry id:
//
//   - entry: every event reads back intact — its stored leaf hash is
//     SHA-256(0x00 ‖ its bytes) and its row matches its envelope — and no
//     position is missing;
//   - leaf_index, anchor_root, root_on_chain: the audit log recorded each
//     entry with that hash, the entries as stored reproduce the Merkle root
//     of every anchor, and the chain holds that root (anchor.Service.Audit);
//   - tree_node: every stored node of the Merkle tree, from which proofs are
//     served, is the hash of its children as recomputed from the entries;
//   - postings: every money event's postings are a balanced double-entry
//     set (they sum to zero) and move the amount the event states;
//   - stream, decode: every event of a known type decodes and is in the
//     stream the domain writes it to;
//   - projection: every read model, row for row and column for column,
//     equals a replay of the log up to the same position: each projection's
//     own Apply is run into a fresh SQLite database and the live tables are
//     read in one snapshot with their checkpoints.
//
// It is read-only except for creating the audit log's and the read models'
// bookkeeping tables when they are missing, and it tolerates a running
// server: lag (entries the audit log or a projection has not reached yet)
// is not a finding. It prints nothing: Run returns a Report (JSON-ready) and
// reports its progress through Config.Progress; the command draws both.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
)

// FindingsMax bounds the findings one report lists; more are counted in
// Report.FindingsOmitted.
const FindingsMax = 1000

// The checks a finding can name (Finding.Check). Those the audit log's own
// audit and the proofs also name share their names.
const (
	Entry       = "entry"
	LeafIndex   = anchor.AuditLeafIndex
	AnchorRoot  = anchor.AuditAnchorRoot
	RootOnChain = anchor.AuditRootOnChain
	TreeNode    = "tree_node"
	Postings    = "postings"
	Stream      = "stream"
	Decode      = "decode"
	Projection  = "projection"
)

// Store is the event store as the check reads it; eventstore.Store
// implements it.
type Store interface {
	ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error)
	Head(ctx context.Context) (uint64, error)
	Subscribe(ctx context.Context, from uint64) *eventstore.Subscription
}

// Config says what to check.
type Config struct {
	// Store is the event store. Required.
	Store Store
	// DB is the state database: the audit log's tables and the read
	// models. Required.
	DB *sqldb.DB
	// Chain is the chain the anchors are on; nil skips root_on_chain.
	Chain proof.Chain
	// Projections are the read models to compare; nil means
	// projections.All().
	Projections []projections.Projection
	// TempDir holds the replay database while the check runs; "" means
	// os.TempDir().
	TempDir string
	// Progress, when set, is called as each of the three steps advances,
	// with the items it has done so far: 0 when it begins, step.Total when
	// it ends.
	Progress func(step Step, done uint64)
}

// Finding is one thing the check found wrong.
type Finding struct {
	Check      string `json:"check"`
	Position   uint64 `json:"position,omitempty"`
	EntryID    string `json:"entry_id,omitempty"`
	TreeSize   uint64 `json:"tree_size,omitempty"`
	Projection string `json:"projection,omitempty"`
	Table      string `json:"table,omitempty"`
	Key        string `json:"key,omitempty"` // a row's primary key ("col=value") or a Merkle node ("node level/index")
	Detail     string `json:"detail"`
}

// Report is the outcome of Run.
type Report struct {
	Head            uint64              `json:"head"`            // the log's head when the check began
	Events          uint64              `json:"events"`          // events that read back intact
	MoneyEvents     uint64              `json:"money_events"`    // of which money events, postings checked
	Logged          uint64              `json:"logged"`          // entries in the audit log
	AnchorsChecked  int                 `json:"anchors_checked"` // anchor records whose root was reproduced
	ChainChecked    bool                `json:"chain_checked"`   // roots were compared with the chain
	TreeNodes       uint64              `json:"tree_nodes"`      // stored Merkle nodes recomputed
	Projections     []ProjectionCheck   `json:"projections"`
	Findings        []Finding           `json:"findings"`
	FindingsOmitted int                 `json:"findings_omitted,omitempty"`
	Notes           []string            `json:"notes,omitempty"`
	Duration        time.Duration       `json:"duration_ns"`
	Phases          []Phase             `json:"phases"` // how long each part took
	seen            map[findingKey]bool // dedupe across phases
}

// Phase is how long one part of the check took.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// ProjectionCheck says how one read model was compared.
type ProjectionCheck struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"` // the checkpoint compared at
	Rows     uint64 `json:"rows"`     // rows compared (live and replay)
	Skipped  string `json:"skipped,omitempty"`
}

// OK reports whether the check found nothing wrong.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.FindingsOmitted == 0 }

type findingKey struct {
	check         string
	position      uint64
	treeSize      uint64
	table, rowKey string
}

// add records f once, up to FindingsMax.
func (r *Report) add(f Finding) {
	k := findingKey{f.Check, f.Position, f.TreeSize, f.Table, f.Key}
	if r.seen[k] {
		return
	}
	r.seen[k] = true
	if len(r.Findings) >= FindingsMax {
		r.FindingsOmitted++
		return
	}
	r.Findings = append(r.Findings, f)
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Run checks the installation cfg names and returns what it found; a
// finding is not an error. It returns an error only when it cannot check:
// the database or the log cannot be read (other than a corrupt entry,
// which is a finding), the chain cannot be asked, or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	if cfg.Projections == nil {
		cfg.Projections = projections.All()
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if err := anchor.Migrate(ctx, cfg.DB); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	head, err := cfg.Store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: read head: %w", err)
	}
	r := &Report{Head: head, ChainChecked: cfg.Chain != nil, Findings: []Finding{}, seen: map[findingKey]bool{}}
	c := &checker{cfg: cfg, r: r, head: head, anchors: map[uint64]eventstore.RecordedEvent{}}
	if err := c.phase(ctx, "audit log and anchors", c.auditLog); err != nil {
		return nil, err
	}
	statuses, err := projections.ReadStatus(ctx, cfg.DB, cfg.Store, cfg.Projections)
	if errors.Is(err, eventstore.ErrCorrupt) {
		// Status reads the entry after each checkpoint, for the lag; a
		// damaged one is reported by the pass, and the read models are
		// not compared.
		r.note("the read models were not compared: %v", err)
		statuses, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check: read the projections' checkpoints: %w", err)
	}
	if c.rep, err = openReplay(ctx, cfg.TempDir, cfg.Projections, statuses); err != nil {
		return nil, err
	}
	defer c.rep.close()
	if err := c.phase(ctx, "entries, postings, tree, replay", c.events); err != nil {
		return nil, err
	}
	if err := c.phase(ctx, "read models", c.projections); err != nil {
		return nil, err
	}
	c.dropShadowedNodes(ctx)
	c.nameAnchors()
	c.noteOtherChains()
	r.Duration = time.Since(start)
	return r, nil
}

// noteOtherChains notes the anchors on another chain than the endpoint's,
// whose roots the audit could not compare with a chain.
func (c *checker) noteOtherChains() {
	if c.cfg.Chain == nil {
		return
	}
	other := map[uint64]int{}
	for _, rec := range c.anchors {
		var a domain.AnchorRecorded
		if json.Unmarshal(rec.Data, &a) == nil && a.ChainID != c.cfg.Chain.ChainID() {
			other[a.ChainID]++
		}
	}
	for id, n := range other {
		c.r.note("%d anchored sizes are on chain %d, not on the endpoint's chain %d: their roots were not compared with a chain", n, id, c.cfg.Chain.ChainID())
	}
}

// phase runs f and records how long it took.
func (c *checker) phase(ctx context.Context, name string, f func(context.Context) error) error {
	start := time.Now()
	err := f(ctx)
	c.r.Phases = append(c.r.Phases, Phase{Name: name, Duration: time.Since(start)})
	return err
}

// checker is one run of Run.
type checker struct {
	cfg     Config
	r       *Report
	head    uint64
	rep     *replayDB
	broken  []uint64 // positions whose entry is damaged: entry or leaf_index findings
	nodes   []nodeFinding
	anchors map[uint64]eventstore.RecordedEvent // anchor records by tree size
}

// nameAnchors gives each finding about an anchor the position and entry of
// its anchor record.
func (c *checker) nameAnchors() {
	for i, f := range c.r.Findings {
		if rec, ok := c.anchors[f.TreeSize]; ok && f.TreeSize != 0 && f.Position == 0 {
			c.r.Findings[i].Position, c.r.Findings[i].EntryID = rec.Position, rec.ID
		}
	}
}
