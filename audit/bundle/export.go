package bundle

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Errors of Export; test with errors.Is.
var (
	// ErrNothingSelected: the job or user has no entry in the window.
	ErrNothingSelected = errors.New("nothing to export")
	// ErrNotAnchored: selected entries are past the latest anchor.
	ErrNotAnchored = errors.New("entries not anchored yet")
	// ErrTooManyEntries: the selection holds more than EntriesMax entries.
	ErrTooManyEntries = errors.New("too many entries for one bundle")
	// ErrInvalidSelection: neither or both of Job and User are set.
	ErrInvalidSelection = errors.New("select exactly one of a job or a user")
)

// Proofs answers proofs from the audit log; *anchor.Service implements it.
type Proofs interface {
	// Proof returns the inclusion proof of an entry against the first
	// anchor covering it.
	Proof(ctx context.Context, entryID string) (*proof.Inclusion, error)
	// Consistency returns the consistency proof between two anchored sizes.
	Consistency(ctx context.Context, from, to uint64) (*proof.Consistency, error)
	// LoadAnchoredSize returns the largest anchored tree size.
	LoadAnchoredSize(ctx context.Context) (uint64, error)
}

// Selection says what to export: exactly one of Job and User, within an
// optional window (zero bounds are open).
type Selection struct {
	Job  domain.JobID
	User domain.UserID
	From replay.Until // the first position, or the earliest recorded time
	To   replay.Until // the last position, or the latest recorded time
	// AnchoredOnly leaves out the selected entries no anchor covers yet
	// (counted in Body.Unanchored) instead of failing with ErrNotAnchored.
	AnchoredOnly bool
}

// Export builds the bundle of sel from the event log and the audit log's
// proofs, stamped with now. It returns an error wrapping
// ErrInvalidSelection, domain.ErrJobNotFound, ErrNothingSelected,
// ErrTooManyEntries or ErrNotAnchored, a *replay.MisfiledError, or the
// log's or the audit log's error.
func Export(ctx context.Context, store replay.Store, proofs Proofs, sel Selection, now time.Time) (*Body, error) {
	if (sel.Job == "") == (sel.User == "") {
		return nil, ErrInvalidSelection
	}
	head, err := store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read head: %w", err)
	}
	body := &Body{Format: Format, Alg: proof.Alg, ExportedAt: now.UTC().Truncate(time.Microsecond), LogHead: head,
		Subject: Subject{Job: string(sel.Job), User: string(sel.User), Window: window(sel.From, sel.To)}}
	recs, err := selectEntries(ctx, store, sel, body)
	if err != nil {
		return nil, err
	}
	anchored, err := proofs.LoadAnchoredSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the latest anchor: %w", err)
	}
	if recs, err = dropUnanchored(recs, anchored, sel.AnchoredOnly, body); err != nil {
		return nil, err
	}
	if err := body.prove(ctx, proofs, recs, anchored); err != nil {
		return nil, err
	}
	return body, nil
}

// window returns the window of from and to, nil when both are open.
func window(from, to replay.Until) *Window {
	w := &Window{FromPosition: from.Position, ToPosition: to.Position, FromTime: from.Time, ToTime: to.Time}
	if *w == (Window{}) {
		return nil
	}
	return w
}

