package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/check"
)

// ErrFindings makes `check` exit non-zero when it found anything wrong.
var ErrFindings = errors.New("the check found problems")

// checkOptions are the flags of `check` beyond the store's.
type checkOptions struct {
	rpcURL   string
	devChain bool
	asJSON   bool
}

// newCheckCommand returns `rendertrust check`, the full integrity check of
// an installation.
func newCheckCommand() *cobra.Command {
	m := server.NewMain()
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [--rpc URL | --dev] [--json]",
		Short: "Check the whole installation: hashes, Merkle roots on chain, postings, read models",
		Long: `Check everything an installation stores against what the log says it must be:

  entry          every event reads back intact (its stored hash is SHA-256(0x00 ‖ bytes))
                 and no position is missing
  leaf_index     the audit log recorded each entry with that hash
  anchor_root    the entries as stored reproduce the Merkle root of every anchor
  root_on_chain  the chain holds that root (with --rpc, CHAIN_RPC_URL or --dev)
  tree_node      every stored Merkle node, from which proofs are served, recomputes
  postings       every money event's postings balance and move the amount it states
  stream/decode  every event decodes and is in the stream the domain writes it to
  projection     every read model equals, row for row, a replay of the log up to its
                 checkpoint (each projection's own code, run into a scratch database)

Shows progress on standard error and prints a report naming the log position and
entry id of each finding; exits non-zero if there is any. It can run beside a
serving installation: entries the audit log or a read model has not reached yet
are not findings. --dev checks against the embedded dev chain in <data-dir>/chain,
which only works while the server is stopped (it holds the chain); otherwise pass
--rpc with the dev chain's URL the server logs at start.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: server.WithStores(m, func(cmd *cobra.Command, _ []string) error {
			if opts.rpcURL == "" {
				opts.rpcURL = m.Config.ChainRPCURL
			}
			return runCheck(cmd.Context(), m, cmd.OutOrStdout(), cmd.ErrOrStderr(), opts)
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.rpcURL, "rpc", "", "JSON-RPC endpoint of the anchors' chain (default: CHAIN_RPC_URL)")
	cmd.Flags().StringVar(&m.Config.ChainRPCURL, "chain-rpc-url", "", "the chain's JSON-RPC URL, as serve takes it")
	cmd.Flags().MarkHidden("chain-rpc-url")
	cmd.Flags().BoolVar(&opts.devChain, "dev", false, "check against the embedded dev chain in <data-dir>/chain (the server must be stopped)")
	cmd.Flags().BoolVar(&opts.asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagsMutuallyExclusive("rpc", "dev")
	return cmd
}

// runCheck checks m's installation, shows progress on progress and prints
// the report to out. It returns ErrFindings when the check found anything.
func runCheck(ctx context.Context, m *server.Main, out, progress io.Writer, opts checkOptions) error {
	chain, closeChain, err := openCheckChain(ctx, m.Config, opts)
	if err != nil {
		return err
	}
	defer closeChain()
	report, finishBars := stepBars(progress)
	r, err := check.Run(ctx, check.Config{Store: m.Store, DB: m.DB, Chain: chain, Progress: report})
	finishBars()
	if err != nil {
		return err
	}
	if opts.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = writeCheckReport(out, r)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("%w: %d findings", ErrFindings, len(r.Findings)+r.FindingsOmitted)
	}
	return nil
}

// openCheckChain returns the chain to check anchors against: the endpoint
// at opts.rpcURL, the embedded dev chain with opts.devChain, or none.
func openCheckChain(ctx context.Context, c server.Config, opts checkOptions) (proof.Chain, func(), error) {
	switch {
	case opts.rpcURL != "":
		client, err := ethchain.Dial(ctx, opts.rpcURL)
		if err != nil {
			return nil, nil, err
		}
		return client, client.Close, nil
	case opts.devChain:
		dir := c.DataPath("chain")
		if _, err := os.Stat(dir); err != nil {
			return nil, nil, fmt.Errorf("no dev chain in %s: %w", dir, err)
		}
		dc, err := devchain.Open(ctx, dir, devchain.Config{})
		if err != nil {
			return nil, nil, fmt.Errorf("%w (is the server running? it holds the dev chain: pass --rpc with the URL it logged at start)", err)
		}
		return dc.Client(), func() { dc.Close() }, nil
	}
	return nil, func() {}, nil
}

// writeCheckReport prints what the check checked, its notes and every
// finding with its position and entry, as tables. It returns w's error.
func writeCheckReport(w io.Writer, r *check.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "checked the log up to position %d in %s (%s)\n", r.Head, r.Duration.Round(time.Millisecond), phases(r.Phases))
	fmt.Fprintf(tw, "  entries\t%d read back intact (stored hash = SHA-256(0x00 ‖ bytes)); the postings of %d money events checked\n", r.Events, r.MoneyEvents)
	chain := "not compared with a chain"
	if r.ChainChecked {
		chain = "compared with the chain"
	}
	fmt.Fprintf(tw, "  audit log\t%d entries logged; %d anchored roots reproduced from the entries, %s\n", r.Logged, r.AnchorsChecked, chain)
	fmt.Fprintf(tw, "  merkle tree\t%d stored nodes recomputed\n", r.TreeNodes)
	for _, p := range r.Projections {
		if p.Skipped != "" {
			fmt.Fprintf(tw, "  read model\t%s: not compared: %s\n", p.Name, p.Skipped)
			continue
		}
		fmt.Fprintf(tw, "  read model\t%s: %d %s equal a replay up to position %d\n", p.Name, p.Rows, plural(p.Rows, "row"), p.Position)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	n := len(r.Findings) + r.FindingsOmitted
	if n == 1 {
		fmt.Fprintln(w, "\n1 FINDING")
	} else {
		fmt.Fprintf(w, "\n%d FINDINGS\n", n)
	}
	fmt.Fprintln(tw, "CHECK\tPOSITION\tENTRY\tWHERE\tWHAT")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Check, dash(f.Position), orDash(f.EntryID), where(f), oneLine(f.Detail))
	}
	if r.FindingsOmitted > 0 {
		fmt.Fprintf(tw, "…\t\t\t\t%d more findings not listed\n", r.FindingsOmitted)
	}
	return tw.Flush()
}

func phases(ps []check.Phase) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond))
	}
	return strings.Join(parts, ", ")
}

func plural(n uint64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func where(f check.Finding) string {
	switch {
	case f.Table != "":
		return f.Table + " " + f.Key
	case f.Key != "":
		return f.Key
	case f.TreeSize != 0:
		return fmt.Sprintf("the anchor of tree size %d", f.TreeSize)
	}
	return "-"
}

func dash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
