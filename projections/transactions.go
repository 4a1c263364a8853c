package projections

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// transactionsProjection is the "transactions" read model: one row per
// credit movement, i.e. per account event that moves credits (table
// rm_transactions).
type transactionsProjection struct{}

var _ Projection = transactionsProjection{}

const transactionsView = "rm_transactions"

var transactionColumns = []string{"entry_id", "user_id", "position", "tx_type", "amount", "job_id", "at", "dev", "reason"}

// The transaction types, as the API shows them.
const (
	TxPurchase  = "purchase"
	TxGrant     = "grant"
	TxHold      = "hold"
	TxDeduction = "deduction"
	TxRelease   = "release"
	TxRefund    = "refund"
)

// Name returns "transactions".
func (transactionsProjection) Name() string { return "transactions" }

// Tables returns rm_transactions, keyed by entry (event) id, indexed for
// each user's history newest first.
func (transactionsProjection) Tables() []Table {
	return []Table{{
		Name: transactionsView,
		Columns: []string{
			"entry_id TEXT NOT NULL", "user_id TEXT NOT NULL", "position BIGINT NOT NULL",
			"tx_type TEXT NOT NULL", "amount BIGINT NOT NULL", "job_id TEXT NOT NULL",
			"at BIGINT NOT NULL", "dev BOOLEAN NOT NULL", "reason TEXT NOT NULL",
		},
		PrimaryKey: []string{"entry_id"},
		Indexes:    [][]string{{"user_id", "position DESC"}},
	}}
}

// transactionRow is one row of rm_transactions.
type transactionRow struct {
	EntryID, UserID string
	Position        int64
	Type            string
	Amount          int64
	JobID           string
	At              int64
	Dev             bool
	Reason          string
}

func (t *transactionRow) values(args []any) []any {
	return append(args, t.EntryID, t.UserID, t.Position, t.Type, t.Amount, t.JobID, t.At, t.Dev, t.Reason)
}

// Apply inserts a row for each account event that moves credits.
func (transactionsProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	var rows []transactionRow
	for _, e := range events {
		if row, ok := transactionOf(e); ok {
			rows = append(rows, row)
		}
	}
	w := rowWriter{table: t.Name(transactionsView), columns: transactionColumns}
	return w.write(ctx, tx, len(rows), func(i int, args []any) []any { return rows[i].values(args) })
}

// transactionOf returns the credit movement an event records, if any.
// Zero-credit holds, deductions and releases (free jobs) move nothing.
func transactionOf(e Event) (transactionRow, bool) {
	row := transactionRow{EntryID: e.ID, Position: int64(e.Position), At: micros(domain.OccurredAt(e.Decoded))}
	switch d := e.Decoded.(type) {
	case domain.CreditsPurchased:
		row.UserID, row.Type, row.Amount, row.Dev = string(d.UserID), TxPurchase, int64(d.Credits), d.Provider == domain.ProviderDev
	case domain.CreditsGranted:
		row.UserID, row.Type, row.Amount, row.Reason = string(d.UserID), TxGrant, int64(d.Amount), d.Reason
	case domain.CreditsHeld:
		row.UserID, row.Type, row.Amount, row.JobID = string(d.UserID), TxHold, int64(d.Amount), string(d.JobID)
	case domain.CreditsDeducted:
		row.UserID, row.Type, row.Amount, row.JobID = string(d.UserID), TxDeduction, int64(d.Amount), string(d.JobID)
	case domain.HoldReleased:
		row.UserID, row.Type, row.Amount, row.JobID, row.Reason = string(d.UserID), TxRelease, int64(d.Amount), string(d.JobID), d.Reason
	case domain.CreditsRefunded:
		row.UserID, row.Type, row.Amount, row.JobID, row.Reason = string(d.UserID), TxRefund, int64(d.Amount), string(d.JobID), d.Reason
	default:
		return transactionRow{}, false
	}
	return row, row.Amount != 0
}

// Transaction is one credit movement of a user, as the API shows it.
type Transaction struct {
	// EntryID is the event's id: the ledger entry whose Merkle proof the
	// API serves.
	EntryID string `json:"entry_id"`
	// Type is purchase, grant, hold, deduction, release or refund.
	Type string `json:"type"`
	// Amount is positive; Type says which way the credits went.
	Amount int64     `json:"amount"`
	JobID  string    `json:"job_id,omitempty"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
	// Dev marks credits bought through the development payment provider.
	Dev bool `json:"dev,omitempty"`
	// Position is the entry's place in the log.
	Position uint64 `json:"position"`
	// Anchored says whether the entry is covered by an on-chain anchor yet.
	Anchored bool `json:"anchored"`
}

// TransactionQuery selects a page of a user's transactions.
type TransactionQuery struct {
	// Cursor continues after a previous page; "" starts with the newest.
	Cursor string
	// Limit is the page size, 1..PageLimitMax; 0 means PageLimitDefault.
	Limit int
	// AnchoredSize is the size of the log's latest anchored tree: entries
	// at positions up to it are anchored.
	AnchoredSize uint64
}

// TransactionPage is one page of transactions, newest first.
type TransactionPage struct {
	Transactions []Transaction `json:"transactions"`
	// NextCursor fetches the next page; "" on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

const transactionCursorKind = "tx"

// Transactions returns a page of user's credit movements, newest (highest
// log position) first. It fails with ErrInvalidQuery for a bad limit,
// ErrInvalidCursor for a bad cursor, or a database error.
func (r *Reader) Transactions(ctx context.Context, user domain.UserID, q TransactionQuery) (TransactionPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return TransactionPage{}, err
	}
	where, args := []string{"user_id = ?"}, []any{string(user)}
	if q.Cursor != "" {
		parts, err := decodeCursor(q.Cursor, transactionCursorKind, 1)
		if err != nil {
			return TransactionPage{}, err
		}
		pos, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return TransactionPage{}, fmt.Errorf("%w: bad position", ErrInvalidCursor)
		}
		where, args = append(where, "position < ?"), append(args, pos)
	}
	rows, err := r.db.Query(ctx, "SELECT entry_id, position, tx_type, amount, job_id, at, dev, reason FROM "+transactionsView+
		" WHERE "+strings.Join(where, " AND ")+" ORDER BY position DESC LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return TransactionPage{}, fmt.Errorf("list transactions: %w", err)
	}
	defer rows.Close()
	page := TransactionPage{Transactions: make([]Transaction, 0, limit)}
	for rows.Next() {
		if len(page.Transactions) == limit {
			last := page.Transactions[limit-1]
			page.NextCursor = encodeCursor(transactionCursorKind, strconv.FormatUint(last.Position, 10))
			break
		}
		var (
			t       Transaction
			pos, at int64
		)
		if err := rows.Scan(&t.EntryID, &pos, &t.Type, &t.Amount, &t.JobID, &at, &t.Dev, &t.Reason); err != nil {
			return TransactionPage{}, fmt.Errorf("list transactions: %w", err)
		}
		t.Position, t.Time, t.Anchored = uint64(pos), timeOf(at), uint64(pos) <= q.AnchoredSize
		page.Transactions = append(page.Transactions, t)
	}
	if err := rows.Err(); err != nil {
		return TransactionPage{}, fmt.Errorf("list transactions: %w", err)
	}
	return page, nil
}
