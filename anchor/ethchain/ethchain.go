// Package ethchain is the adapter to the EVM chain that holds the Anchor
// contract (contracts/Anchor.sol), and the one room of go-ethereum (with
// anchor/devchain and anchor/anchorcontract, and the wiring in cmd):
//
//   - Client reads anchored roots, receipts and block hashes; it implements
//     proof.Chain for verifiers.
//   - Writer signs and sends anchor transactions from one account.
//   - Sender implements anchor.Chain for the anchor worker: it gets one
//     anchor at a time mined and confirmed, or reports it lost, managing
//     the nonce, the fees, replacements of stuck transactions, rebroadcasts
//     and confirmations (or the finalized block), and keeps its signed
//     transactions in an AttemptStore across restarts.
//
// Everything it hands out is in plain types: [32]byte hashes and roots,
// proof.Address, proof.Receipt; go-ethereum's types stay inside, except
// where the Writer's own callers (Sender, deployment) need a transaction.
// It works the same over JSON-RPC (Dial), an in-process node, or
// ethclient/simulated (New).
package ethchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/rendertrust/rendertrust/anchor/anchorcontract"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// Limits.
const (
	// dialTimeout bounds connecting to a JSON-RPC endpoint and reading its
	// chain id.
	dialTimeout = 30 * time.Second
	// revertDataBytesMin is the length of a custom error's selector; shorter
	// revert data is not a custom error (and the generated UnpackError
	// panics on it).
	revertDataBytesMin = 4
)

// Sentinel errors of the Writer; test with errors.Is. Reads return
// anchor/proof's ErrNotFound, ErrIndexing and ErrNoContract.
var (
	// ErrSizeNotIncreasing is returned when the contract refuses an anchor
	// because its size is not above the latest anchored size.
	ErrSizeNotIncreasing = errors.New("ethchain: tree size not above the latest anchored size")
	// ErrNotWriter is returned when the contract refuses an anchor because
	// the sending account is not its writer.
	ErrNotWriter = errors.New("ethchain: account is not the contract's writer")
	// ErrNonceTooLow is returned by Send when the transaction's nonce was
	// already used.
	ErrNonceTooLow = errors.New("ethchain: nonce too low")
	// ErrUnderpriced is returned by Send when the node refuses a
	// transaction, or a replacement, for its fees.
	ErrUnderpriced = errors.New("ethchain: transaction underpriced")
)

// Backend is what Client needs from a chain connection. *ethclient.Client
// and ethclient/simulated's Client implement it.
type Backend interface {
	ethereum.ChainIDReader
	ethereum.BlockNumberReader
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	ethereum.ContractCaller
	ethereum.ChainStateReader
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	ethereum.TransactionReader
	ethereum.TransactionSender
	ethereum.GasEstimator
	ethereum.GasPricer1559
	ethereum.LogFilterer
}

// Client reads the chain and the Anchor contract. It is safe for concurrent
// use.
type Client struct {
	backend Backend
	chainID *big.Int
	abi     *anchorcontract.Anchor
	close   func()
}

// New returns a Client over backend, reading the chain id once. It returns
// the backend's error if that read fails.
func New(ctx context.Context, backend Backend) (*Client, error) {
	id, err := backend.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read chain id: %w", err)
	}
	if id.Sign() <= 0 || !id.IsUint64() {
		return nil, fmt.Errorf("chain id %s out of range", id)
	}
	return &Client{backend: backend, chainID: id, abi: anchorcontract.NewAnchor(), close: func() {}}, nil
}

// Dial connects to the JSON-RPC endpoint at url (http, ws or an IPC path)
// and returns a Client that Close disconnects. It returns an error if the
// endpoint cannot be reached or does not answer eth_chainId.
func Dial(ctx context.Context, url string) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	rc, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ec := ethclient.NewClient(rc)
	c, err := New(ctx, ec)
	if err != nil {
		ec.Close()
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	c.close = ec.Close
	return c, nil
}

// Close disconnects a Client made by Dial; for one made by New it does
// nothing, since the caller owns the backend.
func (c *Client) Close() { c.close() }

// Backend returns the connection the client reads through.
func (c *Client) Backend() Backend { return c.backend }

// ChainID returns the chain's id. It cannot fail.
func (c *Client) ChainID() uint64 { return c.chainID.Uint64() }

// Head returns the number of the latest block.
func (c *Client) Head(ctx context.Context) (uint64, error) {
	n, err := c.backend.BlockNumber(ctx)
	if err != nil {
		return 0, fmt.Errorf("read head block number: %w", err)
	}
	return n, nil
}

// Finalized returns the number of the latest block the chain calls
// finalized (the "finalized" block tag).
func (c *Client) Finalized(ctx context.Context) (uint64, error) {
	h, err := c.backend.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if err != nil {
		return 0, fmt.Errorf("read finalized block: %w", notFound(err))
	}
	return h.Number.Uint64(), nil
}

// BlockHash returns the hash of the canonical block at number. It returns
// an error wrapping proof.ErrNotFound if the chain is not that long.
func (c *Client) BlockHash(ctx context.Context, number uint64) ([32]byte, error) {
	h, err := c.backend.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
	if err != nil {
		return [32]byte{}, fmt.Errorf("read block %d: %w", number, notFound(err))
	}
	return h.Hash(), nil
}

