package ethchain

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/proof"
)

// Defaults of SenderConfig's zero fields.
const (
	DefaultConfirmations = 1
	DefaultPollInterval  = time.Second
	DefaultStuckAfter    = 2 * time.Minute
)

// DefaultFeeCapMax is the highest fee cap per gas a Sender offers unless
// configured otherwise: 500 gwei.
var DefaultFeeCapMax = new(big.Int).Mul(big.NewInt(500), big.NewInt(params.GWei))

// Limits of the Sender.
const (
	// feeBumpPercent is how much a replacement raises both the tip and the
	// fee cap (go-ethereum's txpool needs 10%; one wei more is added).
	feeBumpPercent = 10
	// nonceGonePollsMax is how many polls in a row may find the flight's
	// nonce used without a receipt of ours before the flight is dropped.
	nonceGonePollsMax = 3
)

// SenderConfig configures a Sender. Zero fields take the Default values.
type SenderConfig struct {
	// Confirmations is how many blocks, the one holding the anchor
	// included, must be on the chain before the anchor is reported mined.
	// Use a dozen or more on public chains, or Finalized.
	Confirmations uint64
	// Finalized waits for the chain's "finalized" block to reach the
	// anchor instead of counting Confirmations.
	Finalized bool
	// PollInterval is how often the Sender is polled (the worker's poll
	// interval); a sent transaction is sent again unchanged after a
	// quarter of StuckAfter, but never sooner than this.
	PollInterval time.Duration
	// StuckAfter is how long a transaction may stay unmined before it is
	// replaced with a tip and a fee cap each raised by at least 10%.
	StuckAfter time.Duration
	// FeeCapMax is the most wei per gas the Sender ever offers.
	FeeCapMax *big.Int
	// Logger receives the Sender's log; nil discards it.
	Logger *slog.Logger
	// Now is the Sender's clock; nil is time.Now.
	Now func() time.Time
}

