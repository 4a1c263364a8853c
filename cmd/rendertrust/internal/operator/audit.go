package operator

import (
	"context"
	"errors"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/bundle"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/atomicfile"
)

// ErrBundleNotVerified makes `audit verify` exit non-zero when a check
// failed.
var ErrBundleNotVerified = errors.New("bundle NOT verified")

// bundleFileMode lets anyone read an exported bundle: it is meant to be
// handed to a third party.
const bundleFileMode = 0o644

// newAuditCommand returns `rendertrust audit`, with export and verify.
func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Export and verify audit bundles: a dispute's entries with their proofs"}
	cmd.AddCommand(newAuditExportCommand(), newAuditVerifyCommand())
	return cmd
}

// exportOptions are the flags of `audit export`.
type exportOptions struct {
	job, user, from, to, output string
	anchoredOnly                bool
}

func newAuditExportCommand() *cobra.Command {
	m := server.NewMain()
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export (--job ID | --user ID) [--from F --to T] -o FILE",
		Short: "Write a self-contained, verifiable bundle of a job's or a user's ledger entries",
		Long: `Write a bundle that settles a dispute without RenderTrust's database: the
exact bytes of every entry concerned (a job's lifecycle and its money in its
owner's account, or a user's account), each entry's inclusion proof against an
anchored root, the anchors (chain, contract, transaction, block), and a
consistency proof from each anchored size used to the latest anchor.
--from and --to bound the entries by log position or by time (RFC 3339 or a
date). Entries past the latest anchor fail the export unless --anchored-only
leaves them out. Check a bundle with: rendertrust audit verify FILE --rpc URL.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: server.WithStores(m, func(cmd *cobra.Command, _ []string) error {
			return runAuditExport(cmd.Context(), m, cmd.OutOrStdout(), cmd.ErrOrStderr(), opts)
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.job, "job", "", "export this job: its lifecycle and its money")
	cmd.Flags().StringVar(&opts.user, "user", "", "export this user's account")
	cmd.Flags().StringVar(&opts.from, "from", "", "the first log position, or the earliest time (RFC 3339 or a date)")
	cmd.Flags().StringVar(&opts.to, "to", "", "the last log position, or the latest time")
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", `the bundle file to write ("-": standard output)`)
	cmd.Flags().BoolVar(&opts.anchoredOnly, "anchored-only", false, "leave out entries no anchor covers yet instead of failing")
	cmd.MarkFlagsOneRequired("job", "user")
	cmd.MarkFlagsMutuallyExclusive("job", "user")
	cmd.MarkFlagRequired("output")
	return cmd
}

// runAuditExport writes the bundle opts selects from m's stores, and a
// line saying what it wrote to status.
func runAuditExport(ctx context.Context, m *server.Main, stdout, status io.Writer, opts exportOptions) error {
	sel := bundle.Selection{Job: domain.JobID(opts.job), User: domain.UserID(opts.user), AnchoredOnly: opts.anchoredOnly}
	var err error
	if opts.from != "" {
		if sel.From, err = replay.ParseUntil(opts.from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if opts.to != "" {
		if sel.To, err = replay.ParseUntil(opts.to); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	if err := anchor.Migrate(ctx, m.DB); err != nil {
		return err
	}
	body, err := bundle.Export(ctx, m.Store, anchor.NewService(m.DB, m.Store, anchor.ServiceConfig{}), sel, time.Now())
	if err != nil {
		return err
	}
	file, err := bundle.Encode(body)
	if err != nil {
		return err
	}
	if opts.output == "-" {
		_, err = stdout.Write(file)
	} else {
		err = atomicfile.Write(opts.output, file, bundleFileMode)
	}
	if err != nil {
		return err
	}
	first, last := body.Entries[0].Position, body.Entries[len(body.Entries)-1].Position
	fmt.Fprintf(status, "wrote %s: %d entries (positions %d..%d), proven against anchors up to tree size %d on chain %d",
		opts.output, len(body.Entries), first, last, body.Latest.TreeSize, body.Latest.Anchor.ChainID)
	if body.Unanchored > 0 {
		fmt.Fprintf(status, "; %d newer entries left out (not anchored yet)", body.Unanchored)
	}
	fmt.Fprintf(status, "\ncheck it with: rendertrust audit verify %s --rpc <JSON-RPC URL of chain %d>\n", opts.output, body.Latest.Anchor.ChainID)
	return nil
}

func newAuditVerifyCommand() *cobra.Command {
	var rpcURL string
	var t trustFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE [--rpc URL --contract ADDR --chain-id N]",
		Short: "Verify an audit bundle offline, optionally against the chain",
		Long: `Verify an audit bundle without any RenderTrust database: the file's seal,
every entry's bytes, id and inclusion proof, that the entries are the subject's
and leave no gap in its stream, and the consistency of every anchored root with
the latest; with --rpc (any JSON-RPC endpoint of the anchors' chain) also every
anchor on the chain, in the contract --contract on the chain --chain-id (the
operator's published address, never the one in the bundle). Prints each check; exits non-zero if any fails. Without
--rpc the anchors are not checked, and the output says so. FILE "-" reads
standard input.`,
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			var trust proof.Trust
			if rpcURL != "" {
				var err error
				if trust, err = t.trust(); err != nil {
					return err
				}
			}
			return RunAuditVerify(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), args[0], rpcURL, trust, asJSON)
		},
	}
	cmd.Flags().StringVar(&rpcURL, "rpc", "", "JSON-RPC endpoint of the chain the anchors are on")
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// RunAuditVerify verifies the bundle at path ("-": stdin), against the
// chain at rpcURL unless it is "" (anchors in the trusted contract), and
// prints the report to out. It returns ErrBundleNotVerified if a check
// failed.
func RunAuditVerify(ctx context.Context, stdin io.Reader, out io.Writer, path, rpcURL string, trust proof.Trust, asJSON bool) error {
	file, err := readBundle(stdin, path)
	if err != nil {
		return err
	}
	var chain proof.Chain
	if rpcURL != "" {
		c, err := ethchain.Dial(ctx, rpcURL)
		if err != nil {
			return err
		}
		defer c.Close()
		chain = c
	}
	r, err := bundle.Verify(ctx, file, chain, trust)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if err := writeReport(out, r, asJSON); err != nil {
		return err
	}
	if !r.Verified {
		return ErrBundleNotVerified
	}
	return nil
}

func readBundle(stdin io.Reader, path string) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, bundle.FileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > bundle.FileBytesMax {
		return nil, fmt.Errorf("%s is larger than a bundle can be (%d bytes)", path, bundle.FileBytesMax)
	}
	return b, nil
}
