package anchor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Defaults of WorkerConfig's zero fields.
const (
	DefaultInterval      = time.Minute
	DefaultEveryEvents   = 1000
	DefaultConfirmations = 1
	DefaultPollInterval  = time.Second
	DefaultStuckAfter    = 2 * time.Minute
	DefaultRetryMax      = time.Minute
)

// DefaultFeeCapMax is the highest fee cap per gas the worker offers unless
// configured otherwise: 500 gwei.
var DefaultFeeCapMax = new(big.Int).Mul(big.NewInt(500), big.NewInt(params.GWei))

// Limits of the Worker.
const (
	// feeBumpPercent is how much a replacement raises both the tip and the
	// fee cap (go-ethereum's txpool needs 10%; one wei more is added).
	feeBumpPercent = 10
	// nonceGonePollsMax is how many polls in a row may find the flight's
	// nonce used without a receipt of ours before the flight is dropped.
	nonceGonePollsMax = 3
	// recheckBlocksMax bounds how deep below the head the worker re-checks
	// that the latest record still names its transaction's block; older
	// anchors are beyond any reorganisation.
	recheckBlocksMax = 10_000
	// workerActor is the actor of the events the worker appends.
	workerActor = "anchor-worker"
)

// WorkerConfig configures a Worker. Zero fields take the Default values.
type WorkerConfig struct {
	// Interval is the longest time between anchors while entries arrive:
	// entries wait at most this long (plus confirmation) to be anchored.
	Interval time.Duration
	// EveryEvents anchors sooner, as soon as this many entries (other than
	// anchor records) are unanchored.
	EveryEvents uint64
	// Confirmations is how many blocks, the one holding the anchor
	// included, must be on the chain before the anchor is recorded. Use a
	// dozen or more on public chains, or Finalized.
	Confirmations uint64
	// Finalized waits for the chain's "finalized" block to reach the
	// anchor instead of counting Confirmations.
	Finalized bool
	// PollInterval is how often the worker polls for receipts and blocks.
	PollInterval time.Duration
	// StuckAfter is how long a transaction may stay unmined before it is
	// replaced with a tip and a fee cap each raised by at least 10%.
	StuckAfter time.Duration
	// FeeCapMax is the most wei per gas the worker ever offers.
	FeeCapMax *big.Int
	// RetryMax caps the backoff after an RPC or database error.
	RetryMax time.Duration
	// Logger receives the worker's log; nil discards it.
	Logger *slog.Logger
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.EveryEvents == 0 {
		c.EveryEvents = DefaultEveryEvents
	}
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
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Chain is what the Worker needs from the chain; *ethchain.Writer
// implements it. Methods that find nothing return errors wrapping
// ethchain.ErrNotFound.
type Chain interface {
	ChainID() uint64
	Contract() common.Address
	Nonce(ctx context.Context) (uint64, error)
	Fees(ctx context.Context) (tip, feeCap *big.Int, err error)
	SignAnchor(ctx context.Context, a ethchain.AnchorTx) (*types.Transaction, error)
	Send(ctx context.Context, tx *types.Transaction) error
	Receipt(ctx context.Context, tx common.Hash) (*types.Receipt, error)
	Head(ctx context.Context) (uint64, error)
	Finalized(ctx context.Context) (uint64, error)
	BlockHash(ctx context.Context, number uint64) (common.Hash, error)
	LatestSize(ctx context.Context, contract common.Address) (uint64, error)
	RootAt(ctx context.Context, contract common.Address, size uint64) ([32]byte, error)
	FindAnchor(ctx context.Context, contract common.Address, size, from uint64) (common.Hash, error)
}

var _ Chain = (*ethchain.Writer)(nil)

// Appender appends events; eventstore.Store implements it.
type Appender interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
}

