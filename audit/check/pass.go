package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/projections"
)

// events is the second pass over the log, up to the head the check began
// at: every entry reads back intact, decodes and is in its stream; every
// money event's postings balance; the Merkle tree's stored nodes are
// recomputed; every event feeds the read models' replay. The log is read
// one page ahead of the checks.
func (c *checker) events(ctx context.Context) error {
	step := startStep(c.cfg.Progress, "check 2/3: hashes, streams, postings, Merkle tree, replay of the read models", "events", c.head)
	defer step.finish()
	tree := newTreeCheck(c)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reader when a check fails
	pages := make(chan logPage, readAheadPages)
	go readLog(ctx, c.cfg.Store, c.head, pages)
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		if err := c.page(ctx, tree, p.events, step); err != nil {
			return err
		}
		if p.corrupt != nil {
			c.damaged(ctx, tree, p.corrupt)
			step.add(1)
		}
		if p.end != 0 {
			c.r.note("the log ended at position %d during the check, below its head %d", p.end, c.head)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tree.compare(ctx); err != nil {
		return err
	}
	return c.rep.flush(ctx)
}

// readAheadPages bounds the pages of the log read ahead of the checks.
const readAheadPages = 2

// logPage is a run of intact consecutive events, then possibly the
// damaged entry that ended it, or the error that ended the read.
type logPage struct {
	events  []eventstore.RecordedEvent
	corrupt *eventstore.CorruptionError
	end     uint64 // the log ended here, before its head
	err     error
}

// readLog reads positions 1..head in pages, going on past each entry that
// cannot be read back (which ends its page), and closes out.
func readLog(ctx context.Context, store Store, head uint64, out chan<- logPage) {
	defer close(out)
	send := func(p logPage) bool {
		select {
		case out <- p:
			return p.err == nil && p.end == 0
		case <-ctx.Done():
			return false
		}
	}
	for pos := uint64(1); pos <= head; {
		p := readPage(ctx, store, pos, int(min(uint64(eventstore.ReadEventsMax), head-pos+1)))
		if !send(p) {
			return
		}
		switch {
		case p.corrupt != nil:
			pos = p.corrupt.Position + 1
		default:
			pos = p.events[len(p.events)-1].Position + 1
		}
	}
}

// readPage reads up to n events from pos; a damaged entry ends the page.
func readPage(ctx context.Context, store Store, pos uint64, n int) logPage {
	recs, err := store.ReadAll(ctx, pos, n)
	var corrupt *eventstore.CorruptionError
	if errors.As(err, &corrupt) && corrupt.Position >= pos {
		p := logPage{corrupt: corrupt}
		if corrupt.Position > pos {
			// Read what precedes the damaged entry on its own.
			if p.events, err = store.ReadAll(ctx, pos, int(corrupt.Position-pos)); err != nil {
				return logPage{err: fmt.Errorf("check: read the log from %d: %w", pos, err)}
			}
		}
		return p
	}
	if err != nil {
		return logPage{err: fmt.Errorf("check: read the log from %d: %w", pos, err)}
	}
	if len(recs) == 0 {
		return logPage{end: pos - 1}
	}
	return logPage{events: recs}
}

// page checks consecutive intact events.
func (c *checker) page(ctx context.Context, tree *treeCheck, recs []eventstore.RecordedEvent, step *progress) error {
	for _, rec := range recs {
		c.r.Events++
		e := c.decode(rec)
		if a, ok := e.(domain.AnchorRecorded); ok {
			c.anchors[a.TreeSize] = rec // the latest record of a size is the current one
		}
		if _, ok := domain.AccountOf(e); ok {
			c.r.MoneyEvents++
			if problem := postingsProblem(e); problem != "" {
				c.r.add(Finding{Check: Postings, Position: rec.Position, EntryID: rec.ID, Detail: problem})
			}
		}
		if err := tree.leaf(ctx, rec); err != nil {
			return err
		}
		if err := c.rep.feed(ctx, projections.Event{RecordedEvent: rec, Decoded: e}); err != nil {
			return err
		}
	}
	step.add(len(recs))
	return nil
}

// decode returns rec's domain event, nil for a type or schema version the
// domain does not know (as the read models skip it), and reports an event
// that does not decode or is outside its stream.
func (c *checker) decode(rec eventstore.RecordedEvent) domain.Event {
	if rec.SchemaVersion != domain.SchemaVersion {
		return nil
	}
	e, err := domain.DecodeEvent(rec.Type, rec.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return nil
	}
	if err != nil {
		c.r.add(Finding{Check: Decode, Position: rec.Position, EntryID: rec.ID, Detail: err.Error()})
		return nil
	}
	if want, _ := replay.ExpectedStream(e); want != rec.Stream {
		c.r.add(Finding{Check: Stream, Position: rec.Position, EntryID: rec.ID,
			Detail: fmt.Sprintf("a %s event is in stream %s; its data says it belongs to %s", rec.Type, rec.Stream, want)})
	}
	return e
}

// damaged records an entry the event store cannot return intact.
func (c *checker) damaged(ctx context.Context, tree *treeCheck, corrupt *eventstore.CorruptionError) {
	c.broken = append(c.broken, corrupt.Position)
	c.r.add(Finding{Check: Entry, Position: corrupt.Position, EntryID: c.entryAt(ctx, corrupt.Position), Detail: corrupt.Reason})
	tree.stop(corrupt.Position)
	c.rep.markHole(corrupt.Position)
}

// postingsProblem says what is wrong with a money event's postings: they
// must be a balanced double-entry set (domain.Balanced: they sum to zero)
// and move the event's amount on the user's accounts as the domain does.
// It returns "" when they are right.
func postingsProblem(e domain.Event) string {
	ps := domain.PostingsOf(e)
	if err := domain.Balanced(ps); err != nil {
		return fmt.Sprintf("postings %s: %v", describe(ps), err)
	}
	user, _ := domain.AccountOf(e)
	kind, amount := replay.Movement(e)
	u, held := domain.UserAccount(user), domain.UserHeldAccount(user)
	want := map[domain.AccountRef]domain.Credits{}
	switch kind {
	case replay.KindPurchase, replay.KindGrant, replay.KindRefund:
		want[u] = amount
	case replay.KindHold:
		want[u], want[held] = -amount, amount
	case replay.KindDeduction:
		want[held] = -amount
	case replay.KindRelease:
		want[held], want[u] = -amount, amount
	}
	net := domain.NetBalances(ps)
	for _, acc := range []domain.AccountRef{u, held} {
		if net[acc] != want[acc] {
			return fmt.Sprintf("the %s of %d credits moves %+d on %s, want %+d (postings %s)", kind, amount, net[acc], acc, want[acc], describe(ps))
		}
	}
	return ""
}

// describe lists postings as "debit → credit amount".
func describe(ps []domain.Posting) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s → %s %d", orNone(p.Debit), orNone(p.Credit), p.Amount)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func orNone(a domain.AccountRef) string {
	if a == "" {
		return "(no account)"
	}
	return string(a)
}
