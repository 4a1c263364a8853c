package anchor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/anchor/proof"
)

// sync reads the worker's state from the database and the chain: the
// latest record, the anchor an earlier run left unconfirmed, and what the
// contract holds. It decides whether an anchor on the chain must
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
		f, ok, err := w.chain.Resume(ctx)
		if err != nil {
			w.loaded = false
			return err
		}
		if ok {
			w.flying = true
			w.setInFlight(f.Size, f.StartedAt)
		}
	}
	if w.flying {
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
	w.logger.Info("anchor worker: found an unrecorded anchor on the chain", "size", size, "tx", proof.TxHex(tx))
	w.follow(size, ours, tx)
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
	recorded := hashOf(last.Anchor.TxHash)
	r, err := w.chain.Receipt(ctx, recorded)
	switch {
	case err == nil && r.BlockHash == hashOf(last.Anchor.BlockHash):
		return nil
	case err == nil: // the same transaction, mined again in another block
		return w.reRecord(last, recorded)
	case !errors.Is(err, proof.ErrNotFound):
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
		w.logger.Debug("anchor worker: no receipt yet for the recorded anchor", "tx", proof.TxHex(tx))
		return nil
	}
	return w.reRecord(last, tx)
}

// reRecord makes the flight record last's size again with tx, once its
// block has the confirmations.
func (w *Worker) reRecord(last *record, tx [32]byte) error {
	w.logger.Warn("anchor worker: the latest anchor moved to another block; recording it again", "size", last.TreeSize, "tx", proof.TxHex(tx))
	w.follow(last.TreeSize, last.Root, tx)
	return nil
}

// follow has the Chain confirm tx, found on the chain, as the anchor of
// root at size.
func (w *Worker) follow(size uint64, root [32]byte, tx [32]byte) {
	w.chain.Follow(size, root, tx)
	w.flying = true
	w.setInFlight(size, w.cfg.Now())
}

// hashOf decodes a tx_hash or block_hash of a record ("0x" and 64 hex
// digits, as the worker wrote it); anything else is the zero hash, which
// no transaction or block has.
func hashOf(s string) [32]byte {
	var h proof.Hash
	if h.UnmarshalText([]byte(strings.TrimPrefix(s, "0x"))) != nil {
		return [32]byte{}
	}
	return h
}
