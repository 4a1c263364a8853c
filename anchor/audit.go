package anchor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Limits of an audit.
const (
	// auditPageEvents is how many events and leaf rows an audit reads at a
	// time.
	auditPageEvents = 1000
	// auditProblemsMax bounds the problems one report lists.
	auditProblemsMax = 100
	// auditRecordsPage is how many anchor records an audit reads at a time.
	auditRecordsPage = 1000
)

// The checks an audit reports problems for.
const (
	AuditEntryStored = CheckEntryStored       // the event store holds an intact entry at every logged position
	AuditLeafIndex   = proof.CheckLeafIndex   // each entry is the one the log recorded at its position
	AuditAnchorRoot  = "anchor_root"          // the entries reproduce the root of every anchor record
	AuditRootOnChain = proof.CheckRootOnChain // the chain holds that root for the anchor's size
)

// AuditReport is the outcome of Service.Audit.
type AuditReport struct {
	// Verified is true when no problem was found.
	Verified bool `json:"verified"`
	// Events is how many events the event store holds; Logged how many
	// the audit log recorded.
	Events uint64 `json:"events"`
	Logged uint64 `json:"logged"`
	// AnchorsChecked counts the anchor records checked.
	AnchorsChecked int `json:"anchors_checked"`
	// Problems lists what broke, first position first, at most
	// auditProblemsMax of them (Truncated says more were found).
	Problems  []AuditProblem `json:"problems,omitempty"`
	Truncated bool           `json:"truncated,omitempty"`
}

// AuditProblem is one thing an audit found broken.
type AuditProblem struct {
	Check    string `json:"check"`
	Position uint64 `json:"position,omitempty"`
	TreeSize uint64 `json:"tree_size,omitempty"`
	Detail   string `json:"detail"`
}

func (r *AuditReport) add(p AuditProblem) {
	r.Verified = false
	if len(r.Problems) >= auditProblemsMax {
		r.Truncated = true
		return
	}
	r.Problems = append(r.Problems, p)
}

// Audit reads the whole event store and checks it against the audit log
// and the chain: every entry is intact and is the one logged at its
// position, and the entries as stored reproduce every anchored root, which
// the chain holds. It is the consistency check of the log as it is stored
// now against everything ever anchored: a changed byte, a deleted, moved
// or replaced entry shows as problems naming positions and anchors. It
// costs one pass over the log (SHA-256 of every entry, O(log n) memory);
// it is meant for `rendertrust audit`, not for a request path. Without a
// chain configured it skips the root_on_chain check. It returns the
// database's or the chain's error.
func (s *Service) Audit(ctx context.Context) (*AuditReport, error) {
	a := &auditor{s: s, report: &AuditReport{Verified: true}, rng: merkle.RangeFactory.NewEmptyRange(0)}
	if err := a.loadRecords(ctx); err != nil {
		return nil, err
	}
	if err := a.walk(ctx); err != nil {
		return nil, err
	}
	if err := a.finish(ctx); err != nil {
		return nil, err
	}
	return a.report, nil
}

// auditor holds one audit's progress.
type auditor struct {
	s       *Service
	report  *AuditReport
	records []*record // by tree size, then position
	next    int       // first record not checked yet
	rng     *compact.Range
	broken  uint64 // first position whose entry could not be hashed; roots from there on cannot be reproduced
}

func (a *auditor) loadRecords(ctx context.Context) error {
	var after uint64
	for {
		page, err := recordsAfter(ctx, a.s.db, after, auditRecordsPage)
		if err != nil {
			return err
		}
		a.records = append(a.records, page...)
		if len(page) < auditRecordsPage {
			break
		}
		after = page[len(page)-1].Position
	}
	slices.SortFunc(a.records, func(x, y *record) int {
		return cmp.Or(cmp.Compare(x.TreeSize, y.TreeSize), cmp.Compare(x.Position, y.Position))
	})
	return nil
}

// walk reads the event store and the leaf index page by page in step.
func (a *auditor) walk(ctx context.Context) error {
	pos := uint64(1)
	for {
		events, err := a.s.events.ReadAll(ctx, pos, auditPageEvents)
		var corrupt *eventstore.CorruptionError
		if errors.As(err, &corrupt) && corrupt.Position >= pos {
			// Check the entries before the broken one, note it, and go on
			// after it: later entries may still be checked.
			if corrupt.Position > pos {
				if events, err = a.s.events.ReadAll(ctx, pos, int(corrupt.Position-pos)); err != nil {
					return fmt.Errorf("audit: read events from %d: %w", pos, err)
				}
				if err := a.compare(ctx, pos, events); err != nil {
					return err
				}
			}
			a.entryBroken(corrupt.Position, corrupt.Reason)
			pos = corrupt.Position + 1
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: read events from %d: %w", pos, err)
		}
		if len(events) == 0 {
			a.report.Events = pos - 1
			return nil
		}
		if err := a.compare(ctx, pos, events); err != nil {
			return err
		}
		pos = events[len(events)-1].Position + 1
	}
}

// entryBroken notes an entry the event store cannot return intact.
func (a *auditor) entryBroken(position uint64, reason string) {
	a.report.add(AuditProblem{Check: AuditEntryStored, Position: position, Detail: reason})
	if a.broken == 0 {
		a.broken = position
	}
}