// WorkerStats describes the worker's progress.
type WorkerStats struct {
	// AnchoredSize is the largest tree size recorded as anchored on the
	// worker's chain and contract.
	AnchoredSize uint64
	// Anchors counts the anchors this worker recorded since it started;
	// Replacements the stuck transactions it replaced.
	Anchors, Replacements uint64
	// InFlightSize is the size of the anchor waiting to be mined and
	// confirmed, 0 if none; InFlightSince is when it was first sent.
	InFlightSize  uint64
	InFlightSince time.Time
	// LastAnchorAt is when the latest anchor was recorded.
	LastAnchorAt time.Time
	// LastLag is how long the latest anchor took from its first send to
	// its record, and LastGasUsed the gas its transaction used.
	LastLag     time.Duration
	LastGasUsed uint64
}

// Worker anchors the audit log's root on the chain. Run drives it; Stats
// and ExpectedWait may be called concurrently.
//
// One Worker per contract and key: it keeps its own nonces. Its state
// lives in the database (unconfirmed transactions, in anchor_attempts) and
// on the chain, so it resumes after a restart without sending twice.
type Worker struct {
	cfg    WorkerConfig
	log    *Log
	chain  Chain
	events Appender
	logger *slog.Logger

	// Run's state, touched only by Run's goroutine.
	synced    bool
	loaded    bool      // the first sync ran
	checkedAt time.Time // last sync
	last      *record   // latest anchor recorded on this chain and contract
	lastData  uint64    // non-anchor leaves up to last.TreeSize
	lastAt    time.Time // when last was recorded, or when Run started
	flight    *flight   // the anchor being mined, if any
	redo      *record   // a recorded anchor the chain lost, to send again

	mu      sync.Mutex // guards stats and started
	stats   WorkerStats
	started time.Time
}

// flight is one anchor on its way: the transactions signed for it (all
// with one nonce, each replacing the one before), or, for an anchor found
// on the chain but not recorded, only found.
type flight struct {
	size        uint64
	root        [merkle.HashSize]byte
	nonce       uint64
	txs         []*types.Transaction
	found       common.Hash
	startedAt   time.Time // first send
	sentAt      time.Time // latest replacement
	broadcastAt time.Time // latest (re)send of the latest transaction
	nonceGone   int
}

// NewWorker returns a worker that anchors log to chain and appends its
// records through events (the event store log follows).
func NewWorker(log *Log, chain Chain, events Appender, cfg WorkerConfig) *Worker {
	cfg = cfg.withDefaults()
	return &Worker{cfg: cfg, log: log, chain: chain, events: events, logger: cfg.Logger}
}

// Stats returns the worker's progress. It cannot fail.
func (w *Worker) Stats() WorkerStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// ExpectedWait estimates how long until an anchor covering position is
// recorded: the time to the next anchor (or the one in flight) plus the
// time the latest anchor took to confirm. It cannot fail.
func (w *Worker) ExpectedWait(position uint64) time.Duration {
	st := w.Stats()
	now := time.Now()
	confirm := st.LastLag
	if confirm <= 0 {
		confirm = w.cfg.PollInterval * time.Duration(w.cfg.Confirmations+1)
	}
	inFlight := max(confirm-now.Sub(st.InFlightSince), w.cfg.PollInterval)
	if st.InFlightSize >= position {
		return inFlight
	}
	since := st.LastAnchorAt
	if since.IsZero() {
		w.mu.Lock()
		since = w.started
		w.mu.Unlock()
	}
	next := max(since.Add(w.cfg.Interval).Sub(now), 0)
	if st.InFlightSize > 0 {
		next = max(next, inFlight)
	}
	return next + confirm
}

