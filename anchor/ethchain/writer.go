package ethchain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// Gas limits. Estimates get a margin because the state the estimate ran
// against may change before the transaction is mined; an anchor's execution
// gas is constant, so the margin never has to grow.
const (
	gasMarginPercent = 25
	// anchorGasMax refuses an estimate that would make one anchor cost more
	// than any version of the contract ever could.
	anchorGasMax = 1_000_000
	// deployGasMax bounds the contract's deployment.
	deployGasMax = 5_000_000
)

// Writer signs and sends transactions to one Anchor contract from one
// account. It is safe for concurrent use, but the nonces it is given are
// the caller's to manage.
type Writer struct {
	*Client
	contract common.Address
	key      *ecdsa.PrivateKey
	from     common.Address
	signer   types.Signer
}

// Writer returns a Writer that sends from key's account to contract.
func (c *Client) Writer(contract common.Address, key *ecdsa.PrivateKey) *Writer {
	return &Writer{
		Client:   c,
		contract: contract,
		key:      key,
		from:     crypto.PubkeyToAddress(key.PublicKey),
		signer:   types.LatestSignerForChainID(c.chainID),
	}
}

// Contract returns the contract's address. It cannot fail.
func (w *Writer) Contract() proof.Address { return proof.Address(w.contract) }

// From returns the sending account's address. It cannot fail.
func (w *Writer) From() common.Address { return w.from }

// Nonce returns the sending account's nonce at the latest block: the nonce
// of its next transaction once everything it sent so far is mined.
func (w *Writer) Nonce(ctx context.Context) (uint64, error) {
	n, err := w.backend.NonceAt(ctx, w.from, nil)
	if err != nil {
		return 0, fmt.Errorf("read nonce of %s: %w", w.from, err)
	}
	return n, nil
}

// Fees returns the fees a new transaction should offer now: the node's
// suggested priority fee (tip) and a fee cap of twice the latest base fee
// plus the tip, which stays valid through six full blocks of base-fee rises.
func (w *Writer) Fees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	tip, err = w.backend.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("suggest tip: %w", err)
	}
	head, err := w.backend.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read latest header: %w", err)
	}
	baseFee := head.BaseFee
	if baseFee == nil {
		return nil, nil, errors.New("chain has no base fee (EIP-1559 not active)")
	}
	feeCap = new(big.Int).Add(new(big.Int).Lsh(baseFee, 1), tip)
	return tip, feeCap, nil
}

// AnchorTx is what SignAnchor needs to build one anchor transaction.
type AnchorTx struct {
	Root        [32]byte
	Size        uint64
	Nonce       uint64
	Tip, FeeCap *big.Int
	// Gas is the gas limit; 0 estimates it (a revert then fails the call).
	Gas uint64
}

// SignAnchor builds and signs the EIP-1559 transaction calling
// anchor(Root, Size). With a > 0 Gas it does not contact the chain. It
// returns an error wrapping ErrSizeNotIncreasing or ErrNotWriter when gas
// estimation shows the contract would refuse it.
func (w *Writer) SignAnchor(ctx context.Context, a AnchorTx) (*types.Transaction, error) {
	data := w.abi.PackAnchor(a.Root, a.Size)
	gas := a.Gas
	if gas == 0 {
		var err error
		if gas, err = w.estimate(ctx, &w.contract, data, anchorGasMax); err != nil {
			return nil, fmt.Errorf("anchor(size %d): %w", a.Size, err)
		}
	}
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID:   w.chainID,
		Nonce:     a.Nonce,
		GasTipCap: a.Tip,
		GasFeeCap: a.FeeCap,
		Gas:       gas,
		To:        &w.contract,
		Data:      data,
	})
	signed, err := types.SignTx(tx, w.signer, w.key)
	if err != nil {
		return nil, fmt.Errorf("sign anchor(size %d): %w", a.Size, err)
	}
	return signed, nil
}

// estimate returns the estimated gas of a call from the writer with the
// margin added, refusing estimates above limit.
func (w *Writer) estimate(ctx context.Context, to *common.Address, data []byte, limit uint64) (uint64, error) {
	gas, err := w.backend.EstimateGas(ctx, ethereum.CallMsg{From: w.from, To: to, Data: data})
	if err != nil {
		return 0, fmt.Errorf("estimate gas: %w", w.revertError(err))
	}
	gas += gas * gasMarginPercent / 100
	if gas > limit {
		return 0, fmt.Errorf("estimated gas %d above the limit %d", gas, limit)
	}
	return gas, nil
}

// Send submits a signed transaction. A node that already has it counts as
// success, so a transaction may be sent again after a node restart or an
// RPC outage. It returns an error wrapping ErrNonceTooLow or ErrUnderpriced
// when the node refuses it for those reasons.
func (w *Writer) Send(ctx context.Context, tx *types.Transaction) error {
	err := w.backend.SendTransaction(ctx, tx)
	if err == nil {
		return nil
	}
	// JSON-RPC carries the node's reasons as text only; these are
	// go-ethereum's txpool and core error messages.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "already known"):
		return nil
	case strings.Contains(msg, "nonce too low"):
		return fmt.Errorf("send %s: %w: %v", tx.Hash(), ErrNonceTooLow, err)
	case strings.Contains(msg, "underpriced"):
		return fmt.Errorf("send %s: %w: %v", tx.Hash(), ErrUnderpriced, err)
	}
	return fmt.Errorf("send %s: %w", tx.Hash(), err)
}

// Deploy sends the transaction that deploys an Anchor contract owned by
// key's account, with writer as its writer, and returns the contract's
// address and the transaction's hash. The caller waits for it to be mined
// (WaitMined). It returns the chain's error if estimating or sending fails.
func Deploy(ctx context.Context, c *Client, key *ecdsa.PrivateKey, writer common.Address) (common.Address, common.Hash, error) {
	w := c.Writer(common.Address{}, key)
	data := append(common.FromHex(anchorcontract.AnchorMetaData.Bin), c.abi.PackConstructor(writer)...)
	gas, err := w.estimate(ctx, nil, data, deployGasMax)
	if err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("deploy Anchor: %w", err)
	}
	nonce, err := c.backend.PendingNonceAt(ctx, w.from)
	if err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("deploy Anchor: read nonce: %w", err)
	}
	tip, feeCap, err := w.Fees(ctx)
	if err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("deploy Anchor: %w", err)
	}
	tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{
		ChainID: c.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, Data: data,
	}), w.signer, key)
	if err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("deploy Anchor: sign: %w", err)
	}
	if err := w.Send(ctx, tx); err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("deploy Anchor: %w", err)
	}
	return crypto.CreateAddress(w.from, nonce), tx.Hash(), nil
}

// LoadKey reads a private key stored as 64 hex digits (go-ethereum's
// crypto.SaveECDSA format, as `geth account` or `openssl rand -hex 32`
// produce). It refuses a file that other users may read.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by other users (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	key, err := crypto.LoadECDSA(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}
