// Package anchor makes every ledger entry verifiable by anyone: it keeps
// the audit log (one RFC 9162 Merkle tree over every event's leaf hash, in
// position order), anchors its root on an EVM chain, and answers inclusion
// and consistency proofs against those anchors.
//
//   - Log follows the event store and appends each event's leaf hash to the
//     tree, persisted in SQL (NodeStore, a leaf index by event id and the
//     anchor index), durable and restart-safe.
//   - Worker decides when to anchor the tree's root (every interval or every
//     N events), checks the chain against the records after restarts and
//     reorganisations, and records each anchor its Chain reports mined and
//     confirmed as an AnchorRecorded event in the log itself.
//   - Service answers proofs (anchor/proof's public format), verifies them
//     against the chain, and audits the whole log.
//
// This package speaks to the chain in plain types ([32]byte hashes,
// proof.Address, proof.Receipt) through the Chain interface; it does not
// import go-ethereum. The transactions themselves (nonces, fees,
// replacement of stuck transactions, rebroadcasts, confirmations) are
// anchor/ethchain's Sender, which implements Chain and keeps its signed
// transactions in Attempts. The Merkle tree is anchor/merkle; the
// contract's bindings are anchor/anchorcontract; the embedded dev chain is
// anchor/devchain.
package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Limits of the Log.
const (
	// leavesPerInsertMax bounds the leaf-index rows of one INSERT (four
	// parameters each).
	leavesPerInsertMax = 200
	// logRetryMin and logRetryMax bound the Log's backoff after a database
	// or event store error.
	logRetryMin = 100 * time.Millisecond
	logRetryMax = 30 * time.Second
)

// ErrDiverged is matched (errors.Is) by every *DivergedError.
var ErrDiverged = errors.New("anchor: audit log diverged")

// DivergedError says that what the audit log recorded no longer matches
// the event store or the chain: the log was rewritten, truncated or
// replaced behind its back. It is never an operating error; a Log or
// Worker that meets one stops.
type DivergedError struct {
	Position uint64 // the first position found to differ, 0 if unknown
	Reason   string
}

func (e *DivergedError) Error() string {
	if e.Position == 0 {
		return "audit log diverged: " + e.Reason
	}
	return fmt.Sprintf("audit log diverged at position %d: %s", e.Position, e.Reason)
}

// Is makes errors.Is(err, ErrDiverged) true.
func (e *DivergedError) Is(target error) bool { return target == ErrDiverged }

// Events is what the Log reads from the event store; eventstore.Store
// implements it.
type Events interface {
	ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error)
	Subscribe(ctx context.Context, from uint64) *eventstore.Subscription
}

// Log is the audit log: it follows the event store and appends every
// event's leaf hash to the Merkle tree, and indexes leaves by event id and
// anchor records by tree size. It is the only writer of those tables.
// Its methods are safe for concurrent use; Run must be called once.
type Log struct {
	db     *sqldb.DB
	events Events
	nodes  *NodeStore
	logger *slog.Logger

	mu         sync.RWMutex // guards tree, size and dataLeaves
	tree       *merkle.Tree
	size       uint64 // committed: leaves, nodes and index rows are all stored
	dataLeaves uint64 // leaves up to size that are not anchor records
	grown      eventstore.HeadSignal
}

// OpenLog opens the audit log kept in db (creating its tables) over events,
// at the size it reached before. It checks that the event store still
// holds, at that size, the event the log recorded there, and returns a
// *DivergedError if not; otherwise it returns the database's or the event
// store's error. logger may be nil.
func OpenLog(ctx context.Context, db *sqldb.DB, events Events, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := Migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Log{db: db, events: events, nodes: NewNodeStore(db), logger: logger}
	last, err := lastLeaf(ctx, db)
	switch {
	case errors.Is(err, errNoRow):
	case err != nil:
		return nil, fmt.Errorf("open audit log: %w", err)
	default:
		l.size, l.dataLeaves = last.Position, last.DataLeaves
		if err := l.checkTail(ctx, last); err != nil {
			return nil, err
		}
	}
	if l.tree, err = merkle.Open(ctx, l.nodes, l.size); err != nil {
		return nil, fmt.Errorf("open audit log at size %d: %w", l.size, err)
	}
	l.grown.Advance(l.size)
	return l, nil
}