// Run anchors until ctx ends, then returns ctx's error. It retries RPC and
// database errors with backoff (up to RetryMax), losing nothing, and
// returns at once with an error wrapping ErrDiverged if the chain holds a
// root for a size that the audit log's root at that size does not match.
func (w *Worker) Run(ctx context.Context) error {
	w.lastAt = time.Now()
	w.mu.Lock()
	w.started = w.lastAt
	w.mu.Unlock()
	retry := time.Duration(0)
	for {
		wait, wake, err := w.step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if errors.Is(err, ErrDiverged) || errors.Is(err, eventstore.ErrCorrupt) {
				w.logger.Error("anchor worker stopped", "err", err)
				return err
			}
			w.synced = false
			retry = min(max(2*retry, w.cfg.PollInterval), w.cfg.RetryMax)
			w.logger.Warn("anchor worker: retrying", "err", err, "in", retry)
			wait, wake = retry, nil
		} else {
			retry = 0
		}
		if err := waitFor(ctx, wait, wake); err != nil {
			return err
		}
	}
}

// waitFor waits d, or until wake is closed, or until ctx ends.
func waitFor(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// step makes one unit of progress and says how long to wait before the
// next, and what may end the wait early.
func (w *Worker) step(ctx context.Context) (time.Duration, <-chan struct{}, error) {
	if !w.synced {
		if err := w.sync(ctx); err != nil {
			return 0, nil, err
		}
		w.synced, w.checkedAt = true, time.Now()
	}
	if w.flight != nil {
		d, err := w.tend(ctx)
		return d, nil, err
	}
	return w.maybeAnchor(ctx)
}

// maybeAnchor sends a new anchor if one is due: when entries other than
// anchor records arrived since the last anchor, and either EveryEvents of
// them did or Interval passed.
func (w *Worker) maybeAnchor(ctx context.Context) (time.Duration, <-chan struct{}, error) {
	_, grown := w.log.grown.Wait() // before reading the size: no growth is missed
	if w.redo != nil {
		return 0, nil, w.resend(ctx, w.redo)
	}
	size, data := w.log.checkpoint()
	now := time.Now()
	if data == w.lastData {
		if now.Sub(w.checkedAt) >= w.cfg.Interval {
			w.synced = false // idle: check now and then that the chain kept the last anchor
			return 0, nil, nil
		}
		return w.cfg.Interval - now.Sub(w.checkedAt), grown, nil
	}
	if due := w.lastAt.Add(w.cfg.Interval); data-w.lastData < w.cfg.EveryEvents && now.Before(due) {
		return due.Sub(now), grown, nil
	}
	if now.Sub(w.checkedAt) > w.cfg.PollInterval {
		w.synced = false // look at the chain right before anchoring
		return 0, nil, nil
	}
	root, err := w.log.Root(ctx, size)
	if err != nil {
		return 0, nil, err
	}
	return w.cfg.PollInterval, nil, w.send(ctx, size, root)
}

// resend anchors a recorded root again after the chain lost it.
func (w *Worker) resend(ctx context.Context, r *record) error {
	if err := w.log.Wait(ctx, r.TreeSize); err != nil {
		return err
	}
	root, err := w.log.Root(ctx, r.TreeSize)
	if err != nil {
		return err
	}
	if root != r.Root {
		return &DivergedError{Reason: fmt.Sprintf("the anchor record at position %d says root %x for size %d, the log's root there is %x", r.Position, r.Root, r.TreeSize, root)}
	}
	return w.send(ctx, r.TreeSize, root)
}

// send signs, persists and sends a new anchor transaction.
func (w *Worker) send(ctx context.Context, size uint64, root [merkle.HashSize]byte) error {
	nonce, err := w.chain.Nonce(ctx)
	if err != nil {
		return err
	}
	tip, feeCap, err := w.chain.Fees(ctx)
	if err != nil {
		return err
	}
	feeCap = bigMin(feeCap, w.cfg.FeeCapMax)
	tip = bigMin(tip, feeCap)
	tx, err := w.chain.SignAnchor(ctx, ethchain.AnchorTx{Root: root, Size: size, Nonce: nonce, Tip: tip, FeeCap: feeCap})
	if errors.Is(err, ethchain.ErrSizeNotIncreasing) {
		w.logger.Info("anchor worker: the chain already holds this size or a larger one", "size", size)
		w.synced = false
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	f := &flight{size: size, root: root, nonce: nonce, startedAt: now}
	if err := w.persist(ctx, f, tx, now); err != nil {
		return err
	}
	w.flight = f
	w.setInFlight(size, now)
	w.logger.Info("anchor worker: sending", "size", size, "root", hex.EncodeToString(root[:]), "tx", tx.Hash(), "nonce", nonce)
	return w.broadcast(ctx, f)
}

// persist records tx as f's newest attempt, in memory and in the database,
// before it is sent, so that a restart knows every transaction that may
// be mined.
func (w *Worker) persist(ctx context.Context, f *flight, tx *types.Transaction, now time.Time) error {
	raw, err := tx.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode anchor transaction: %w", err)
	}
	_, err = w.log.db.Exec(ctx, `INSERT INTO anchor_attempts (tx_hash, nonce, tree_size, root, raw, sent_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tx_hash) DO NOTHING`,
		tx.Hash().Hex(), int64(f.nonce), int64(f.size), f.root[:], raw, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("save anchor transaction: %w", err)
	}
	f.txs = append(f.txs, tx)
	f.sentAt = now
	return nil
}

// broadcast sends f's newest transaction. A node that refuses it as
// underpriced holds another transaction of this account at the nonce, so
// the flight is marked for replacement at once.
func (w *Worker) broadcast(ctx context.Context, f *flight) error {
	f.broadcastAt = time.Now()
	err := w.chain.Send(ctx, f.txs[len(f.txs)-1])
	switch {
	case errors.Is(err, ethchain.ErrUnderpriced):
		w.logger.Warn("anchor worker: transaction underpriced; replacing", "err", err)
		f.sentAt = time.Time{}
		return nil
	case errors.Is(err, ethchain.ErrNonceTooLow):
		return nil // tend sees the nonce used and finds out by what
	}
	return err
}

// tend follows the flight: records it once mined and confirmed, replaces
// it when stuck, drops it when its nonce was used by something else.
func (w *Worker) tend(ctx context.Context) (time.Duration, error) {
	f := w.flight
	receipt, err := w.minedReceipt(ctx, f)
	if err != nil {
		return 0, err
	}
	if receipt != nil {
		if receipt.Status != types.ReceiptStatusSuccessful {
			return 0, w.reverted(ctx, f, receipt)
		}
		ok, err := w.confirmed(ctx, receipt)
		if err != nil || !ok {
			return w.cfg.PollInterval, err
		}
		return 0, w.record(ctx, f, receipt)
	}
	if len(f.txs) == 0 { // found on chain, and gone again: decide afresh
		w.dropFlight()
		return 0, nil
	}
	nonce, err := w.chain.Nonce(ctx)
	if err != nil {
		return 0, err
	}
	if nonce > f.nonce {
		// Used, but by no transaction of ours that has a receipt: give the
		// receipts a few polls to appear, then decide afresh.
		if f.nonceGone++; f.nonceGone >= nonceGonePollsMax {
			w.logger.Warn("anchor worker: nonce used by another transaction; dropping the anchor in flight", "nonce", f.nonce, "size", f.size)
			if err := w.deleteAttempts(ctx); err != nil {
				return 0, err
			}
			w.dropFlight()
			return 0, nil
		}
		return w.cfg.PollInterval, nil
	}
	f.nonceGone = 0
	now := time.Now()
	switch {
	case now.Sub(f.sentAt) >= w.cfg.StuckAfter:
		return w.cfg.PollInterval, w.replace(ctx, f)
	case now.Sub(f.broadcastAt) >= w.rebroadcastAfter():
		// The node may have lost it (a restart, an RPC outage mid-send).
		return w.cfg.PollInterval, w.broadcast(ctx, f)
	}
	return w.cfg.PollInterval, nil
}

// rebroadcastAfter is how long a sent transaction waits before it is sent
// again unchanged.
func (w *Worker) rebroadcastAfter() time.Duration {
	return max(w.cfg.StuckAfter/4, w.cfg.PollInterval)
}

// minedReceipt returns the receipt of whichever of f's transactions is in
// the canonical chain, newest first, or nil.
func (w *Worker) minedReceipt(ctx context.Context, f *flight) (*types.Receipt, error) {
	hashes := make([]common.Hash, 0, len(f.txs)+1)
	for i := len(f.txs) - 1; i >= 0; i-- {
		hashes = append(hashes, f.txs[i].Hash())
	}
	if f.found != (common.Hash{}) {
		hashes = append(hashes, f.found)
	}
	for _, h := range hashes {
		r, err := w.chain.Receipt(ctx, h)
		if errors.Is(err, ethchain.ErrNotFound) {
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
func (w *Worker) confirmed(ctx context.Context, receipt *types.Receipt) (bool, error) {
	n := receipt.BlockNumber.Uint64()
	if w.cfg.Finalized {
		fin, err := w.chain.Finalized(ctx)
		if err != nil || fin < n {
			return false, err
		}
	} else {
		head, err := w.chain.Head(ctx)
		if err != nil || head+1 < n+w.cfg.Confirmations {
			return false, err
		}
	}
	canonical, err := w.chain.BlockHash(ctx, n)
	if errors.Is(err, ethchain.ErrNotFound) {
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
// feeBumpPercent, and sends it.
func (w *Worker) replace(ctx context.Context, f *flight) error {
	prev := f.txs[len(f.txs)-1]
	tip, feeCap, err := w.chain.Fees(ctx)
	if err != nil {
		return err
	}
	minTip, minCap := bump(prev.GasTipCap()), bump(prev.GasFeeCap())
	tip, feeCap = bigMax(tip, minTip), bigMax(feeCap, minCap)
	if feeCap.Cmp(w.cfg.FeeCapMax) > 0 {
		feeCap = new(big.Int).Set(w.cfg.FeeCapMax)
	}
	tip = bigMin(tip, feeCap)
	if feeCap.Cmp(minCap) < 0 || tip.Cmp(minTip) < 0 {
		w.logger.Warn("anchor worker: transaction stuck at the maximum fee cap", "tx", prev.Hash(), "fee_cap_max", w.cfg.FeeCapMax)
		f.sentAt = time.Now()
		return nil
	}
	tx, err := w.chain.SignAnchor(ctx, ethchain.AnchorTx{Root: f.root, Size: f.size, Nonce: f.nonce, Tip: tip, FeeCap: feeCap, Gas: prev.Gas()})
	if err != nil {
		return err
	}
	if err := w.persist(ctx, f, tx, time.Now()); err != nil {
		return err
	}
	w.mu.Lock()
	w.stats.Replacements++
	w.mu.Unlock()
	w.logger.Info("anchor worker: replacing stuck transaction", "old", prev.Hash(), "new", tx.Hash(), "tip", tip, "fee_cap", feeCap)
	return w.broadcast(ctx, f)
}

// reverted handles a mined anchor that the contract refused.
func (w *Worker) reverted(ctx context.Context, f *flight, receipt *types.Receipt) error {
	if err := w.deleteAttempts(ctx); err != nil {
		return err
	}
	w.dropFlight()
	latest, err := w.chain.LatestSize(ctx, w.chain.Contract())
	if err != nil {
		return err
	}
	if latest >= f.size {
		return nil // another anchor of ours got there first; sync finds it
	}
	return fmt.Errorf("anchor transaction %s for size %d reverted (is %s the contract's writer?)", receipt.TxHash, f.size, w.chain.Contract())
}

// record appends the AnchorRecorded event of a confirmed anchor, then
// forgets its transactions. The event's id is derived from the anchor, so
// recording it again after a crash is a no-op.
func (w *Worker) record(ctx context.Context, f *flight, receipt *types.Receipt) error {
	now := time.Now()
	contract := w.chain.Contract()
	ev, err := domain.NewAnchorRecorded(domain.AnchorRecorded{
		TreeSize: f.size, Root: hex.EncodeToString(f.root[:]), ChainID: w.chain.ChainID(),
		Contract: contract.Hex(), TxHash: receipt.TxHash.Hex(),
		BlockNumber: receipt.BlockNumber.Uint64(), BlockHash: receipt.BlockHash.Hex(),
	}, now)
	if err != nil {
		panic(fmt.Sprintf("anchor: record of a mined anchor: %v", err))
	}
	data, err := domain.EncodeEvent(ev)
	if err != nil {
		panic(fmt.Sprintf("anchor: encode anchor record: %v", err))
	}
	res, err := w.events.Append(ctx, domain.AnchorStream, eventstore.Any, eventstore.EventData{
		ID:            RecordID(w.chain.ChainID(), contract, f.size, receipt.TxHash, receipt.BlockHash),
		Type:          domain.EventAnchorRecorded,
		SchemaVersion: domain.SchemaVersion,
		Data:          data,
		Metadata:      eventstore.Metadata{Actor: workerActor},
	})
	if err != nil {
		return fmt.Errorf("record anchor of size %d: %w", f.size, err)
	}
	if err := w.deleteAttempts(ctx); err != nil {
		return err
	}
	lf, err := leafAt(ctx, w.log.db, f.size)
	if err != nil {
		return fmt.Errorf("record anchor of size %d: %w", f.size, err)
	}
	w.last = &record{Position: res.LastPosition, TreeSize: f.size, Root: f.root, Anchor: anchorOf(ev), RecordedAt: ev.At}
	w.lastData, w.lastAt, w.flight = lf.DataLeaves, now, nil
	if w.redo != nil && w.redo.TreeSize <= f.size {
		w.redo = nil
	}
	lag := now.Sub(f.startedAt)
	if f.startedAt.IsZero() {
		lag = 0
	}
	w.mu.Lock()
	w.stats.AnchoredSize, w.stats.LastAnchorAt, w.stats.InFlightSize = f.size, now, 0
	w.stats.Anchors++
	if lag > 0 {
		w.stats.LastLag, w.stats.LastGasUsed = lag, receipt.GasUsed
	}
	w.mu.Unlock()
	w.logger.Info("anchor worker: anchored", "size", f.size, "tx", receipt.TxHash, "block", receipt.BlockNumber,
		"gas", receipt.GasUsed, "lag", lag, "record_position", res.LastPosition)
	return nil
}

// RecordID returns the event id of the AnchorRecorded event for an anchor
// of size mined in tx and block: the same anchor always gets the same id,
// so recording it twice is a no-op, while an anchor that a reorganisation
// moved to another block gets a new record.
func RecordID(chainID uint64, contract common.Address, size uint64, tx, block common.Hash) string {
	return eventstore.DeriveEventID(domain.EventAnchorRecorded, strconv.FormatUint(chainID, 10),
		strings.ToLower(contract.Hex()), strconv.FormatUint(size, 10), tx.Hex(), block.Hex())
}

func (w *Worker) dropFlight() {
	w.flight = nil
	w.synced = false
	w.setInFlight(0, time.Time{})
}

func (w *Worker) setInFlight(size uint64, since time.Time) {
	w.mu.Lock()
	w.stats.InFlightSize, w.stats.InFlightSince = size, since
	w.mu.Unlock()
}

func (w *Worker) deleteAttempts(ctx context.Context) error {
	if _, err := w.log.db.Exec(ctx, `DELETE FROM anchor_attempts`); err != nil {
		return fmt.Errorf("forget anchor transactions: %w", err)
	}
	return nil
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