// Receipt returns the receipt of the transaction tx in the canonical chain,
// with the Anchor contract's events it carries decoded. It returns an error
// wrapping proof.ErrNotFound while tx is not mined, or after a
// reorganisation dropped it, and one wrapping both proof.ErrIndexing and
// proof.ErrNotFound while the node is still indexing transactions.
func (c *Client) Receipt(ctx context.Context, tx [32]byte) (*proof.Receipt, error) {
	r, err := c.backend.TransactionReceipt(ctx, tx)
	if err != nil {
		// go-ethereum's TxIndexingError reaches JSON-RPC clients as text.
		if strings.Contains(err.Error(), "indexing is in progress") {
			return nil, fmt.Errorf("read receipt of %s: %w", proof.TxHex(tx), indexingError{err})
		}
		return nil, fmt.Errorf("read receipt of %s: %w", proof.TxHex(tx), notFound(err))
	}
	return ReceiptOf(r), nil
}

// ReceiptOf returns go-ethereum's receipt r in plain types, with the
// Anchor contract's Anchored events among its logs decoded. It cannot fail:
// logs that are not Anchored events are left out.
func ReceiptOf(r *types.Receipt) *proof.Receipt {
	out := &proof.Receipt{TxHash: r.TxHash, Status: r.Status, BlockHash: r.BlockHash, GasUsed: r.GasUsed}
	if r.BlockNumber != nil {
		out.BlockNumber = r.BlockNumber.Uint64()
	}
	abi := anchorcontract.NewAnchor()
	for _, l := range r.Logs {
		if ev, err := abi.UnpackAnchoredEvent(l); err == nil {
			out.Anchored = append(out.Anchored, proof.Anchored{Contract: proof.Address(l.Address), TreeSize: ev.TreeSize, Root: ev.Root})
		}
	}
	return out
}

// indexingError matches proof.ErrIndexing and proof.ErrNotFound.
type indexingError struct{ err error }

func (e indexingError) Error() string { return e.err.Error() }

func (e indexingError) Is(target error) bool {
	return target == proof.ErrIndexing || target == proof.ErrNotFound
}

// RootAt returns the root the contract holds for size at the latest block,
// zero if that size was never anchored.
func (c *Client) RootAt(ctx context.Context, contract proof.Address, size uint64) ([32]byte, error) {
	out, err := c.call(ctx, contract, c.abi.PackRootAt(size))
	if err != nil {
		return [32]byte{}, fmt.Errorf("rootAt(%d): %w", size, err)
	}
	root, err := c.abi.UnpackRootAt(out)
	if err != nil {
		return [32]byte{}, fmt.Errorf("rootAt(%d): decode %x: %w", size, out, err)
	}
	return root, nil
}

// LatestSize returns the largest tree size the contract holds a root for at
// the latest block, 0 before the first anchor.
func (c *Client) LatestSize(ctx context.Context, contract proof.Address) (uint64, error) {
	out, err := c.call(ctx, contract, c.abi.PackLatestSize())
	if err != nil {
		return 0, fmt.Errorf("latestSize(): %w", err)
	}
	size, err := c.abi.UnpackLatestSize(out)
	if err != nil {
		return 0, fmt.Errorf("latestSize(): decode %x: %w", out, err)
	}
	return size, nil
}

func (c *Client) call(ctx context.Context, contract proof.Address, data []byte) ([]byte, error) {
	to := common.Address(contract)
	out, err := c.backend.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		// A call to an address without code succeeds with no output.
		return nil, fmt.Errorf("%s: %w", contract, proof.ErrNoContract)
	}
	return out, nil
}

// FindAnchor returns the hash of the transaction whose Anchored event set
// size in contract, searching the canonical chain from block from on. It
// returns an error wrapping proof.ErrNotFound if there is none.
func (c *Client) FindAnchor(ctx context.Context, contract proof.Address, size, from uint64) ([32]byte, error) {
	event := c.abi.GetABI().Events["Anchored"]
	sizeTopic := common.BigToHash(new(big.Int).SetUint64(size))
	logs, err := c.backend.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		Addresses: []common.Address{common.Address(contract)},
		Topics:    [][]common.Hash{{event.ID}, {sizeTopic}},
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("find Anchored(%d) logs: %w", size, err)
	}
	for i := len(logs) - 1; i >= 0; i-- {
		if !logs[i].Removed {
			return logs[i].TxHash, nil
		}
	}
	return [32]byte{}, fmt.Errorf("Anchored(%d) in %s: %w", size, contract, proof.ErrNotFound)
}

// WaitMined polls every poll until tx has a receipt and returns it, or
// returns ctx's error.
func (c *Client) WaitMined(ctx context.Context, tx [32]byte, poll time.Duration) (*proof.Receipt, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		r, err := c.Receipt(ctx, tx)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, proof.ErrNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", proof.TxHex(tx), ctx.Err())
		case <-t.C:
		}
	}
}

// notFound maps go-ethereum's ethereum.NotFound to proof.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, ethereum.NotFound) {
		return fmt.Errorf("%w (%v)", proof.ErrNotFound, err)
	}
	return err
}

// revertError turns a call or estimation refused by the contract into
// ErrSizeNotIncreasing or ErrNotWriter, and returns other errors as they
// are.
func (c *Client) revertError(err error) error {
	data, ok := ethclient.RevertErrorData(err)
	if !ok || len(data) < revertDataBytesMin {
		return err
	}
	custom, uerr := c.abi.UnpackError(data)
	if uerr != nil {
		return err
	}
	switch e := custom.(type) {
	case *anchorcontract.AnchorSizeNotIncreasing:
		return fmt.Errorf("%w: size %d, latest %d", ErrSizeNotIncreasing, e.TreeSize, e.LatestSize)
	case *anchorcontract.AnchorNotWriter:
		return fmt.Errorf("%w: %s", ErrNotWriter, e.Caller)
	}
	return fmt.Errorf("contract refused: %T: %w", custom, err)
}