// checkTail checks that the event store holds, at the last logged position,
// the event the log recorded there.
func (l *Log) checkTail(ctx context.Context, last *leaf) error {
	got, err := l.events.ReadAll(ctx, last.Position, 1)
	if err != nil {
		return fmt.Errorf("open audit log: read event %d: %w", last.Position, err)
	}
	if len(got) == 0 || got[0].Position != last.Position {
		return &DivergedError{Position: last.Position, Reason: "the event store no longer holds the last logged event (truncated or replaced)"}
	}
	if got[0].ID != last.EventID || got[0].LeafHash != last.Hash {
		return &DivergedError{Position: last.Position, Reason: fmt.Sprintf("the event store holds event %s there, the log recorded %s", got[0].ID, last.EventID)}
	}
	return nil
}

// Size returns the number of events in the audit log. It cannot fail.
func (l *Log) Size() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// checkpoint returns the size and how many leaves up to it are not anchor
// records.
func (l *Log) checkpoint() (size, dataLeaves uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size, l.dataLeaves
}

// Root returns the root of the tree at size. It returns an error wrapping
// merkle.ErrSizeOutOfRange if the log is not that long, or the database's
// error.
func (l *Log) Root(ctx context.Context, size uint64) ([merkle.HashSize]byte, error) {
	l.mu.RLock()
	tree, cur := l.tree, l.size
	l.mu.RUnlock()
	if size > cur {
		return [merkle.HashSize]byte{}, fmt.Errorf("root at size %d of a log of size %d: %w", size, cur, merkle.ErrSizeOutOfRange)
	}
	return tree.Root(ctx, size)
}

