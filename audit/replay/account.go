package replay

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// HistoryEntriesMax bounds the history one Account or Job keeps: the
// latest entries; older ones are counted in HistoryOmitted.
const HistoryEntriesMax = 10000

// Account is a user's credits as of a moment.
type Account struct {
	User   domain.UserID `json:"user"`
	Moment Moment        `json:"moment"`
	// Version is how many account events the moment includes.
	Version uint64 `json:"version"`

	Balance   domain.Credits `json:"balance"`   // purchased + granted + refunded − deducted
	Held      domain.Credits `json:"held"`      // open holds
	Available domain.Credits `json:"available"` // balance − held
	Purchased domain.Credits `json:"purchased"`
	Granted   domain.Credits `json:"granted"`
	Deducted  domain.Credits `json:"deducted"`
	Refunded  domain.Credits `json:"refunded"`

	// Holds lists every job the account held credits for, in the order of
	// the holds.
	Holds []Hold `json:"holds"`
	// History is the account's events, oldest first.
	History        []Entry `json:"history"`
	HistoryOmitted int     `json:"history_omitted,omitempty"`
}

// Hold is an account's money record for one job.
type Hold struct {
	Job      domain.JobID     `json:"job"`
	Amount   domain.Credits   `json:"amount"`
	State    domain.HoldState `json:"state"` // open, deducted or released
	Deducted domain.Credits   `json:"charged"`
	Refunded domain.Credits   `json:"refunded"`
	HeldAt   time.Time        `json:"held_at"`
	Position uint64           `json:"position"` // of the hold
}

// AccountAt rebuilds user's account as of m from the account's stream.
// It returns the log's error (a *eventstore.CorruptionError for an entry
// that does not read back intact), a *MisfiledError, or an error for an
// event that does not decode. A user with no events has an empty account.
func AccountAt(ctx context.Context, store Store, user domain.UserID, m Moment) (*Account, error) {
	out := &Account{User: user, Moment: m, Holds: []Hold{}, History: []Entry{}}
	agg := domain.NewAccount(user)
	held := map[domain.JobID]Hold{}
	var order []domain.JobID
	err := readStream(ctx, store, domain.AccountStream(user), m.Position, func(rec eventstore.RecordedEvent, e domain.Event) {
		agg.Apply(e)
		if h, ok := e.(domain.CreditsHeld); ok {
			held[h.JobID] = Hold{Job: h.JobID, HeldAt: h.At, Position: rec.Position}
			order = append(order, h.JobID)
		}
		out.addHistory(newEntry(rec, e))
	})
	if err != nil {
		return nil, err
	}
	out.Version = agg.Version()
	out.Balance, out.Held, out.Available = agg.Balance(), agg.Held(), agg.Available()
	out.Purchased, out.Granted, out.Deducted, out.Refunded = agg.Purchased(), agg.Granted(), agg.Deducted(), agg.Refunded()
	for _, job := range order {
		h, _ := agg.JobHold(job)
		rec := held[job]
		rec.Amount, rec.State, rec.Deducted, rec.Refunded = h.Amount, h.State, h.Deducted(), h.Refunded
		out.Holds = append(out.Holds, rec)
	}
	return out, nil
}

func (a *Account) addHistory(e Entry) {
	a.History, a.HistoryOmitted = appendBounded(a.History, e, a.HistoryOmitted)
}

// appendBounded appends e, dropping the oldest entry beyond
// HistoryEntriesMax and counting it in omitted.
func appendBounded(h []Entry, e Entry, omitted int) ([]Entry, int) {
	if len(h) == HistoryEntriesMax {
		h = slices.Delete(h, 0, HistoryEntriesMax/10) // amortized: drop a tenth at a time
		omitted += HistoryEntriesMax / 10
	}
	return append(h, e), omitted
}

// readStream calls fold for each known event of stream at a position up to
// until, in version order. Events of unknown types are passed over.
func readStream(ctx context.Context, store Store, stream string, until uint64, fold func(eventstore.RecordedEvent, domain.Event)) error {
	next := uint64(1)
	for {
		recs, err := store.ReadStream(ctx, stream, next, eventstore.ReadEventsMax)
		if err != nil {
			return fmt.Errorf("read %s from version %d: %w", stream, next, err)
		}
		for _, rec := range recs {
			if rec.Position > until {
				return nil
			}
			e, err := Decode(rec)
			if err != nil {
				return err
			}
			if e != nil {
				fold(rec, e)
			}
		}
		if len(recs) < eventstore.ReadEventsMax {
			return nil
		}
		next = recs[len(recs)-1].Version + 1
	}
}
