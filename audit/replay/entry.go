package replay

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// The kinds of credit movement, as the API's transaction history names
// them (projections.Tx*).
const (
	KindPurchase  = "purchase"
	KindGrant     = "grant"
	KindHold      = "hold"
	KindDeduction = "deduction"
	KindRelease   = "release"
	KindRefund    = "refund"
)

// Entry is one event of a history: where it is in the log, what it is and
// a line for people.
type Entry struct {
	Position   uint64          `json:"position"`
	EntryID    string          `json:"entry_id"` // the event id: GET /api/v1/ledger/{entry_id}/proof proves it
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Type       string          `json:"type"`           // the event type, e.g. credits.refunded
	Kind       string          `json:"kind,omitempty"` // for a credit movement: purchase, grant, hold, deduction, release or refund
	Amount     domain.Credits  `json:"amount,omitempty"`
	RecordedAt time.Time       `json:"recorded_at"` // when the log recorded it
	At         time.Time       `json:"at"`          // when the domain decided it
	Summary    string          `json:"summary"`
	Data       json.RawMessage `json:"data"` // the event's data, exactly as stored
	Event      domain.Event    `json:"-"`
}

func newEntry(rec eventstore.RecordedEvent, e domain.Event) Entry {
	kind, amount := Movement(e)
	return Entry{
		Position: rec.Position, EntryID: rec.ID, Stream: rec.Stream, Version: rec.Version, Type: rec.Type,
		Kind: kind, Amount: amount, RecordedAt: rec.RecordedAt, At: domain.OccurredAt(e), Summary: Summarize(e),
		Data: rec.Data, Event: e,
	}
}

// Movement returns the kind and amount of credits an account event moves,
// and "" for any other event. A zero amount (the hold of a free job) is a
// movement of 0.
func Movement(e domain.Event) (kind string, amount domain.Credits) {
	switch e := e.(type) {
	case domain.CreditsPurchased:
		return KindPurchase, e.Credits
	case domain.CreditsGranted:
		return KindGrant, e.Amount
	case domain.CreditsHeld:
		return KindHold, e.Amount
	case domain.CreditsDeducted:
		return KindDeduction, e.Amount
	case domain.HoldReleased:
		return KindRelease, e.Amount
	case domain.CreditsRefunded:
		return KindRefund, e.Amount
	}
	return "", 0
}

// Summarize returns one line saying what e records.
func Summarize(e domain.Event) string {
	if s, ok := summarizeMoney(e); ok {
		return s
	}
	switch e := e.(type) {
	case domain.JobSubmitted:
		gpu := ""
		if e.GPU {
			gpu = ", GPU"
		}
		return fmt.Sprintf("submitted by %s: %s job, priority %s%s, cost %d", e.Owner, e.Type, e.Priority, gpu, e.Cost)
	case domain.JobDispatched:
		return fmt.Sprintf("dispatched to node %s (attempt %d)", e.NodeID, e.Attempt)
	case domain.JobStarted:
		return "started on node " + string(e.NodeID)
	case domain.JobCompleted:
		return fmt.Sprintf("completed on node %s: result sha256 %s (%d bytes)", e.NodeID, e.ResultSHA256, e.ResultBytes)
	case domain.JobFailed:
		return fmt.Sprintf("failed on node %s (attempt %d): %s; %s", e.NodeID, e.Attempt, e.Error, retryText(e.WillRetry))
	case domain.JobTimedOut:
		return fmt.Sprintf("timed out on node %s (attempt %d); %s", e.NodeID, e.Attempt, retryText(e.WillRetry))
	case domain.JobCancelled:
		return "cancelled: " + e.Reason
	case domain.NodeEnrolled:
		return fmt.Sprintf("enrolled %q: %s, GPU %t, %d slots", e.Name, jobTypes(e.JobTypes), e.GPU, e.Slots)
	case domain.NodeCapabilitiesChanged:
		return fmt.Sprintf("capabilities: %s, GPU %t, %d slots", jobTypes(e.JobTypes), e.GPU, e.Slots)
	case domain.NodeRetired:
		return "retired: " + e.Reason
	case domain.AnchorRecorded:
		return fmt.Sprintf("anchored tree size %d, root %s, on chain %d in block %d (tx %s)", e.TreeSize, e.Root, e.ChainID, e.BlockNumber, e.TxHash)
	}
	return fmt.Sprintf("%T", e)
}

func summarizeMoney(e domain.Event) (string, bool) {
	switch e := e.(type) {
	case domain.CreditsPurchased:
		dev := ""
		if e.Provider == domain.ProviderDev {
			dev = ", dev: nothing was charged"
		}
		return fmt.Sprintf("purchased %d credits (package %s, %d %s cents via %s%s)", e.Credits, e.PackageID, e.AmountCents, strings.ToUpper(e.Currency), e.Provider, dev), true
	case domain.CreditsGranted:
		return fmt.Sprintf("granted %d credits: %s", e.Amount, e.Reason), true
	case domain.CreditsHeld:
		return fmt.Sprintf("held %d credits for job %s", e.Amount, e.JobID), true
	case domain.CreditsDeducted:
		return fmt.Sprintf("charged %d credits for job %s", e.Amount, e.JobID), true
	case domain.HoldReleased:
		return fmt.Sprintf("released the hold of %d credits for job %s (%s)", e.Amount, e.JobID, e.Reason), true
	case domain.CreditsRefunded:
		return fmt.Sprintf("refunded %d credits of job %s: %s (refund %s)", e.Amount, e.JobID, e.Reason, e.RefundID), true
	}
	return "", false
}

func retryText(retry bool) string {
	if retry {
		return "will retry"
	}
	return "no retry left"
}

func jobTypes(ts []domain.JobType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}
