package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"io"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// refundActor is who a refund made on the command line is recorded as.
const refundActor = "admin:cli"

// RefundOptions are the flags of `admin refund`.
type RefundOptions struct {
	Job, Reason, RefundID string
	Amount                int64
	AsJSON                bool
}

// RefundResult is what `admin refund` reports.
type RefundResult struct {
	Job      domain.JobID   `json:"job"`
	RefundID string         `json:"refund_id"`
	Amount   domain.Credits `json:"amount"`   // this refund; 0 when it had been made before
	EntryID  string         `json:"entry_id"` // the refund's ledger entry
	Position uint64         `json:"position"`
	Deducted domain.Credits `json:"charged"`
	Refunded domain.Credits `json:"refunded"` // in all, this refund included
	Repeated bool           `json:"repeated"` // the refund id had been used with these details: nothing new
}

// newAdminRefundCommand returns `rendertrust admin refund --job ID
// [--amount N] --reason TEXT`, the dispute refund against the configured
// store.
func newAdminRefundCommand() *cobra.Command {
	m := server.NewMain()
	var opts RefundOptions
	cmd := &cobra.Command{
		Use:   "refund --job ID [--amount N] --reason TEXT [--refund-id ID]",
		Short: "Refund all or part of a charged job (a dispute), with a reason",
		Long: `Give back credits of a charged job to its owner: --amount of them, or by
default everything not refunded yet. The refund is an event in the owner's
account (type "refund" in their history), provable like any other ledger entry.
A job's refunds never exceed its charge, also when refunds race. Each refund
has an id (printed): running the command again with the same --refund-id and
the same details does nothing, so a retry after an error is safe.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: server.WithStores(m, func(cmd *cobra.Command, _ []string) error {
			return RunAdminRefund(cmd.Context(), m.Commands, m.Store, cmd.OutOrStdout(), opts)
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Job, "job", "", "the charged job")
	cmd.Flags().Int64Var(&opts.Amount, "amount", 0, "credits to refund (default: all not refunded yet)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why, as the owner's history will show it")
	cmd.Flags().StringVar(&opts.RefundID, "refund-id", "", "the refund's id, to retry safely (default: a new one)")
	cmd.Flags().BoolVar(&opts.AsJSON, "json", false, "print the result as JSON")
	cmd.MarkFlagRequired("job")
	cmd.MarkFlagRequired("reason")
	return cmd
}

// RunAdminRefund refunds the job opts names through svc and prints what
// was refunded and where it is in log. It returns the command's error
// (domain.ErrNotDeducted, domain.ErrRefundExceedsDeduction, …) with context.
func RunAdminRefund(ctx context.Context, svc *commands.Service, store replay.Store, out io.Writer, opts RefundOptions) error {
	if opts.Amount < 0 {
		return fmt.Errorf("--amount %d: refund a positive amount, or omit it to refund everything left", opts.Amount)
	}
	if opts.RefundID == "" {
		opts.RefundID = eventstore.NewEventID()
	}
	job := domain.JobID(opts.Job)
	pos, err := svc.Refund(ctx, commands.Actor{ID: refundActor}, job, domain.Credits(opts.Amount), opts.RefundID, opts.Reason)
	switch {
	case errors.Is(err, domain.ErrNotDeducted):
		return fmt.Errorf("job %s was never charged (only a completed job is): %w", job, err)
	case err != nil:
		return fmt.Errorf("refund job %s: %w", job, err)
	}
	res, err := refundOutcome(ctx, store, job, opts.RefundID, pos)
	if err != nil {
		return err
	}
	if opts.AsJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if res.Repeated {
		_, err = fmt.Fprintf(out, "refund %s of job %s was made before (entry %s at position %d): nothing new; the job is charged %d, refunded %d in all\n",
			res.RefundID, job, res.EntryID, res.Position, res.Deducted, res.Refunded)
		return err
	}
	_, err = fmt.Fprintf(out, "refunded %d credits of job %s: entry %s at position %d (refund id %s)\nthe job is charged %d, refunded %d in all, %d left to refund\n",
		res.Amount, job, res.EntryID, res.Position, res.RefundID, res.Deducted, res.Refunded, res.Deducted-res.Refunded)
	return err
}

// refundOutcome reads the refund back from the log: the job's money as of
// the log's head and the refund's entry.
func refundOutcome(ctx context.Context, store replay.Store, job domain.JobID, refundID string, pos uint64) (RefundResult, error) {
	m, err := replay.Resolve(ctx, store, replay.Until{})
	if err != nil {
		return RefundResult{}, err
	}
	j, err := replay.JobAt(ctx, store, job, m)
	if err != nil {
		return RefundResult{}, err
	}
	res := RefundResult{Job: job, RefundID: refundID, Deducted: j.Deducted, Refunded: j.Refunded, Repeated: pos == 0}
	for _, e := range j.History {
		if r, ok := e.Event.(domain.CreditsRefunded); ok && r.RefundID == refundID {
			res.EntryID, res.Position = e.EntryID, e.Position
			if !res.Repeated {
				res.Amount = r.Amount
			}
		}
	}
	if res.EntryID == "" {
		return RefundResult{}, fmt.Errorf("refund %s of job %s is not in the log", refundID, job)
	}
	return res, nil
}
