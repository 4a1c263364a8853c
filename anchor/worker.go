package anchor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Defaults of WorkerConfig's zero fields.
const (
	DefaultInterval      = time.Minute
	DefaultEveryEvents   = 1000
	DefaultConfirmations = 1
	DefaultPollInterval  = time.Second
	DefaultRetryMax      = time.Minute
)

// Limits of the Worker.
const (
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
	// Confirmations is the confirmations the Chain waits for before it
	// reports an anchor mined (ethchain.SenderConfig.Confirmations); the
	// worker uses it only to estimate waits before it has timed an anchor.
	Confirmations uint64
	// PollInterval is how often the worker polls the Chain for the anchor
	// in flight.
	PollInterval time.Duration
	// RetryMax caps the backoff after an RPC or database error.
	RetryMax time.Duration
	// Logger receives the worker's log; nil discards it.
	Logger *slog.Logger
	// Now is the worker's clock; nil is time.Now.
	Now func() time.Time
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
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

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
	// Replacements the stuck transactions the Chain replaced.
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
// One Worker per contract and key. It decides when to anchor and records
// what the Chain reports mined; its state lives in the event log (the
// records), the Chain's Attempts and on the chain, so it resumes after a
// restart without sending twice.
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
	flying    bool      // the Chain follows an anchor
	redo      *record   // a recorded anchor the chain lost, to send again

	mu      sync.Mutex // guards stats and started
	stats   WorkerStats
	started time.Time
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
	now := w.cfg.Now()
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
	w.lastAt = w.cfg.Now()
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
		w.synced, w.checkedAt = true, w.cfg.Now()
	}
	if w.flying {
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
	now := w.cfg.Now()
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

// send hands a new anchor to the Chain.
func (w *Worker) send(ctx context.Context, size uint64, root [merkle.HashSize]byte) error {
	sent, err := w.chain.Anchor(ctx, size, root)
	if !sent && err == nil {
		w.logger.Info("anchor worker: the chain already holds this size or a larger one", "size", size)
		w.synced = false
		return nil
	}
	if sent {
		w.flying = true
		w.setInFlight(size, w.cfg.Now())
	}
	return err
}

// tend follows the flight: records it once mined and confirmed, drops it
// when the Chain lost it.
func (w *Worker) tend(ctx context.Context) (time.Duration, error) {
	p, err := w.chain.Poll(ctx)
	if p.Replaced {
		w.mu.Lock()
		w.stats.Replacements++
		w.mu.Unlock()
	}
	switch {
	case p.Lost:
		w.dropFlight()
		return 0, err
	case err != nil:
		return 0, err
	case p.Mined != nil:
		return 0, w.record(ctx, p.Mined)
	}
	return w.cfg.PollInterval, nil
}

// record appends the AnchorRecorded event of a confirmed anchor, then
// has the Chain forget it. The event's id is derived from the anchor, so
// recording it again after a crash is a no-op.
func (w *Worker) record(ctx context.Context, m *Mined) error {
	now := w.cfg.Now()
	contract := w.chain.Contract()
	ev, err := domain.NewAnchorRecorded(domain.AnchorRecorded{
		TreeSize: m.Size, Root: hex.EncodeToString(m.Root[:]), ChainID: w.chain.ChainID(),
		Contract: contract.Hex(), TxHash: proof.TxHex(m.TxHash),
		BlockNumber: m.BlockNumber, BlockHash: proof.TxHex(m.BlockHash),
	}, now)
	if err != nil {
		panic(fmt.Sprintf("anchor: record of a mined anchor: %v", err))
	}
	data, err := domain.EncodeEvent(ev)
	if err != nil {
		panic(fmt.Sprintf("anchor: encode anchor record: %v", err))
	}
	res, err := w.events.Append(ctx, domain.AnchorStream, eventstore.Any, eventstore.EventData{
		ID:            RecordID(w.chain.ChainID(), contract, m.Size, m.TxHash, m.BlockHash),
		Type:          domain.EventAnchorRecorded,
		SchemaVersion: domain.SchemaVersion,
		Data:          data,
		Metadata:      eventstore.Metadata{Actor: workerActor},
	})
	if err != nil {
		return fmt.Errorf("record anchor of size %d: %w", m.Size, err)
	}
	if err := w.chain.Forget(ctx); err != nil {
		return err
	}
	lf, err := leafAt(ctx, w.log.db, m.Size)
	if err != nil {
		return fmt.Errorf("record anchor of size %d: %w", m.Size, err)
	}
	w.last = &record{Position: res.LastPosition, TreeSize: m.Size, Root: m.Root, Anchor: anchorOf(ev), RecordedAt: ev.At}
	w.lastData, w.lastAt, w.flying = lf.DataLeaves, now, false
	if w.redo != nil && w.redo.TreeSize <= m.Size {
		w.redo = nil
	}
	w.recorded(m, now, res.LastPosition)
	return nil
}

// recorded updates the stats after m was recorded at position.
func (w *Worker) recorded(m *Mined, now time.Time, position uint64) {
	lag := now.Sub(m.StartedAt)
	if m.StartedAt.IsZero() {
		lag = 0
	}
	w.mu.Lock()
	w.stats.AnchoredSize, w.stats.LastAnchorAt, w.stats.InFlightSize = m.Size, now, 0
	w.stats.Anchors++
	if lag > 0 {
		w.stats.LastLag, w.stats.LastGasUsed = lag, m.GasUsed
	}
	w.mu.Unlock()
	w.logger.Info("anchor worker: anchored", "size", m.Size, "tx", proof.TxHex(m.TxHash), "block", m.BlockNumber,
		"gas", m.GasUsed, "lag", lag, "record_position", position)
}

// RecordID returns the event id of the AnchorRecorded event for an anchor
// of size mined in tx and block: the same anchor always gets the same id,
// so recording it twice is a no-op, while an anchor that a reorganisation
// moved to another block gets a new record.
func RecordID(chainID uint64, contract proof.Address, size uint64, tx, block [32]byte) string {
	return eventstore.DeriveEventID(domain.EventAnchorRecorded, strconv.FormatUint(chainID, 10),
		strings.ToLower(contract.Hex()), strconv.FormatUint(size, 10), proof.TxHex(tx), proof.TxHex(block))
}

func (w *Worker) dropFlight() {
	w.flying = false
	w.synced = false
	w.setInFlight(0, time.Time{})
}

func (w *Worker) setInFlight(size uint64, since time.Time) {
	w.mu.Lock()
	w.stats.InFlightSize, w.stats.InFlightSince = size, since
	w.mu.Unlock()
}
