package anchor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/merkle"
)

// sync reads the worker's state from the database and the chain: the
// latest record, the transactions an earlier run left unconfirmed, and
// what the contract holds. It decides whether an anchor on the chain must
// be recorded (adopt), recorded again (recheck) or sent again (redo).
func (w *Worker) sync(ctx context.Context) error {
	last, err := latestRecordOn(ctx, w.log.db, w.chain.ChainID(), w.chain.Contract())
	switch {
	case errors.Is(err, errNoRow):
		last = nil
	case err != nil:
		return err
	}
	if w.last != nil && (last == nil || w.last.TreeSize > last.TreeSize ||
		w.last.TreeSize == last.TreeSize && w.last.Position > last.Position) {
		last = w.last // recorded, not indexed yet
	}
	w.last = last
	if last != nil {
		if err := w.log.Wait(ctx, last.TreeSize); err != nil {
			return err
		}
		lf, err := leafAt(ctx, w.log.db, last.TreeSize)
		if err != nil {
			return fmt.Errorf("leaf at anchored size %d: %w", last.TreeSize, err)
		}
		w.lastData = lf.DataLeaves
	}
	if !w.loaded {
		w.loaded = true
		if last != nil {
			w.lastAt = last.RecordedAt
			w.mu.Lock()
			w.stats.AnchoredSize, w.stats.LastAnchorAt = last.TreeSize, last.RecordedAt
			w.mu.Unlock()
		}
		if w.flight, err = w.loadFlight(ctx); err != nil {
			return err
		}
	}
	if w.flight != nil {
		w.setInFlight(w.flight.size, w.flight.startedAt)
		return nil
	}
	return w.checkChain(ctx, last)
}

// checkChain compares the contract's latest size with the latest record.
func (w *Worker) checkChain(ctx context.Context, last *record) error {
	w.redo = nil
	latest, err := w.chain.LatestSize(ctx, w.chain.Contract())
	if err != nil {
		return err
	}
	var lastSize uint64
	if last != nil {
		lastSize = last.TreeSize
	}
	switch {
	case latest > lastSize:
		return w.adopt(ctx, latest, last)
	case latest < lastSize:
		w.logger.Warn("anchor worker: the chain lost recorded anchors (reorganisation or reset); anchoring again",
			"recorded_size", lastSize, "chain_size", latest)
		w.redo = last
		return nil
	case last == nil:
		return nil
	}
	return w.recheck(ctx, last)
}

// adopt takes an anchor the chain holds but the log has no record of (a
// crash between confirmation and record) as the flight to confirm and
// record, after checking its root is the log's.
func (w *Worker) adopt(ctx context.Context, size uint64, last *record) error {
	if w.log.Size() < size {
		w.logger.Info("anchor worker: waiting for the audit log to reach the chain's anchored size", "size", size, "log_size", w.log.Size())
	}
	if err := w.log.Wait(ctx, size); err != nil {
		return err
	}
	ours, err := w.log.Root(ctx, size)
	if err != nil {
		return err
	}
	contract := w.chain.Contract()
	onChain, err := w.chain.RootAt(ctx, contract, size)
	if err != nil {
		return err
	}
	if ours != onChain {
		return &DivergedError{Reason: fmt.Sprintf("contract %s holds root %x for size %d; the audit log's root at that size is %x", contract, onChain, size, ours)}
	}
	var from uint64
	if last != nil {
		from = last.Anchor.BlockNumber
	}
	tx, err := w.chain.FindAnchor(ctx, contract, size, from)
	if err != nil {
		return err
	}
	w.logger.Info("anchor worker: found an unrecorded anchor on the chain", "size", size, "tx", tx)
	w.flight = &flight{size: size, root: ours, found: tx}
	w.setInFlight(size, time.Now())
	return nil
}

// recheck makes sure the latest record still names the block its
// transaction is in; a reorganisation may have moved it after it was
// recorded. If it moved, the flight records it again once confirmed.
func (w *Worker) recheck(ctx context.Context, last *record) error {
	head, err := w.chain.Head(ctx)
	if err != nil {
		return err
	}
	if head > last.Anchor.BlockNumber+recheckBlocksMax {
		return nil
	}
	recorded := common.HexToHash(last.Anchor.TxHash)
	r, err := w.chain.Receipt(ctx, recorded)
	switch {
	case err == nil && r.BlockHash == common.HexToHash(last.Anchor.BlockHash):
		return nil
	case err == nil: // the same transaction, mined again in another block
		return w.reRecord(last, recorded)
	case !errors.Is(err, ethchain.ErrNotFound):
		return err
	}
	// The chain holds the size but has no receipt for the recorded
	// transaction: which transaction anchored it?
	tx, err := w.chain.FindAnchor(ctx, w.chain.Contract(), last.TreeSize, 0)
	if err != nil {
		return err
	}
	if tx == recorded {
		// Its log is there but its receipt is not: a node behind its own
		// index, not a reorganisation. Nothing to record again.
		w.logger.Debug("anchor worker: no receipt yet for the recorded anchor", "tx", tx)
		return nil
	}
	return w.reRecord(last, tx)
}

// reRecord makes the flight record last's size again with tx, once its
// block has the confirmations.
func (w *Worker) reRecord(last *record, tx common.Hash) error {
	w.logger.Warn("anchor worker: the latest anchor moved to another block; recording it again", "size", last.TreeSize, "tx", tx)
	w.flight = &flight{size: last.TreeSize, root: last.Root, found: tx}
	w.setInFlight(last.TreeSize, time.Now())
	return nil
}

// loadFlight returns the transactions an earlier run signed and did not
// see confirmed, as one flight, or nil.
func (w *Worker) loadFlight(ctx context.Context) (*flight, error) {
	rows, err := w.log.db.Query(ctx, `SELECT nonce, tree_size, root, raw, sent_at FROM anchor_attempts ORDER BY nonce, sent_at`)
	if err != nil {
		return nil, fmt.Errorf("read anchor transactions: %w", err)
	}
	defer rows.Close()
	var f *flight
	for rows.Next() {
		var nonce, size, sentAt int64
		var root, raw []byte
		if err := rows.Scan(&nonce, &size, &root, &raw, &sentAt); err != nil {
			return nil, fmt.Errorf("read anchor transaction: %w", err)
		}
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("decode anchor transaction: %w", err)
		}
		if len(root) != merkle.HashSize {
			return nil, fmt.Errorf("anchor transaction %s has a %d-byte root", tx.Hash(), len(root))
		}
		at := time.UnixMicro(sentAt)
		if f == nil {
			f = &flight{startedAt: at}
		}
		f.size, f.root, f.nonce, f.sentAt = uint64(size), [merkle.HashSize]byte(root), uint64(nonce), at
		f.txs = append(f.txs, tx)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read anchor transactions: %w", err)
	}
	if f != nil {
		w.logger.Info("anchor worker: resuming unconfirmed anchor", "size", f.size, "transactions", len(f.txs))
	}
	return f, nil
}
