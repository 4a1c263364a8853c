package proof

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// The checks a verification makes, by the name Result.Checks uses. Names
// are part of the public format: only ever added.
const (
	CheckAlg         = "alg"           // alg is rfc9162-sha256
	CheckLeafHash    = "leaf_hash"     // SHA-256(0x00 ‖ entry) equals leaf_hash
	CheckEntryID     = "entry_id"      // the entry's "id" is entry_id
	CheckLeafIndex   = "leaf_index"    // leaf_index = position − 1, below tree_size
	CheckInclusion   = "inclusion"     // audit_path folds SHA-256(0x00 ‖ entry) into root
	CheckChainID     = "chain_id"      // the chain's eth_chainId and anchor.chain_id are the trusted chain id
	CheckContract    = "contract"      // anchor.contract is the trusted contract
	CheckRootOnChain = "root_on_chain" // the trusted contract's rootAt(tree_size) is root
	CheckAnchorTx    = "anchor_tx"     // the transaction succeeded and emitted Anchored(tree_size, root)
	CheckAnchorBlock = "anchor_block"  // it is in block block_number with hash block_hash, on the canonical chain

	CheckSizes        = "sizes"           // 0 < tree_size_1 ≤ tree_size_2
	CheckConsistency  = "consistency"     // consistency_path joins root_1 and root_2
	CheckRoot1OnChain = "root_1_on_chain" // as root_on_chain, for tree_size_1, root_1, anchor_1
	CheckAnchor1Tx    = "anchor_1_tx"
	CheckAnchor1Block = "anchor_1_block"
	CheckRoot2OnChain = "root_2_on_chain" // as root_on_chain, for tree_size_2, root_2, anchor_2
	CheckAnchor2Tx    = "anchor_2_tx"
	CheckAnchor2Block = "anchor_2_block"
)

// descriptions says what each check checks, for Result.Write.
var descriptions = map[string]string{
	CheckAlg:         "algorithm is " + Alg,
	CheckLeafHash:    "SHA-256(0x00 ‖ entry) equals leaf_hash",
	CheckEntryID:     "the entry's id is entry_id",
	CheckLeafIndex:   "leaf_index = position − 1 < tree_size",
	CheckInclusion:   "audit_path folds the entry's leaf hash into root (RFC 9162 §2.1.3.2)",
	CheckChainID:     "the RPC endpoint and the anchor are on the trusted chain",
	CheckContract:    "the anchor names the trusted contract",
	CheckRootOnChain: "the trusted contract's rootAt(tree_size) is root",
	CheckAnchorTx:    "the anchor transaction succeeded and emitted Anchored(tree_size, root)",
	CheckAnchorBlock: "the transaction is in block_number / block_hash, on the canonical chain",
	CheckSizes:       "0 < tree_size_1 ≤ tree_size_2",
	CheckConsistency: "consistency_path joins root_1 and root_2 (RFC 9162 §2.1.4.2)",

	CheckRoot1OnChain: "the trusted contract's rootAt(tree_size_1) is root_1",
	CheckAnchor1Tx:    "anchor_1's transaction succeeded and emitted Anchored(tree_size_1, root_1)",
	CheckAnchor1Block: "anchor_1's transaction is in its block, on the canonical chain",
	CheckRoot2OnChain: "the trusted contract's rootAt(tree_size_2) is root_2",
	CheckAnchor2Tx:    "anchor_2's transaction succeeded and emitted Anchored(tree_size_2, root_2)",
	CheckAnchor2Block: "anchor_2's transaction is in its block, on the canonical chain",
}

// Trust is what a verifier trusts about the chain: the chain id and the
// address of the Anchor contract the operator publishes out of band (its
// README, website, a signed release). It is never read from the proof:
// anyone can deploy a copy of the contract, anchor a forged log in it and
// name that copy in a proof. Every anchor a proof names must be on this
// chain and in this contract, and the roots are read from this contract.
type Trust struct {
	ChainID  uint64
	Contract Address
}

// Result is a verification's outcome, the answer of
// GET /api/v1/ledger/{entry_id}/verify:
//
//	{"verified": true, "checks": {"alg": true, "leaf_hash": true, …}}
//
// Verified is true only if every check passed. Details says, for each
// failed check, what broke.
type Result struct {
	Verified bool              `json:"verified"`
	Checks   map[string]bool   `json:"checks"`
	Details  map[string]string `json:"details,omitempty"`
	order    []string
}

func newResult() *Result {
	return &Result{Verified: true, Checks: map[string]bool{}}
}

// Add records the outcome of the check name; detail says what broke when
// ok is false. Adding a check that failed before keeps it failed.
func (r *Result) Add(name string, ok bool, detail string) {
	if prev, seen := r.Checks[name]; seen {
		ok = ok && prev
	} else {
		r.order = append(r.order, name)
	}
	r.Checks[name] = ok
	if !ok {
		r.Verified = false
		if r.Details == nil {
			r.Details = map[string]string{}
		}
		if detail != "" && r.Details[name] == "" {
			r.Details[name] = detail
		}
	}
}