func (c SenderConfig) withDefaults() SenderConfig {
	if c.Confirmations == 0 {
		c.Confirmations = DefaultConfirmations
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = DefaultStuckAfter
	}
	if c.FeeCapMax == nil || c.FeeCapMax.Sign() <= 0 {
		c.FeeCapMax = DefaultFeeCapMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Node is what a Sender needs of the chain: *Writer implements it (tests
// wrap it to stage outages). Reads that find nothing return errors
// wrapping proof.ErrNotFound.
type Node interface {
	ChainID() uint64
	Contract() proof.Address
	Nonce(ctx context.Context) (uint64, error)
	Fees(ctx context.Context) (tip, feeCap *big.Int, err error)
	SignAnchor(ctx context.Context, a AnchorTx) (*types.Transaction, error)
	Send(ctx context.Context, tx *types.Transaction) error
	Receipt(ctx context.Context, tx [32]byte) (*proof.Receipt, error)
	Head(ctx context.Context) (uint64, error)
	Finalized(ctx context.Context) (uint64, error)
	BlockHash(ctx context.Context, number uint64) ([32]byte, error)
	LatestSize(ctx context.Context, contract proof.Address) (uint64, error)
	RootAt(ctx context.Context, contract proof.Address, size uint64) ([32]byte, error)
	FindAnchor(ctx context.Context, contract proof.Address, size, from uint64) ([32]byte, error)
}

var _ Node = (*Writer)(nil)

// AttemptStore keeps the signed transactions of the anchor in flight, so
// that a restarted Sender knows every transaction that may be mined;
// *anchor.Attempts implements it.
type AttemptStore interface {
	Save(ctx context.Context, a anchor.Attempt) error
	Load(ctx context.Context) ([]anchor.Attempt, error)
	Clear(ctx context.Context) error
}

// Sender gets one anchor at a time mined and confirmed, or reports it
// lost: it picks the nonce and the fees, saves each signed transaction
// before sending it, sends it again when the node may have lost it,
// replaces it when it is stuck, and waits for the confirmations (or the
// finalized block) on the canonical chain. It implements anchor.Chain.
//
// One Sender per contract and key: it keeps its own nonces. It is not safe
// for concurrent use; one anchor.Worker drives it.
type Sender struct {
	node     Node
	attempts AttemptStore
	cfg      SenderConfig
	logger   *slog.Logger
	flight   *flight // the anchor followed, if any
}

var _ anchor.Chain = (*Sender)(nil)

// flight is one anchor on its way: the transactions signed for it (all
// with one nonce, each replacing the one before), or, for an anchor found
// on the chain but not recorded, only found.
type flight struct {
	size        uint64
	root        [32]byte
	nonce       uint64
	txs         []*types.Transaction
	found       [32]byte
	startedAt   time.Time // first send
	sentAt      time.Time // latest replacement
	broadcastAt time.Time // latest (re)send of the latest transaction
	nonceGone   int
}

// NewSender returns a Sender that anchors through node and keeps its
// transactions in attempts.
func NewSender(node Node, attempts AttemptStore, cfg SenderConfig) *Sender {
	cfg = cfg.withDefaults()
	return &Sender{node: node, attempts: attempts, cfg: cfg, logger: cfg.Logger}
}

// ChainID returns the chain's id. It cannot fail.
func (s *Sender) ChainID() uint64 { return s.node.ChainID() }

// Contract returns the contract anchored to. It cannot fail.
func (s *Sender) Contract() proof.Address { return s.node.Contract() }

// Head returns the number of the latest block.
func (s *Sender) Head(ctx context.Context) (uint64, error) { return s.node.Head(ctx) }

// Receipt returns tx's receipt in the canonical chain, as Client.Receipt.
func (s *Sender) Receipt(ctx context.Context, tx [32]byte) (*proof.Receipt, error) {
	return s.node.Receipt(ctx, tx)
}

// LatestSize returns the contract's largest anchored size, as
// Client.LatestSize.
func (s *Sender) LatestSize(ctx context.Context, contract proof.Address) (uint64, error) {
	return s.node.LatestSize(ctx, contract)
}

// RootAt returns the contract's root for size, as Client.RootAt.
func (s *Sender) RootAt(ctx context.Context, contract proof.Address, size uint64) ([32]byte, error) {
	return s.node.RootAt(ctx, contract, size)
}

// FindAnchor returns the transaction that anchored size, as
// Client.FindAnchor.
func (s *Sender) FindAnchor(ctx context.Context, contract proof.Address, size, from uint64) ([32]byte, error) {
	return s.node.FindAnchor(ctx, contract, size, from)
}

// Resume follows the transactions an earlier run saved and did not see
// confirmed, as one flight. It returns the store's error, or an error for
// a saved transaction it cannot decode.
func (s *Sender) Resume(ctx context.Context) (anchor.Flight, bool, error) {
	saved, err := s.attempts.Load(ctx)
	if err != nil {
		return anchor.Flight{}, false, err
	}
	var f *flight
	for _, a := range saved {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(a.Raw); err != nil {
			return anchor.Flight{}, false, fmt.Errorf("decode anchor transaction %s: %w", proof.TxHex(a.TxHash), err)
		}
		if f == nil {
			f = &flight{startedAt: a.SentAt}
		}
		f.size, f.root, f.nonce, f.sentAt = a.Size, a.Root, a.Nonce, a.SentAt
		f.txs = append(f.txs, tx)
	}
	if f == nil {
		return anchor.Flight{}, false, nil
	}
	s.logger.Info("anchor sender: resuming unconfirmed anchor", "size", f.size, "transactions", len(f.txs))
	s.flight = f
	return anchor.Flight{Size: f.size, Root: f.root, StartedAt: f.startedAt}, true, nil
}

// Anchor signs, saves and sends a new anchor transaction, and follows it.
// sent is false, with no error, if the contract would refuse the size as
// not above its latest.
func (s *Sender) Anchor(ctx context.Context, size uint64, root [32]byte) (bool, error) {
	nonce, err := s.node.Nonce(ctx)
	if err != nil {
		return false, err
	}
	tip, feeCap, err := s.node.Fees(ctx)
	if err != nil {
		return false, err
	}
	feeCap = bigMin(feeCap, s.cfg.FeeCapMax)
	tip = bigMin(tip, feeCap)
	tx, err := s.node.SignAnchor(ctx, AnchorTx{Root: root, Size: size, Nonce: nonce, Tip: tip, FeeCap: feeCap})
	if errors.Is(err, ErrSizeNotIncreasing) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := s.cfg.Now()
	f := &flight{size: size, root: root, nonce: nonce, startedAt: now}
	if err := s.persist(ctx, f, tx, now); err != nil {
		return false, err
	}
	s.flight = f
	s.logger.Info("anchor sender: sending", "size", size, "root", hex.EncodeToString(root[:]), "tx", tx.Hash(), "nonce", nonce)
	return true, s.broadcast(ctx, f)
}

// Follow follows tx, found on the chain, as the anchor of root at size.
func (s *Sender) Follow(size uint64, root [32]byte, tx [32]byte) {
	s.flight = &flight{size: size, root: root, found: tx}
}

// Forget stops following the anchor and deletes its saved transactions.
// It returns the store's error.
func (s *Sender) Forget(ctx context.Context) error {
	if err := s.attempts.Clear(ctx); err != nil {
		return err
	}
	s.flight = nil
	return nil
}

// persist records tx as f's newest attempt, in memory and in the store,
// before it is sent, so that a restart knows every transaction that may
// be mined.
func (s *Sender) persist(ctx context.Context, f *flight, tx *types.Transaction, now time.Time) error {
	raw, err := tx.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode anchor transaction: %w", err)
	}
	err = s.attempts.Save(ctx, anchor.Attempt{TxHash: tx.Hash(), Nonce: f.nonce, Size: f.size, Root: f.root, Raw: raw, SentAt: now})
	if err != nil {
		return err
	}
	f.txs = append(f.txs, tx)
	f.sentAt = now
	return nil
}

// broadcast sends f's newest transaction. A node that refuses it as
// underpriced holds another transaction of this account at the nonce, so
// the flight is marked for replacement at once.
func (s *Sender) broadcast(ctx context.Context, f *flight) error {
	f.broadcastAt = s.cfg.Now()
	err := s.node.Send(ctx, f.txs[len(f.txs)-1])
	switch {
	case errors.Is(err, ErrUnderpriced):
		s.logger.Warn("anchor sender: transaction underpriced; replacing", "err", err)
		f.sentAt = time.Time{}
		return nil
	case errors.Is(err, ErrNonceTooLow):
		return nil // Poll sees the nonce used and finds out by what
	}
	return err
}

// Poll looks once at the anchor followed: it reports it mined once it has
// its confirmations on the canonical chain, replaces it when stuck, sends
// it again when the node may have lost it, and reports it lost when its
// nonce was used by something else, the contract refused it while the
// size is not anchored (then with an error too), or a transaction found on
// the chain left it. With nothing followed it reports Lost. It returns the
// chain's or the store's error.
func (s *Sender) Poll(ctx context.Context) (anchor.Progress, error) {
	f := s.flight
	if f == nil {
		return anchor.Progress{Lost: true}, nil
	}
	receipt, err := s.minedReceipt(ctx, f)
	if err != nil {
		return anchor.Progress{}, err
	}
	if receipt != nil {
		return s.mined(ctx, f, receipt)
	}
	if len(f.txs) == 0 { // found on chain, and gone again: decide afresh
		s.flight = nil
		return anchor.Progress{Lost: true}, nil
	}
	nonce, err := s.node.Nonce(ctx)
	if err != nil {
		return anchor.Progress{}, err
	}
	if nonce > f.nonce {
		return s.nonceUsed(ctx, f)
	}
	f.nonceGone = 0
	now := s.cfg.Now()
	switch {
	case now.Sub(f.sentAt) >= s.cfg.StuckAfter:
		replaced, err := s.replace(ctx, f)
		return anchor.Progress{Replaced: replaced}, err
	case now.Sub(f.broadcastAt) >= s.rebroadcastAfter():
		// The node may have lost it (a restart, an RPC outage mid-send).
		return anchor.Progress{}, s.broadcast(ctx, f)
	}
	return anchor.Progress{}, nil
}

// mined reports f mined once receipt's block has its confirmations.
func (s *Sender) mined(ctx context.Context, f *flight, receipt *proof.Receipt) (anchor.Progress, error) {
	if !receipt.Succeeded() {
		return s.reverted(ctx, f, receipt)
	}
	ok, err := s.confirmed(ctx, receipt)
	if err != nil || !ok {
		return anchor.Progress{}, err
	}
	return anchor.Progress{Mined: &anchor.Mined{
		Flight: anchor.Flight{Size: f.size, Root: f.root, StartedAt: f.startedAt},
		TxHash: receipt.TxHash, BlockNumber: receipt.BlockNumber, BlockHash: receipt.BlockHash, GasUsed: receipt.GasUsed,
	}}, nil
}

// nonceUsed handles f's nonce used, but by no transaction of ours that has
// a receipt: it gives the receipts a few polls to appear, then drops f.
func (s *Sender) nonceUsed(ctx context.Context, f *flight) (anchor.Progress, error) {
	if f.nonceGone++; f.nonceGone < nonceGonePollsMax {
		return anchor.Progress{}, nil
	}
	s.logger.Warn("anchor sender: nonce used by another transaction; dropping the anchor in flight", "nonce", f.nonce, "size", f.size)
	if err := s.Forget(ctx); err != nil {
		return anchor.Progress{}, err
	}
	return anchor.Progress{Lost: true}, nil
}

// rebroadcastAfter is how long a sent transaction waits before it is sent
// again unchanged.
func (s *Sender) rebroadcastAfter() time.Duration {
	return max(s.cfg.StuckAfter/4, s.cfg.PollInterval)
}

// minedReceipt returns the receipt of whichever of f's transactions is in
// the canonical chain, newest first, or nil.
func (s *Sender) minedReceipt(ctx context.Context, f *flight) (*proof.Receipt, error) {
	hashes := make([][32]byte, 0, len(f.txs)+1)
	for i := len(f.txs) - 1; i >= 0; i-- {
		hashes = append(hashes, f.txs[i].Hash())
	}
	if f.found != ([32]byte{}) {
		hashes = append(hashes, f.found)
	}
	for _, h := range hashes {
		r, err := s.node.Receipt(ctx, h)
		if errors.Is(err, proof.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, nil
}

// confirmed reports whether the block holding receipt has the configured
// confirmations (or is finalized) and is still canonical.
func (s *Sender) confirmed(ctx context.Context, receipt *proof.Receipt) (bool, error) {
	n := receipt.BlockNumber
	if s.cfg.Finalized {
		fin, err := s.node.Finalized(ctx)
		if err != nil || fin < n {
			return false, err
		}
	} else {
		head, err := s.node.Head(ctx)
		if err != nil || head+1 < n+s.cfg.Confirmations {
			return false, err
		}
	}
	canonical, err := s.node.BlockHash(ctx, n)
	if errors.Is(err, proof.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// A differing hash is a reorganisation under way: the receipt will
	// move or vanish at a later poll.
	return canonical == receipt.BlockHash, nil
}

// replace signs f again with the tip and fee cap each raised by at least
// feeBumpPercent, and sends it. It reports whether it did: not when the
// raise would pass FeeCapMax.
func (s *Sender) replace(ctx context.Context, f *flight) (bool, error) {
	prev := f.txs[len(f.txs)-1]
	tip, feeCap, err := s.node.Fees(ctx)
	if err != nil {
		return false, err
	}
	minTip, minCap := bump(prev.GasTipCap()), bump(prev.GasFeeCap())
	tip, feeCap = bigMax(tip, minTip), bigMax(feeCap, minCap)
	if feeCap.Cmp(s.cfg.FeeCapMax) > 0 {
		feeCap = new(big.Int).Set(s.cfg.FeeCapMax)
	}
	tip = bigMin(tip, feeCap)
	if feeCap.Cmp(minCap) < 0 || tip.Cmp(minTip) < 0 {
		s.logger.Warn("anchor sender: transaction stuck at the maximum fee cap", "tx", prev.Hash(), "fee_cap_max", s.cfg.FeeCapMax)
		f.sentAt = s.cfg.Now()
		return false, nil
	}
	tx, err := s.node.SignAnchor(ctx, AnchorTx{Root: f.root, Size: f.size, Nonce: f.nonce, Tip: tip, FeeCap: feeCap, Gas: prev.Gas()})
	if err != nil {
		return false, err
	}
	if err := s.persist(ctx, f, tx, s.cfg.Now()); err != nil {
		return false, err
	}
	s.logger.Info("anchor sender: replacing stuck transaction", "old", prev.Hash(), "new", tx.Hash(), "tip", tip, "fee_cap", feeCap)
	return true, s.broadcast(ctx, f)
}

// reverted handles a mined anchor that the contract refused: it drops the
// flight, and returns an error too unless another anchor of ours got the
// size first.
func (s *Sender) reverted(ctx context.Context, f *flight, receipt *proof.Receipt) (anchor.Progress, error) {
	if err := s.Forget(ctx); err != nil {
		return anchor.Progress{}, err
	}
	lost := anchor.Progress{Lost: true}
	latest, err := s.node.LatestSize(ctx, s.node.Contract())
	if err != nil {
		return lost, err
	}
	if latest >= f.size {
		return lost, nil // the worker's sync finds the anchor that did
	}
	return lost, fmt.Errorf("anchor transaction %s for size %d reverted (is %s the contract's writer?)",
		proof.TxHex(receipt.TxHash), f.size, s.node.Contract())
}

// bump returns x raised by feeBumpPercent, plus one.
func bump(x *big.Int) *big.Int {
	out := new(big.Int).Mul(x, big.NewInt(100+feeBumpPercent))
	out.Div(out, big.NewInt(100))
	return out.Add(out, big.NewInt(1))
}

func bigMin(a, b *big.Int) *big.Int {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}
