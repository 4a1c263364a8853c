package anchor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/domain"
)

// leaf is a row of anchor_leaves.
type leaf struct {
	Position   uint64
	EventID    string
	Hash       [merkle.HashSize]byte
	DataLeaves uint64 // leaves at positions ≤ Position that are not anchor records
}

// record is a row of anchor_records: one AnchorRecorded event.
type record struct {
	Position   uint64 // of the AnchorRecorded event in the log
	TreeSize   uint64
	Root       [merkle.HashSize]byte
	Anchor     proof.Anchor
	RecordedAt time.Time
}

// contract returns the anchor's contract address, zero if the record's is
// not one (the worker writes only addresses).
func (r *record) contract() proof.Address {
	a, _ := proof.ParseAddress(r.Anchor.Contract)
	return a
}

// anchorOf returns the proof format's anchor of a record event.
func anchorOf(a domain.AnchorRecorded) proof.Anchor {
	return proof.Anchor{ChainID: a.ChainID, Contract: a.Contract, TxHash: a.TxHash, BlockNumber: a.BlockNumber, BlockHash: a.BlockHash}
}

// parseRoot decodes 64 hex digits.
func parseRoot(s string) ([merkle.HashSize]byte, error) {
	var h proof.Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

const leafColumns = `position, event_id, leaf_hash, data_leaves`

const recordColumns = `position, tree_size, root, chain_id, contract, tx_hash, block_number, block_hash, recorded_at`

// errNoRow is returned by the lookups below when nothing matches.
var errNoRow = errors.New("no such row")

func scanLeaf(row rowScanner) (*leaf, error) {
	var l leaf
	var pos, data int64
	var hash []byte
	if err := row.Scan(&pos, &l.EventID, &hash, &data); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoRow
		}
		return nil, fmt.Errorf("read leaf index: %w", err)
	}
	if len(hash) != merkle.HashSize {
		return nil, fmt.Errorf("leaf index: position %d has a %d-byte hash", pos, len(hash))
	}
	l.Position, l.Hash, l.DataLeaves = uint64(pos), [merkle.HashSize]byte(hash), uint64(data)
	return &l, nil
}

// leafByID returns the leaf of event id, or errNoRow.
func leafByID(ctx context.Context, q sqlQuerier, id string) (*leaf, error) {
	return scanLeaf(q.QueryRow(ctx, `SELECT `+leafColumns+` FROM anchor_leaves WHERE event_id = ?`, id))
}

// leafAt returns the leaf at position, or errNoRow.
func leafAt(ctx context.Context, q sqlQuerier, position uint64) (*leaf, error) {
	return scanLeaf(q.QueryRow(ctx, `SELECT `+leafColumns+` FROM anchor_leaves WHERE position = ?`, int64(position)))
}

// lastLeaf returns the leaf at the highest position, or errNoRow.
func lastLeaf(ctx context.Context, q sqlQuerier) (*leaf, error) {
	return scanLeaf(q.QueryRow(ctx, `SELECT `+leafColumns+` FROM anchor_leaves ORDER BY position DESC LIMIT 1`))
}

// leavesFrom returns up to max leaves from position from on, in order.
func leavesFrom(ctx context.Context, q sqlQuerier, from uint64, max int) ([]*leaf, error) {
	rows, err := q.Query(ctx, `SELECT `+leafColumns+` FROM anchor_leaves WHERE position >= ? ORDER BY position LIMIT ?`, int64(from), max)
	if err != nil {
		return nil, fmt.Errorf("read leaf index: %w", err)
	}
	defer rows.Close()
	var out []*leaf
	for rows.Next() {
		l, err := scanLeaf(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read leaf index: %w", err)
	}
	return out, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRecord(row rowScanner) (*record, error) {
	var r record
	var pos, size, chainID, block, at int64
	var root []byte
	err := row.Scan(&pos, &size, &root, &chainID, &r.Anchor.Contract, &r.Anchor.TxHash, &block, &r.Anchor.BlockHash, &at)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoRow
		}
		return nil, fmt.Errorf("read anchor index: %w", err)
	}
	if len(root) != merkle.HashSize {
		return nil, fmt.Errorf("anchor index: record at position %d has a %d-byte root", pos, len(root))
	}
	r.Position, r.TreeSize, r.Root = uint64(pos), uint64(size), [merkle.HashSize]byte(root)
	r.Anchor.ChainID, r.Anchor.BlockNumber = uint64(chainID), uint64(block)
	r.RecordedAt = time.UnixMicro(at).UTC()
	return &r, nil
}

// latestRecord returns the record of the largest anchored size (the latest
// record of it), or errNoRow.
func latestRecord(ctx context.Context, q sqlQuerier) (*record, error) {
	return scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns+` FROM anchor_records
		ORDER BY tree_size DESC, position DESC LIMIT 1`))
}

// latestRecordOn returns the latest record of the largest size anchored on
// chainID in contract, or errNoRow.
func latestRecordOn(ctx context.Context, q sqlQuerier, chainID uint64, contract proof.Address) (*record, error) {
	return scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns+` FROM anchor_records
		WHERE chain_id = ? AND contract = ? ORDER BY tree_size DESC, position DESC LIMIT 1`,
		int64(chainID), strings.ToLower(contract.Hex())))
}

// recordAt returns the latest record of exactly size, or errNoRow.
func recordAt(ctx context.Context, q sqlQuerier, size uint64) (*record, error) {
	return scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns+` FROM anchor_records
		WHERE tree_size = ? ORDER BY position DESC LIMIT 1`, int64(size)))
}

// recordsAfter returns up to max records with a position above position,
// in position order.
func recordsAfter(ctx context.Context, q sqlQuerier, position uint64, max int) ([]*record, error) {
	rows, err := q.Query(ctx, `SELECT `+recordColumns+` FROM anchor_records
		WHERE position > ? ORDER BY position LIMIT ?`, int64(position), max)
	if err != nil {
		return nil, fmt.Errorf("read anchor index: %w", err)
	}
	defer rows.Close()
	var out []*record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read anchor index: %w", err)
	}
	return out, nil
}