// compare checks events, read from position from on, against the leaf
// index and feeds the tree.
func (a *auditor) compare(ctx context.Context, from uint64, events []eventstore.RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	logged, err := leavesFrom(ctx, a.s.db, from, len(events))
	if err != nil {
		return err
	}
	byPos := make(map[uint64]*leaf, len(logged))
	for _, l := range logged {
		byPos[l.Position] = l
	}
	for _, e := range events {
		if err := a.check(ctx, e, byPos[e.Position]); err != nil {
			return err
		}
	}
	return nil
}

// check compares one entry with its leaf row and appends it to the range.
func (a *auditor) check(ctx context.Context, e eventstore.RecordedEvent, lf *leaf) error {
	hash := merkle.HashLeaf(e.Bytes)
	switch {
	case lf == nil:
		a.report.add(AuditProblem{Check: AuditLeafIndex, Position: e.Position, Detail: fmt.Sprintf("event %s is not in the audit log (yet)", e.ID)})
	case lf.EventID != e.ID:
		detail := fmt.Sprintf("the event store holds event %s here, the audit log recorded %s", e.ID, lf.EventID)
		if moved, err := leafByID(ctx, a.s.db, e.ID); err == nil {
			detail += fmt.Sprintf(" (event %s was logged at position %d: entries reordered or shifted)", e.ID, moved.Position)
		}
		a.report.add(AuditProblem{Check: AuditLeafIndex, Position: e.Position, Detail: detail})
	case lf.Hash != hash:
		a.report.add(AuditProblem{Check: AuditLeafIndex, Position: e.Position, Detail: fmt.Sprintf("entry %s changed: its bytes hash to %x, the audit log recorded %x", e.ID, hash, lf.Hash)})
	}
	if a.broken != 0 {
		return nil
	}
	if a.rng.End() != e.Position-1 {
		panic(fmt.Sprintf("anchor: audit range at %d, entry at %d", a.rng.End(), e.Position))
	}
	if err := a.rng.Append(hash[:], nil); err != nil {
		panic(fmt.Sprintf("anchor: audit range: %v", err))
	}
	return a.checkRecords(ctx)
}

// checkRecords checks the anchor records whose size the range reached.
func (a *auditor) checkRecords(ctx context.Context) error {
	for a.next < len(a.records) && a.records[a.next].TreeSize <= a.rng.End() {
		r := a.records[a.next]
		a.next++
		if r.TreeSize < a.rng.End() {
			continue // below the range's start: cannot happen, sizes are sorted
		}
		root, err := a.rng.GetRootHash(nil)
		if err != nil {
			panic(fmt.Sprintf("anchor: audit root: %v", err))
		}
		if err := a.checkRecord(ctx, r, [merkle.HashSize]byte(root)); err != nil {
			return err
		}
	}
	return nil
}

// checkRecord compares the root the entries give at r's size with r's root
// and with the chain's.
func (a *auditor) checkRecord(ctx context.Context, r *record, root [merkle.HashSize]byte) error {
	a.report.AnchorsChecked++
	if root != r.Root {
		a.report.add(AuditProblem{Check: AuditAnchorRoot, TreeSize: r.TreeSize, Detail: fmt.Sprintf(
			"the stored entries give root %x at size %d; the anchor recorded at position %d is %x: the log was changed after it was anchored",
			root, r.TreeSize, r.Position, r.Root)})
	}
	if a.s.cfg.Chain == nil || a.s.cfg.Chain.ChainID() != r.Anchor.ChainID {
		return nil
	}
	onChain, err := a.s.cfg.Chain.RootAt(ctx, r.contract(), r.TreeSize)
	if err != nil {
		return fmt.Errorf("audit: rootAt(%d): %w", r.TreeSize, err)
	}
	if onChain != r.Root {
		a.report.add(AuditProblem{Check: AuditRootOnChain, TreeSize: r.TreeSize, Detail: fmt.Sprintf(
			"contract %s holds %x for size %d, the anchor record says %x", r.Anchor.Contract, onChain, r.TreeSize, r.Root)})
	}
	return nil
}

// finish reports anchors the walk could not reach and logged positions
// beyond the event store's end.
func (a *auditor) finish(ctx context.Context) error {
	for _, r := range a.records[a.next:] {
		why := fmt.Sprintf("the event store holds %d events", a.report.Events)
		if a.broken != 0 {
			why = fmt.Sprintf("the entry at position %d cannot be read intact", a.broken)
		}
		a.report.AnchorsChecked++
		a.report.add(AuditProblem{Check: AuditAnchorRoot, TreeSize: r.TreeSize, Detail: "the root anchored at this size cannot be reproduced: " + why})
	}
	last, err := lastLeaf(ctx, a.s.db)
	switch {
	case errors.Is(err, errNoRow):
	case err != nil:
		return err
	default:
		a.report.Logged = last.Position
		if last.Position > a.report.Events {
			a.report.add(AuditProblem{Check: AuditEntryStored, Position: a.report.Events + 1, Detail: fmt.Sprintf(
				"the audit log recorded %d events, the event store holds %d: entries were deleted from the end", last.Position, a.report.Events)})
		}
	}
	return nil
}
