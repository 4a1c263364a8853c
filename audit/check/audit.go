package check

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/eventstore"
)

// auditLog runs the audit log's own audit (anchor.Service.Audit) — every
// entry against the leaf the audit log recorded for it, the root of every
// anchor reproduced from the entries as stored and read from the chain —
// and turns its problems into findings.
func (c *checker) auditLog(ctx context.Context) error {
	step := startStep(c.cfg.Progress, "check 1/3: entries against the audit log and the anchors", "events", c.head)
	svc := anchor.NewService(c.cfg.DB, countingReader{store: c.cfg.Store, step: step}, anchor.ServiceConfig{Chain: c.cfg.Chain})
	rep, err := svc.Audit(ctx)
	step.finish()
	if err != nil {
		return fmt.Errorf("check: audit the audit log: %w", err)
	}
	c.r.Logged, c.r.AnchorsChecked = rep.Logged, rep.AnchorsChecked
	lagging := 0
	for _, p := range rep.Problems {
		f := Finding{Position: p.Position, TreeSize: p.TreeSize, Detail: p.Detail}
		switch p.Check {
		case anchor.AuditEntryStored:
			f.Check = Entry
		case anchor.AuditLeafIndex:
			if p.Position > rep.Logged {
				lagging++ // past the audit log's last leaf: it has not read the entry yet
				continue
			}
			f.Check = LeafIndex
		case anchor.AuditAnchorRoot:
			f.Check = AnchorRoot
		case anchor.AuditRootOnChain:
			f.Check = RootOnChain
		default:
			f.Check = p.Check
		}
		if f.Check == Entry || f.Check == LeafIndex {
			c.broken = append(c.broken, f.Position)
		}
		f.EntryID = c.entryAt(ctx, f.Position)
		c.r.add(f)
	}
	switch {
	case rep.Logged == 0 && rep.Events > 0:
		c.r.note("the audit log is empty: this installation has never run the audit log (no chain configured), so there was no Merkle tree or anchor to check")
	case lagging > 0:
		c.r.note("the audit log has read the log up to position %d; the entries after it are not in it yet (it is catching up) and were checked only against their own hashes", rep.Logged)
	}
	if rep.Truncated {
		c.r.note("the audit log's audit stopped listing problems after its limit; fix these and run the check again")
	}
	if c.cfg.Chain == nil && rep.AnchorsChecked > 0 {
		c.r.note("no chain endpoint: the %d anchored roots were reproduced from the entries but not compared with the chain (pass --rpc)", rep.AnchorsChecked)
	}
	return nil
}

// countingReader reports the events read as the step's progress.
type countingReader struct {
	store Store
	step  *progress
}

// ReadAll reads as Store.ReadAll does and counts the events read.
func (r countingReader) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	evs, err := r.store.ReadAll(ctx, from, max)
	if err == nil {
		r.step.add(len(evs))
	}
	return evs, err
}

// entryAt returns the id of the entry at position: as the event store
// holds it, or, when it cannot be read back (altered or deleted), as the
// audit log's leaf index recorded it; "" if neither knows.
func (c *checker) entryAt(ctx context.Context, position uint64) string {
	if position == 0 {
		return ""
	}
	evs, err := c.cfg.Store.ReadAll(ctx, position, 1)
	if err == nil && len(evs) == 1 && evs[0].Position == position {
		return evs[0].ID
	}
	// anchor_leaves is the audit log's record of which entry stood at each
	// position (anchor/schema.go); no API reads it by position.
	var id string
	if err := c.cfg.DB.QueryRow(ctx, `SELECT event_id FROM anchor_leaves WHERE position = ?`, int64(position)).Scan(&id); err == nil {
		return id
	}
	return ""
}
