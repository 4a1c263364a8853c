package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// proofFileBytesMax bounds a proof file: an entry is at most 256 KiB,
// base64 makes it a third larger, and the path is a few KiB.
const proofFileBytesMax = 1 << 20

// ErrNotVerified makes `verify` exit non-zero when a check failed.
var ErrNotVerified = errors.New("proof NOT verified")

// newVerifyCommand returns `rendertrust verify --proof FILE --rpc URL
// --contract ADDR --chain-id N`, the offline verifier: it needs no
// database, only the proof document (from GET
// /api/v1/ledger/{entry_id}/proof or /api/v1/ledger/consistency), any
// JSON-RPC endpoint of the chain, and the contract and chain id the
// auditor trusts (published by the operator, never taken from the proof).
func newVerifyCommand() *cobra.Command {
	var proofPath, rpcURL string
	var t trustFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --proof FILE --rpc URL --contract ADDR --chain-id N",
		Short: "Verify an audit proof offline, against the chain",
		Long: `Verify an inclusion proof (GET /api/v1/ledger/{entry_id}/proof) or a
consistency proof (GET /api/v1/ledger/consistency?from=&to=) without any
RenderTrust database: recompute the leaf hash from the entry's bytes, fold the
audit path into the root, read rootAt(tree_size) from the anchor contract over
JSON-RPC, and check the anchor transaction's receipt and block. Every anchor
must be in the contract --contract on the chain --chain-id: take them from the
operator's published address, never from the proof (anyone can deploy a copy of
the contract and anchor a forged log in it). Prints each check; exits non-zero
if any fails. FILE "-" reads standard input.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true, // a failed check or deployment is not a usage error
		RunE: func(cmd *cobra.Command, _ []string) error {
			trust, err := t.trust()
			if err != nil {
				return err
			}
			return RunVerify(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), proofPath, rpcURL, trust, asJSON)
		},
	}
	cmd.Flags().StringVar(&proofPath, "proof", "", "the proof document (JSON), or - for standard input")
	cmd.Flags().StringVar(&rpcURL, "rpc", "", "JSON-RPC endpoint of the chain the proof's anchor is on")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print the result as JSON ({"verified": …, "checks": {…}})`)
	t.register(cmd)
	cmd.MarkFlagRequired("proof")
	cmd.MarkFlagRequired("rpc")
	cmd.MarkFlagRequired("contract")
	cmd.MarkFlagRequired("chain-id")
	return cmd
}

// trustFlags are the --contract and --chain-id flags: what a verifier
// trusts, learned out of band.
type trustFlags struct {
	contract string
	chainID  uint64
}

func (t *trustFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.contract, "contract", "", "the Anchor contract's address, as the operator publishes it (never the one in the proof)")
	cmd.Flags().Uint64Var(&t.chainID, "chain-id", 0, "the id of the chain the operator anchors on")
}

// trust returns the flags as a proof.Trust, or an error naming the flag
// that is not valid.
func (t *trustFlags) trust() (proof.Trust, error) {
	contract, ok := proof.ParseAddress(t.contract)
	if !ok {
		return proof.Trust{}, fmt.Errorf("--contract %q is not an address (0x and 40 hex digits)", t.contract)
	}
	if t.chainID == 0 {
		return proof.Trust{}, errors.New("--chain-id must be the chain's id, not 0")
	}
	return proof.Trust{ChainID: t.chainID, Contract: contract}, nil
}

// RunVerify verifies the proof at path against the chain at rpcURL and
// the trusted contract, and prints the result to out. It returns
// ErrNotVerified if a check failed.
func RunVerify(ctx context.Context, stdin io.Reader, out io.Writer, path, rpcURL string, trust proof.Trust, asJSON bool) error {
	doc, err := readProof(stdin, path)
	if err != nil {
		return err
	}
	chain, err := ethchain.Dial(ctx, rpcURL)
	if err != nil {
		return err
	}
	defer chain.Close()
	var res *proof.Result
	switch p := doc.(type) {
	case *proof.Inclusion:
		res, err = proof.VerifyInclusion(ctx, chain, trust, p)
	case *proof.Consistency:
		res, err = proof.VerifyConsistency(ctx, chain, trust, p)
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := writeReport(out, res, asJSON); err != nil {
		return err
	}
	if !res.Verified {
		return ErrNotVerified
	}
	return nil
}

// writeReport prints a verifier's report to out: indented JSON, or its text.
func writeReport(out io.Writer, r interface{ Write(io.Writer) error }, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.Write(out)
}

// readProof reads an inclusion or a consistency proof from path ("-" for
// stdin), telling them apart by their fields.
func readProof(stdin io.Reader, path string) (any, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, proofFileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("read proof: %w", err)
	}
	if len(b) > proofFileBytesMax {
		return nil, fmt.Errorf("proof %s is larger than %d bytes", path, proofFileBytesMax)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("proof %s is not a JSON object: %w", path, err)
	}
	var doc any
	switch {
	case fields["consistency_path"] != nil:
		doc = new(proof.Consistency)
	case fields["audit_path"] != nil:
		doc = new(proof.Inclusion)
	default:
		return nil, fmt.Errorf("proof %s has neither audit_path nor consistency_path", path)
	}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, fmt.Errorf("proof %s: %w", path, err)
	}
	return doc, nil
}