// Wait blocks until the log holds at least size events. It returns ctx's
// error if ctx ends first.
func (l *Log) Wait(ctx context.Context, size uint64) error {
	for {
		cur, grown := l.grown.Wait()
		if cur >= size {
			return nil
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run follows the event store from the log's size on and appends every new
// event until ctx ends, when it returns ctx's error. It retries database
// and event store errors with backoff, and returns at once on corruption:
// an error wrapping eventstore.ErrCorrupt, ErrDiverged or
// merkle.ErrNodeConflict.
func (l *Log) Run(ctx context.Context) error {
	retry := time.Duration(0)
	for {
		err := l.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, eventstore.ErrCorrupt) || errors.Is(err, ErrDiverged) || errors.Is(err, merkle.ErrNodeConflict) {
			l.logger.Error("audit log stopped", "err", err)
			return err
		}
		retry = min(max(2*retry, logRetryMin), logRetryMax)
		l.logger.Warn("audit log: retrying", "err", err, "in", retry)
		if err := sleep(ctx, retry); err != nil {
			return err
		}
		if err := l.reopen(ctx); err != nil {
			l.logger.Warn("audit log: reopen", "err", err)
		}
	}
}

// follow subscribes from the log's size and ingests batches until an error.
func (l *Log) follow(ctx context.Context) error {
	sub := l.events.Subscribe(ctx, l.Size()+1)
	for {
		batch, err := sub.Next()
		if err != nil {
			return err
		}
		if err := l.ingest(ctx, batch); err != nil {
			return err
		}
	}
}

// reopen rebuilds the in-memory tree at the committed size, after an
// ingest that stored nodes but failed to commit the index.
func (l *Log) reopen(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tree, err := merkle.Open(ctx, l.nodes, l.size)
	if err != nil {
		return err
	}
	l.tree = tree
	return nil
}

// ingest appends one batch of consecutive events: tree nodes first (a
// retry after a crash rewrites the same nodes, which the store accepts),
// then the leaf and anchor index in one transaction, which commits the new
// size.
func (l *Log) ingest(ctx context.Context, batch []eventstore.RecordedEvent) error {
	l.mu.RLock()
	tree, size, dataLeaves := l.tree, l.size, l.dataLeaves
	l.mu.RUnlock()

	leaves := make([]leaf, len(batch))
	hashes := make([][merkle.HashSize]byte, len(batch))
	var records []*record
	for i, e := range batch {
		want := size + uint64(i) + 1
		if e.Position != want {
			return &eventstore.CorruptionError{Position: want, Reason: fmt.Sprintf("audit log expected position %d, event store delivered %d", want, e.Position)}
		}
		// The store checked this on read; the log checks it again because
		// the tree is where a wrong hash would become permanent.
		if merkle.HashLeaf(e.Bytes) != e.LeafHash {
			return &eventstore.CorruptionError{Position: e.Position, Reason: "leaf hash does not match the event's bytes"}
		}
		if e.Type == domain.EventAnchorRecorded {
			if r := l.decodeRecord(e); r != nil {
				records = append(records, r)
			}
		} else {
			dataLeaves++
		}
		leaves[i] = leaf{Position: e.Position, EventID: e.ID, Hash: e.LeafHash, DataLeaves: dataLeaves}
		hashes[i] = e.LeafHash
	}
	if tree.Size() != size {
		panic(fmt.Sprintf("anchor: tree size %d, committed log size %d", tree.Size(), size))
	}
	if err := tree.Append(ctx, hashes...); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	err := l.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := insertLeaves(ctx, tx, leaves); err != nil {
			return err
		}
		return insertRecords(ctx, tx, records)
	})
	if err != nil {
		if rerr := l.reopen(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("audit log: index positions %d to %d: %w", size+1, size+uint64(len(batch)), err)
	}
	l.mu.Lock()
	l.size, l.dataLeaves = size+uint64(len(batch)), dataLeaves
	l.mu.Unlock()
	l.grown.Advance(size + uint64(len(batch)))
	return nil
}

// decodeRecord returns the index row of an AnchorRecorded event, or nil
// (logged) for one that does not decode: it stays a leaf of the log, but
// no proof can name it.
func (l *Log) decodeRecord(e eventstore.RecordedEvent) *record {
	ev, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		l.logger.Error("audit log: undecodable anchor record", "position", e.Position, "err", err)
		return nil
	}
	a := ev.(domain.AnchorRecorded)
	checked, err := domain.NewAnchorRecorded(a, a.At)
	var root [merkle.HashSize]byte
	if err == nil {
		root, err = parseRoot(checked.Root)
	}
	if err != nil {
		l.logger.Error("audit log: malformed anchor record", "position", e.Position, "err", err)
		return nil
	}
	return &record{
		Position: e.Position, TreeSize: a.TreeSize, Root: root, RecordedAt: a.At,
		Anchor: anchorOf(checked),
	}
}

func insertLeaves(ctx context.Context, tx *sqldb.Tx, leaves []leaf) error {
	for start := 0; start < len(leaves); start += leavesPerInsertMax {
		chunk := leaves[start:min(start+leavesPerInsertMax, len(leaves))]
		q := `INSERT INTO anchor_leaves (` + leafColumns + `) VALUES ` + placeholders(len(chunk), 4)
		args := make([]any, 0, 4*len(chunk))
		for _, lf := range chunk {
			args = append(args, int64(lf.Position), lf.EventID, lf.Hash[:], int64(lf.DataLeaves))
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("write leaf index: %w", err)
		}
	}
	return nil
}

func insertRecords(ctx context.Context, tx *sqldb.Tx, records []*record) error {
	for _, r := range records {
		_, err := tx.Exec(ctx, `INSERT INTO anchor_records (`+recordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			int64(r.Position), int64(r.TreeSize), r.Root[:], int64(r.Anchor.ChainID), r.Anchor.Contract,
			r.Anchor.TxHash, int64(r.Anchor.BlockNumber), r.Anchor.BlockHash, r.RecordedAt.UnixMicro())
		if err != nil {
			return fmt.Errorf("write anchor index: %w", err)
		}
	}
	return nil
}

// placeholders returns "(?, ?), (?, ?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// sleep waits d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
