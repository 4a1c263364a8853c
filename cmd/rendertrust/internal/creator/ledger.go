package creator

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/client"
)

// errEntryNotVerified is returned by `ledger verify` when a check failed,
// so scripts see a non-zero exit.
var errEntryNotVerified = errors.New("ledger entry NOT verified")

// newLedgerCommand returns `rendertrust ledger`: proof and verify.
func newLedgerCommand() *cobra.Command {
	f := &cliFlags{}
	cmd := &cobra.Command{Use: "ledger", Short: "Audit your ledger entries: Merkle proofs anchored on chain"}
	bindCLIFlags(cmd.PersistentFlags(), f)
	cmd.AddCommand(newLedgerProofCommand(f), newLedgerVerifyCommand(f))
	return cmd
}

func newLedgerProofCommand(f *cliFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "proof ENTRY_ID [-o FILE]",
		Short: "Get an entry's inclusion proof (ENTRY_ID from 'credits history')",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, err := c.Proof(cmd.Context(), args[0])
			if err != nil {
				return ledgerError(err)
			}
			if output != "" {
				if err := os.WriteFile(output, p.Raw, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Proof saved to %s; check it offline with 'rendertrust verify'.\n", output)
			}
			if f.json {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", p.Raw)
				return err
			}
			return printProof(cmd.OutOrStdout(), p)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "also save the proof document to FILE")
	return cmd
}

func printProof(w io.Writer, p client.Proof) error {
	t := cliTable(w)
	row := func(k string, v any) { fmt.Fprintf(t, "%s\t%v\n", k, v) }
	row("Entry", p.EntryID)
	row("Position", p.Position)
	row("Algorithm", p.Alg)
	row("Leaf hash", p.LeafHash)
	row("Tree size", p.TreeSize)
	row("Audit path", fmt.Sprintf("%d hashes", len(p.AuditPath)))
	row("Root", p.Root)
	row("Chain", p.Anchor.ChainID)
	row("Contract", p.Anchor.Contract)
	row("Transaction", p.Anchor.TxHash)
	row("Block", p.Anchor.BlockNumber)
	return t.Flush()
}

func newLedgerVerifyCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "verify ENTRY_ID",
		Short: "Have the server check an entry's proof against the chain",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := c.Verify(cmd.Context(), args[0])
			if err != nil {
				return ledgerError(err)
			}
			if f.json {
				if err := cliPrintJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else if err := printVerification(cmd.OutOrStdout(), v); err != nil {
				return err
			}
			if !v.Verified {
				return errEntryNotVerified
			}
			return nil
		}),
	}
}

func printVerification(w io.Writer, v client.Verification) error {
	verdict := "VERIFIED"
	if !v.Verified {
		verdict = "NOT VERIFIED"
	}
	fmt.Fprintln(w, verdict)
	t := cliTable(w)
	fmt.Fprintln(t, "CHECK\tRESULT\tDETAIL")
	for _, name := range slices.Sorted(maps.Keys(v.Checks)) {
		result := "ok"
		if !v.Checks[name] {
			result = "FAILED"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\n", name, result, strings.TrimSpace(v.Details[name]))
	}
	return t.Flush()
}

// ledgerError says what the ledger's refusals mean.
func ledgerError(err error) error {
	var apiErr *client.APIError
	switch {
	case errors.Is(err, client.ErrUnavailable):
		return fmt.Errorf("%w (the server's anchoring service is not running: proofs are not served yet)", err)
	case errors.Is(err, client.ErrConflict) && errors.As(err, &apiErr) && apiErr.RetryAfter > 0:
		return fmt.Errorf("%w (the entry is not anchored yet; try again in %s)", err, apiErr.RetryAfter)
	}
	return err
}
