package replay

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Write prints the moment in one line. It returns w's error.
func (m Moment) Write(w io.Writer) error {
	var b strings.Builder
	if m.Position == 0 {
		fmt.Fprintf(&b, "as of the empty log (until %s, before the first event); log head %d\n", m.Until, m.Head)
	} else {
		fmt.Fprintf(&b, "as of position %d, recorded %s (until %s); log head %d\n", m.Position, stamp(m.RecordedAt), m.Until, m.Head)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Write prints the account: totals, holds and history. It returns w's
// error.
func (a *Account) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "account of user %s, %d events\n", a.User, a.Version)
	tw.Flush()
	if err := a.Moment.Write(w); err != nil {
		return err
	}
	fmt.Fprintf(tw, "\nbalance\t%d\nheld\t%d\navailable\t%d\n", a.Balance, a.Held, a.Available)
	fmt.Fprintf(tw, "purchased\t%d\ngranted\t%d\ncharged\t%d\nrefunded\t%d\n", a.Purchased, a.Granted, a.Deducted, a.Refunded)
	if len(a.Holds) > 0 {
		fmt.Fprintf(tw, "\nholds (%d)\nJOB\tAMOUNT\tSTATE\tCHARGED\tREFUNDED\tHELD AT\tPOSITION\n", len(a.Holds))
		for _, h := range a.Holds {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%d\n", h.Job, h.Amount, h.State, h.Deducted, h.Refunded, stamp(h.HeldAt), h.Position)
		}
	}
	writeHistory(tw, a.History, a.HistoryOmitted)
	return tw.Flush()
}

// Write prints the job: its state, its money and its full history. It
// returns w's error.
func (j *Job) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job %s of user %s\n", j.ID, j.Owner)
	tw.Flush()
	if err := j.Moment.Write(w); err != nil {
		return err
	}
	rows := [][2]string{
		{"status", string(j.Status)}, {"type", string(j.Type)}, {"priority", string(j.Priority)},
		{"gpu", fmt.Sprint(j.GPU)}, {"payload", orDash(j.PayloadRef)}, {"node", orDash(string(j.Node))},
		{"attempts", fmt.Sprint(j.Attempts)}, {"last error", orDash(j.LastError)}, {"cancel reason", orDash(j.CancelReason)},
		{"result sha256", orDash(j.ResultSHA256)}, {"result bytes", fmt.Sprint(j.ResultBytes)},
		{"submitted", stamp(j.SubmittedAt)}, {"dispatched", stamp(j.DispatchedAt)}, {"started", stamp(j.StartedAt)},
		{"finished", stamp(j.FinishedAt)}, {"cost", fmt.Sprint(j.Cost)}, {"hold", holdText(j.Hold)},
		{"charged", fmt.Sprint(j.Deducted)}, {"refunded", fmt.Sprint(j.Refunded)},
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	writeHistory(tw, j.History, j.HistoryOmitted)
	return tw.Flush()
}

// Write prints the totals. It returns w's error.
func (s Summary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "the whole log: %d events", s.Events)
	if s.Skipped > 0 {
		fmt.Fprintf(tw, " (and %d of types this version does not know, skipped)", s.Skipped)
	}
	fmt.Fprintln(tw)
	tw.Flush()
	if err := s.Moment.Write(w); err != nil {
		return err
	}
	fmt.Fprintf(tw, "\nusers\t%d\nbalance\t%d\nheld\t%d\navailable\t%d\n", s.Users, s.Balance, s.Held, s.Available)
	fmt.Fprintf(tw, "purchased\t%d\ngranted\t%d\ncharged\t%d\nrefunded\t%d\n", s.Purchased, s.Granted, s.Deducted, s.Refunded)
	fmt.Fprintf(tw, "jobs\t%d\n", s.Jobs)
	statuses := make([]string, 0, len(s.JobsByStatus))
	for st := range s.JobsByStatus {
		statuses = append(statuses, string(st))
	}
	slices.Sort(statuses)
	for _, st := range statuses {
		fmt.Fprintf(tw, "  %s\t%d\n", st, s.JobsByStatus[domain.Status(st)])
	}
	fmt.Fprintf(tw, "nodes\t%d (%d retired)\nanchors\t%d (largest anchored size %d)\n", s.Nodes, s.NodesRetired, s.Anchors, s.AnchoredSize)
	return tw.Flush()
}

func writeHistory(tw *tabwriter.Writer, h []Entry, omitted int) {
	fmt.Fprintf(tw, "\nhistory (%d events)\n", len(h)+omitted)
	if omitted > 0 {
		fmt.Fprintf(tw, "(%d older events omitted)\n", omitted)
	}
	fmt.Fprintln(tw, "POSITION\tRECORDED AT\tTYPE\tENTRY ID\tWHAT")
	for _, e := range h {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Position, stamp(e.RecordedAt), e.Type, e.EntryID, e.Summary)
	}
}

func holdText(h *Hold) string {
	if h == nil {
		return "-"
	}
	return fmt.Sprintf("%d credits, %s (held %s)", h.Amount, h.State, stamp(h.HeldAt))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(eventstore.RecordedAtLayout) // as the log stores it
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