// selectEntries reads the selected events, by position.
func selectEntries(ctx context.Context, store replay.Store, sel Selection, body *Body) ([]eventstore.RecordedEvent, error) {
	keep := func(rec eventstore.RecordedEvent) bool {
		return body.Subject.Window.contains(rec.Position, rec.RecordedAt)
	}
	var out []eventstore.RecordedEvent
	add := func(rec eventstore.RecordedEvent, _ domain.Event) error {
		if keep(rec) {
			out = append(out, rec)
		}
		if len(out) > EntriesMax {
			return fmt.Errorf("%w: more than %d; narrow the window (--from, --to)", ErrTooManyEntries, EntriesMax)
		}
		return nil
	}
	user := sel.User
	if sel.Job != "" {
		var first domain.Event
		err := eachEvent(ctx, store, domain.JobStream(sel.Job), func(rec eventstore.RecordedEvent, e domain.Event) error {
			if first == nil {
				first = e
			}
			return add(rec, e)
		})
		if err != nil {
			return nil, err
		}
		submitted, ok := first.(domain.JobSubmitted)
		if !ok {
			return nil, fmt.Errorf("%w: %s", domain.ErrJobNotFound, sel.Job)
		}
		user, body.Subject.Owner = submitted.Owner, string(submitted.Owner)
	}
	err := eachEvent(ctx, store, domain.AccountStream(user), func(rec eventstore.RecordedEvent, e domain.Event) error {
		if sel.Job != "" && !aboutJob(e, sel.Job) {
			return nil
		}
		return add(rec, e)
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no entry of %s in the window", ErrNothingSelected, body.Subject.name())
	}
	slices.SortFunc(out, func(a, b eventstore.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
}

// eachEvent calls f for every event of stream, in version order, with its
// domain event (nil for a type the domain does not know).
func eachEvent(ctx context.Context, store replay.Store, stream string, f func(eventstore.RecordedEvent, domain.Event) error) error {
	next := uint64(1)
	for {
		recs, err := store.ReadStream(ctx, stream, next, eventstore.ReadEventsMax)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := replay.Decode(rec)
			if err != nil {
				return err
			}
			if err := f(rec, e); err != nil {
				return err
			}
		}
		if len(recs) < eventstore.ReadEventsMax {
			return nil
		}
		next = recs[len(recs)-1].Version + 1
	}
}

// aboutJob reports whether the account event e moves money of job.
func aboutJob(e domain.Event, job domain.JobID) bool {
	switch e := e.(type) {
	case domain.CreditsHeld:
		return e.JobID == job
	case domain.CreditsDeducted:
		return e.JobID == job
	case domain.HoldReleased:
		return e.JobID == job
	case domain.CreditsRefunded:
		return e.JobID == job
	}
	return false
}

// dropUnanchored leaves out the entries past the anchored size when
// anchoredOnly, and fails with ErrNotAnchored otherwise.
func dropUnanchored(recs []eventstore.RecordedEvent, anchored uint64, anchoredOnly bool, body *Body) ([]eventstore.RecordedEvent, error) {
	i := slices.IndexFunc(recs, func(r eventstore.RecordedEvent) bool { return r.Position > anchored })
	if i < 0 {
		return recs, nil
	}
	if !anchoredOnly {
		return nil, fmt.Errorf("%w: %d of the %d selected entries (from position %d) are past the latest anchor, which covers positions 1..%d; export again after the next anchor, or leave them out (--anchored-only)",
			ErrNotAnchored, len(recs)-i, len(recs), recs[i].Position, anchored)
	}
	body.Unanchored = len(recs) - i
	if i == 0 {
		return nil, fmt.Errorf("%w: none of the %d selected entries is anchored yet (the latest anchor covers positions 1..%d)", ErrNotAnchored, len(recs), anchored)
	}
	return recs[:i], nil
}

// prove adds the inclusion proof of every entry, the latest anchor and a
// consistency proof from each anchored size used to the latest.
func (b *Body) prove(ctx context.Context, proofs Proofs, recs []eventstore.RecordedEvent, anchored uint64) error {
	latest, err := proofs.Consistency(ctx, anchored, anchored)
	if err != nil {
		return fmt.Errorf("read the latest anchor (size %d): %w", anchored, err)
	}
	b.Latest = Anchored{TreeSize: anchored, Root: latest.Root1, Anchor: latest.Anchor1}
	sizes := map[uint64]bool{}
	for _, rec := range recs {
		p, err := proofs.Proof(ctx, rec.ID)
		if err != nil {
			return fmt.Errorf("proof of entry %s (position %d): %w", rec.ID, rec.Position, err)
		}
		if !bytes.Equal(p.Entry, rec.Bytes) || p.Position != rec.Position {
			return fmt.Errorf("proof of entry %s (position %d): the audit log's entry differs from the event log's; run rendertrust check", rec.ID, rec.Position)
		}
		b.Entries = append(b.Entries, p)
		sizes[p.TreeSize] = true
	}
	b.Consistency = []*proof.Consistency{}
	for _, size := range slices.Sorted(maps.Keys(sizes)) {
		if size == anchored {
			continue
		}
		c, err := proofs.Consistency(ctx, size, anchored)
		if err != nil {
			return fmt.Errorf("consistency from %d to %d: %w", size, anchored, err)
		}
		b.Consistency = append(b.Consistency, c)
	}
	return nil
}

func (s Subject) name() string {
	if s.Job != "" {
		return "job " + s.Job
	}
	return "user " + s.User
}
