// Package ethchain talks to the EVM chain that holds the Anchor contract
// (contracts/Anchor.sol) through go-ethereum's client: it reads anchored
// roots, receipts and block hashes for verifiers, and signs and sends anchor
// transactions for the anchor worker. It works the same over JSON-RPC (Dial),
// an in-process node, or ethclient/simulated (New).
//
// Hashes and addresses are go-ethereum's types; the Merkle root is the
// contract's bytes32.
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

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound is returned for a receipt, block or anchor the chain does
	// not have (yet, or any more after a reorganisation).
	ErrNotFound = errors.New("ethchain: not found on chain")
	// ErrIndexing is returned for a receipt asked of a node that is still
	// indexing transactions (after a start): it may have the receipt
	// later. Errors wrapping it also match ErrNotFound.
	ErrIndexing = errors.New("ethchain: node still indexing transactions")
	// ErrNoContract is returned by contract reads of an address that has
	// no code on the chain.
	ErrNoContract = errors.New("ethchain: no contract at the address")
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
// an error wrapping ErrNotFound if the chain is not that long.
func (c *Client) BlockHash(ctx context.Context, number uint64) (common.Hash, error) {
	h, err := c.backend.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
	if err != nil {
		return common.Hash{}, fmt.Errorf("read block %d: %w", number, notFound(err))
	}
	return h.Hash(), nil
}

// Receipt returns the receipt of the transaction tx in the canonical chain.
// It returns an error wrapping ErrNotFound while tx is not mined, or after
// a reorganisation dropped it, and one wrapping both ErrIndexing and
// ErrNotFound while the node is still indexing transactions.
func (c *Client) Receipt(ctx context.Context, tx common.Hash) (*types.Receipt, error) {
	r, err := c.backend.TransactionReceipt(ctx, tx)
	if err != nil {
		// go-ethereum's TxIndexingError reaches JSON-RPC clients as text.
		if strings.Contains(err.Error(), "indexing is in progress") {
			return nil, fmt.Errorf("read receipt of %s: %w", tx, indexingError{err})
		}
		return nil, fmt.Errorf("read receipt of %s: %w", tx, notFound(err))
	}
	return r, nil
}

// indexingError matches ErrIndexing and ErrNotFound.
type indexingError struct{ err error }

func (e indexingError) Error() string { return e.err.Error() }

func (e indexingError) Is(target error) bool { return target == ErrIndexing || target == ErrNotFound }

// RootAt returns the root the contract holds for size at the latest block,
// zero if that size was never anchored.
func (c *Client) RootAt(ctx context.Context, contract common.Address, size uint64) ([32]byte, error) {
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
func (c *Client) LatestSize(ctx context.Context, contract common.Address) (uint64, error) {
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

func (c *Client) call(ctx context.Context, contract common.Address, data []byte) ([]byte, error) {
	out, err := c.backend.CallContract(ctx, ethereum.CallMsg{To: &contract, Data: data}, nil)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		// A call to an address without code succeeds with no output.
		return nil, fmt.Errorf("%s: %w", contract, ErrNoContract)
	}
	return out, nil
}

// FindAnchor returns the hash of the transaction whose Anchored event set
// size in contract, searching the canonical chain from block from on. It
// returns an error wrapping ErrNotFound if there is none.
func (c *Client) FindAnchor(ctx context.Context, contract common.Address, size, from uint64) (common.Hash, error) {
	event := c.abi.GetABI().Events["Anchored"]
	sizeTopic := common.BigToHash(new(big.Int).SetUint64(size))
	logs, err := c.backend.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		Addresses: []common.Address{contract},
		Topics:    [][]common.Hash{{event.ID}, {sizeTopic}},
	})
	if err != nil {
		return common.Hash{}, fmt.Errorf("find Anchored(%d) logs: %w", size, err)
	}
	for i := len(logs) - 1; i >= 0; i-- {
		if !logs[i].Removed {
			return logs[i].TxHash, nil
		}
	}
	return common.Hash{}, fmt.Errorf("Anchored(%d) in %s: %w", size, contract, ErrNotFound)
}

// AnchoredIn reports whether receipt carries contract's Anchored event for
// size and root. It cannot fail.
func (c *Client) AnchoredIn(receipt *types.Receipt, contract common.Address, size uint64, root [32]byte) bool {
	for _, l := range receipt.Logs {
		if l.Address != contract {
			continue
		}
		ev, err := c.abi.UnpackAnchoredEvent(l)
		if err == nil && ev.TreeSize == size && ev.Root == root {
			return true
		}
	}
	return false
}

// WaitMined polls every poll until tx has a receipt and returns it, or
// returns ctx's error.
func (c *Client) WaitMined(ctx context.Context, tx common.Hash, poll time.Duration) (*types.Receipt, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		r, err := c.Receipt(ctx, tx)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", tx, ctx.Err())
		case <-t.C:
		}
	}
}

// notFound maps go-ethereum's ethereum.NotFound to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, ethereum.NotFound) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
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
