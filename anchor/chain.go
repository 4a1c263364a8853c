package anchor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Chain is what the Worker needs of the chain, in plain types: reads of
// the contract and of receipts, and a sender that gets one anchor at a
// time mined and confirmed, or reports it lost. *ethchain.Sender
// implements it; the transactions, their nonces, fees, replacements and
// confirmations are its business. Reads that find nothing return errors
// wrapping proof.ErrNotFound. One Worker drives a Chain at a time.
type Chain interface {
	ChainID() uint64
	Contract() proof.Address
	Head(ctx context.Context) (uint64, error)
	Receipt(ctx context.Context, tx [32]byte) (*proof.Receipt, error)
	LatestSize(ctx context.Context, contract proof.Address) (uint64, error)
	RootAt(ctx context.Context, contract proof.Address, size uint64) ([32]byte, error)
	// FindAnchor returns the transaction whose Anchored event set size in
	// contract, searching from block from on.
	FindAnchor(ctx context.Context, contract proof.Address, size, from uint64) ([32]byte, error)

	// Resume follows the anchor an earlier run sent and did not see
	// confirmed (its transactions are saved in Attempts); ok is false if
	// there is none.
	Resume(ctx context.Context) (f Flight, ok bool, err error)
	// Anchor sends the anchor of root at size and follows it. sent is
	// false, with no error, when the chain already holds size or a larger
	// one. An error with sent true is a failed first broadcast: the anchor
	// is followed all the same.
	Anchor(ctx context.Context, size uint64, root [32]byte) (sent bool, err error)
	// Follow follows tx, found on the chain, as the anchor of root at size.
	Follow(size uint64, root [32]byte, tx [32]byte)
	// Poll looks once at the anchor followed: mined and confirmed, lost,
	// or still on its way (neither).
	Poll(ctx context.Context) (Progress, error)
	// Forget stops following the anchor, once recorded, and deletes its
	// saved transactions.
	Forget(ctx context.Context) error
}

// Flight is an anchor on its way to the chain.
type Flight struct {
	Size      uint64
	Root      [merkle.HashSize]byte
	StartedAt time.Time // its first send; zero for an anchor found on the chain
}

// Progress is what Chain.Poll saw of the anchor followed.
type Progress struct {
	// Mined is set once the anchor is mined and confirmed: record it,
	// then Forget it.
	Mined *Mined
	// Lost says the anchor is no longer followed: its nonce was used by
	// another transaction, the contract refused it, or a transaction found
	// on the chain left it. Look at the chain afresh.
	Lost bool
	// Replaced says this poll replaced a stuck transaction.
	Replaced bool
}

// Mined is an anchor mined and confirmed.
type Mined struct {
	Flight
	TxHash      [32]byte
	BlockNumber uint64
	BlockHash   [32]byte
	GasUsed     uint64
}

// Attempt is one signed anchor transaction that may be mined.
type Attempt struct {
	TxHash [32]byte
	Nonce  uint64
	Size   uint64
	Root   [merkle.HashSize]byte
	Raw    []byte // the signed transaction as the chain encodes it
	SentAt time.Time
}

// Attempts keeps the signed transactions of the anchor in flight in the
// audit log's database (anchor_attempts), so that a restarted sender knows
// every transaction that may be mined and sends nothing twice.
type Attempts struct{ db *sqldb.DB }

// NewAttempts returns the attempts kept in db (its tables made by Migrate
// or OpenLog).
func NewAttempts(db *sqldb.DB) *Attempts { return &Attempts{db: db} }

// Save stores a, before it is sent. Saving it again is a no-op. It returns
// the database's error.
func (s *Attempts) Save(ctx context.Context, a Attempt) error {
	_, err := s.db.Exec(ctx, `INSERT INTO anchor_attempts (tx_hash, nonce, tree_size, root, raw, sent_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tx_hash) DO NOTHING`,
		proof.TxHex(a.TxHash), int64(a.Nonce), int64(a.Size), a.Root[:], a.Raw, a.SentAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("save anchor transaction: %w", err)
	}
	return nil
}

// Load returns the saved attempts by nonce, then by time sent. It returns
// the database's error.
func (s *Attempts) Load(ctx context.Context) ([]Attempt, error) {
	rows, err := s.db.Query(ctx, `SELECT tx_hash, nonce, tree_size, root, raw, sent_at FROM anchor_attempts ORDER BY nonce, sent_at`)
	if err != nil {
		return nil, fmt.Errorf("read anchor transactions: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var hash string
		var nonce, size, sentAt int64
		var root, raw []byte
		if err := rows.Scan(&hash, &nonce, &size, &root, &raw, &sentAt); err != nil {
			return nil, fmt.Errorf("read anchor transaction: %w", err)
		}
		if len(root) != merkle.HashSize {
			return nil, fmt.Errorf("anchor transaction %s has a %d-byte root", hash, len(root))
		}
		var tx proof.Hash
		if err := tx.UnmarshalText([]byte(strings.TrimPrefix(hash, "0x"))); err != nil {
			return nil, fmt.Errorf("anchor transaction %q: %w", hash, err)
		}
		out = append(out, Attempt{TxHash: tx, Nonce: uint64(nonce), Size: uint64(size), Root: [merkle.HashSize]byte(root),
			Raw: raw, SentAt: time.UnixMicro(sentAt)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read anchor transactions: %w", err)
	}
	return out, nil
}

// Clear deletes every saved attempt. It returns the database's error.
func (s *Attempts) Clear(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM anchor_attempts`); err != nil {
		return fmt.Errorf("forget anchor transactions: %w", err)
	}
	return nil
}