// AddErr records the check name as passed when err is nil, else as failed
// with err's text as the detail.
func (r *Result) AddErr(name string, err error) {
	if err != nil {
		r.Add(name, false, err.Error())
		return
	}
	r.Add(name, true, "")
}

// Failed returns the names of the failed checks in the order they were
// made. It cannot fail.
func (r *Result) Failed() []string {
	var out []string
	for _, name := range r.names() {
		if !r.Checks[name] {
			out = append(out, name)
		}
	}
	return out
}

// names returns the checks in the order they were made, or sorted for a
// Result decoded from JSON.
func (r *Result) names() []string {
	if len(r.order) == len(r.Checks) {
		return r.order
	}
	return slices.Sorted(maps.Keys(r.Checks))
}

// Write prints one line per check, "ok" or "FAILED", what it checks and,
// for a failure, what broke, then the verdict. It returns w's error.
func (r *Result) Write(w io.Writer) error {
	var b strings.Builder
	for _, name := range r.names() {
		mark := "ok    "
		if !r.Checks[name] {
			mark = "FAILED"
		}
		fmt.Fprintf(&b, "%s %-14s %s", mark, name, descriptions[name])
		if d := r.Details[name]; d != "" {
			fmt.Fprintf(&b, ": %s", d)
		}
		b.WriteByte('\n')
	}
	if r.Verified {
		b.WriteString("verified\n")
	} else {
		fmt.Fprintf(&b, "NOT verified: %s failed\n", strings.Join(r.Failed(), ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// VerifyInclusion checks p completely: the entry's bytes against its leaf
// hash and id, the audit path against the root, and the root against the
// anchor in the trusted contract on the trusted chain (an anchor naming
// another chain or contract fails). Every failed check is in the Result;
// the error is only for a chain that could not be asked (an RPC failure,
// not a missing transaction or root, which are failed checks).
func VerifyInclusion(ctx context.Context, chain Chain, trust Trust, p *Inclusion) (*Result, error) {
	r := newResult()
	r.Add(CheckAlg, p.Alg == Alg, fmt.Sprintf("alg is %q", p.Alg))

	leaf := merkle.HashLeaf(p.Entry)
	r.Add(CheckLeafHash, leaf == p.LeafHash, fmt.Sprintf("SHA-256(0x00 ‖ entry) is %x, leaf_hash is %s", leaf, p.LeafHash))
	id, err := entryID(p.Entry)
	r.Add(CheckEntryID, err == nil && id == p.EntryID, idDetail(id, p.EntryID, err))
	r.Add(CheckLeafIndex, p.Position >= 1 && p.LeafIndex == p.Position-1 && p.LeafIndex < p.TreeSize,
		fmt.Sprintf("position %d, leaf_index %d, tree_size %d", p.Position, p.LeafIndex, p.TreeSize))
	err = merkle.VerifyInclusion(leaf, p.LeafIndex, p.TreeSize, arrays(p.AuditPath), p.Root)
	r.AddErr(CheckInclusion, err)

	if err := checkAnchor(ctx, chain, trust, r, inclusionAnchor, p.Anchor, p.TreeSize, p.Root); err != nil {
		return nil, err
	}
	return r, nil
}

// VerifyConsistency checks c completely: the path between the two roots
// and each root against its anchor in the trusted contract on the trusted
// chain. Errors as for VerifyInclusion.
func VerifyConsistency(ctx context.Context, chain Chain, trust Trust, c *Consistency) (*Result, error) {
	r := newResult()
	r.Add(CheckAlg, c.Alg == Alg, fmt.Sprintf("alg is %q", c.Alg))
	r.Add(CheckSizes, c.TreeSize1 > 0 && c.TreeSize1 <= c.TreeSize2,
		fmt.Sprintf("tree_size_1 %d, tree_size_2 %d", c.TreeSize1, c.TreeSize2))
	err := merkle.VerifyConsistency(c.TreeSize1, c.TreeSize2, arrays(c.ConsistencyPath), c.Root1, c.Root2)
	r.AddErr(CheckConsistency, err)
	if err := checkAnchor(ctx, chain, trust, r, anchor1, c.Anchor1, c.TreeSize1, c.Root1); err != nil {
		return nil, err
	}
	if err := checkAnchor(ctx, chain, trust, r, anchor2, c.Anchor2, c.TreeSize2, c.Root2); err != nil {
		return nil, err
	}
	return r, nil
}

// anchorChecks names the chain checks of one anchor.
type anchorChecks struct{ root, tx, block string }

var (
	inclusionAnchor = anchorChecks{CheckRootOnChain, CheckAnchorTx, CheckAnchorBlock}
	anchor1         = anchorChecks{CheckRoot1OnChain, CheckAnchor1Tx, CheckAnchor1Block}
	anchor2         = anchorChecks{CheckRoot2OnChain, CheckAnchor2Tx, CheckAnchor2Block}
)

// checkAnchor adds the chain checks of one anchor to r. The roots and
// the logs are read from the trusted contract, whatever a names: a names
// the chain and contract only to be compared with trust.
func checkAnchor(ctx context.Context, chain Chain, trust Trust, r *Result, names anchorChecks, a Anchor, size uint64, root Hash) error {
	r.Add(CheckChainID, chain.ChainID() == trust.ChainID && a.ChainID == trust.ChainID,
		fmt.Sprintf("trusted chain %d, endpoint serves chain %d, anchor names chain %d", trust.ChainID, chain.ChainID(), a.ChainID))
	named, ok := ParseAddress(a.Contract)
	r.Add(CheckContract, ok && named == trust.Contract, fmt.Sprintf("anchor names contract %q, the trusted contract is %s", truncate(a.Contract), trust.Contract))
	contract := trust.Contract
	onChain, err := chain.RootAt(ctx, contract, size)
	if errors.Is(err, ErrNoContract) {
		r.Add(names.root, false, fmt.Sprintf("no contract at %s on chain %d", contract, chain.ChainID()))
		r.Add(names.tx, false, "no contract")
		r.Add(names.block, false, "no contract")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read rootAt(%d): %w", size, err)
	}
	r.Add(names.root, onChain == root, rootDetail(onChain, root, size))

	tx, ok := parseHash(a.TxHash)
	if !ok {
		r.Add(names.tx, false, fmt.Sprintf("tx_hash %q is not a hash", a.TxHash))
		r.Add(names.block, false, "no transaction")
		return nil
	}
	receipt, err := chain.Receipt(ctx, tx)
	if errors.Is(err, ErrIndexing) {
		return fmt.Errorf("the node cannot tell yet, try again: %w", err)
	}
	if errors.Is(err, ErrNotFound) {
		r.Add(names.tx, false, fmt.Sprintf("transaction %s is not on the chain", TxHex(tx)))
		r.Add(names.block, false, "no receipt")
		return nil
	}
	if err != nil {
		return err
	}
	r.Add(names.tx, receipt.Succeeded() && receipt.anchoredIn(contract, size, root),
		fmt.Sprintf("transaction %s (status %d) emitted no Anchored(%d, %s) from %s", TxHex(tx), receipt.Status, size, root, contract))
	return checkBlock(ctx, chain, r, names.block, a, receipt)
}

// checkBlock checks that receipt is in the block a names and that the
// block is canonical.
func checkBlock(ctx context.Context, chain Chain, r *Result, name string, a Anchor, receipt *Receipt) error {
	blockHash, ok := parseHash(a.BlockHash)
	if !ok {
		r.Add(name, false, fmt.Sprintf("block_hash %q is not a hash", a.BlockHash))
		return nil
	}
	if receipt.BlockNumber != a.BlockNumber || receipt.BlockHash != blockHash {
		r.Add(name, false, fmt.Sprintf("transaction is in block %d (%s), proof names block %d (%s)",
			receipt.BlockNumber, TxHex(receipt.BlockHash), a.BlockNumber, TxHex(blockHash)))
		return nil
	}
	canonical, err := chain.BlockHash(ctx, a.BlockNumber)
	if errors.Is(err, ErrNotFound) {
		r.Add(name, false, fmt.Sprintf("the chain has no block %d", a.BlockNumber))
		return nil
	}
	if err != nil {
		return err
	}
	r.Add(name, canonical == blockHash, fmt.Sprintf("canonical block %d is %s", a.BlockNumber, TxHex(canonical)))
	return nil
}

// entryID returns the "id" member of an entry's JSON envelope.
func entryID(entry []byte) (string, error) {
	var env struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(entry, &env); err != nil {
		return "", fmt.Errorf("entry is not a JSON envelope: %w", err)
	}
	if env.ID == nil {
		return "", errors.New("entry has no id")
	}
	return *env.ID, nil
}

func idDetail(got, want string, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("entry's id is %q, proof is for %q", truncate(got), truncate(want))
}

func rootDetail(onChain [32]byte, root Hash, size uint64) string {
	if onChain == ([32]byte{}) {
		return fmt.Sprintf("the contract holds no root for size %d", size)
	}
	return fmt.Sprintf("the contract holds %x for size %d, proof says %s", onChain, size, root)
}

// parseHash decodes "0x" and 64 hex digits, as TxHex writes them.
func parseHash(s string) ([32]byte, bool) {
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		return [32]byte{}, false
	}
	var h Hash
	if h.UnmarshalText([]byte(s[2:])) != nil {
		return [32]byte{}, false
	}
	return h, true
}
