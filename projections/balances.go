package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// balancesProjection is the "balances" read model: one row per user with
// the totals of their account (table rm_balances).
type balancesProjection struct{}

var _ Projection = balancesProjection{}

const balancesView = "rm_balances"

var balanceColumns = []string{
	"user_id", "balance", "held", "purchased", "granted", "deducted", "refunded", "updated_at", "position",
}

// Name returns "balances".
func (balancesProjection) Name() string { return "balances" }

// Tables returns rm_balances, keyed by user.
func (balancesProjection) Tables() []Table {
	return []Table{{
		Name: balancesView,
		Columns: []string{
			"user_id TEXT NOT NULL", "balance BIGINT NOT NULL", "held BIGINT NOT NULL",
			"purchased BIGINT NOT NULL", "granted BIGINT NOT NULL", "deducted BIGINT NOT NULL",
			"refunded BIGINT NOT NULL", "updated_at BIGINT NOT NULL", "position BIGINT NOT NULL",
		},
		PrimaryKey: []string{"user_id"},
	}}
}

// balanceRow is one row of rm_balances.
type balanceRow struct {
	UserID                                 string
	Balance, Held                          int64
	Purchased, Granted, Deducted, Refunded int64
	UpdatedAt, Position                    int64

	dirty bool // changed by the batch being applied
}

func (b *balanceRow) values(args []any) []any {
	return append(args, b.UserID, b.Balance, b.Held, b.Purchased, b.Granted, b.Deducted, b.Refunded, b.UpdatedAt, b.Position)
}

func (b *balanceRow) scan(rows interface{ Scan(...any) error }) error {
	return rows.Scan(&b.UserID, &b.Balance, &b.Held, &b.Purchased, &b.Granted, &b.Deducted, &b.Refunded, &b.UpdatedAt, &b.Position)
}

// Apply folds account events into rm_balances: balance = purchases +
// grants + refunds − deductions; held = open holds.
func (balancesProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	table := t.Name(balancesView)
	users := map[domain.UserID]*balanceRow{}
	var keys []string
	for _, e := range events {
		if u, ok := domain.AccountOf(e.Decoded); ok && users[u] == nil {
			users[u] = &balanceRow{UserID: string(u)}
			keys = append(keys, string(u))
		}
	}
	err := lookup(ctx, tx, table, balanceColumns, "user_id", keys, func(rows *sql.Rows) error {
		var b balanceRow
		if err := b.scan(rows); err != nil {
			return err
		}
		users[domain.UserID(b.UserID)] = &b
		return nil
	})
	if err != nil {
		return err
	}
	var changed []*balanceRow
	for _, e := range events {
		u, ok := domain.AccountOf(e.Decoded)
		if !ok {
			continue
		}
		b := users[u]
		if !b.dirty {
			b.dirty = true
			changed = append(changed, b)
		}
		foldBalance(b, e)
	}
	w := rowWriter{table: table, columns: balanceColumns, conflict: []string{"user_id"}}
	return w.write(ctx, tx, len(changed), func(i int, args []any) []any { return changed[i].values(args) })
}

func foldBalance(b *balanceRow, e Event) {
	switch d := e.Decoded.(type) {
	case domain.CreditsPurchased:
		b.Purchased += int64(d.Credits)
	case domain.CreditsGranted:
		b.Granted += int64(d.Amount)
	case domain.CreditsHeld:
		b.Held += int64(d.Amount)
	case domain.CreditsDeducted:
		b.Held -= int64(d.Amount)
		b.Deducted += int64(d.Amount)
	case domain.HoldReleased:
		b.Held -= int64(d.Amount)
	case domain.CreditsRefunded:
		b.Refunded += int64(d.Amount)
	}
	b.Balance = b.Purchased + b.Granted + b.Refunded - b.Deducted
	b.UpdatedAt, b.Position = micros(domain.OccurredAt(e.Decoded)), int64(e.Position)
}

// Balance is a user's credits.
type Balance struct {
	// Balance is purchases + grants + refunds − deductions.
	Balance int64 `json:"balance"`
	// Held is set aside for accepted jobs that have not ended.
	Held int64 `json:"held"`
	// Available is Balance − Held: what new jobs can use.
	Available int64 `json:"available"`
}

// Balance returns user's credits; a user with no account events has all
// zeros. It fails only with a database error.
func (r *Reader) Balance(ctx context.Context, user domain.UserID) (Balance, error) {
	var b Balance
	err := r.db.QueryRow(ctx, "SELECT balance, held FROM "+balancesView+" WHERE user_id = ?", string(user)).Scan(&b.Balance, &b.Held)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Balance{}, fmt.Errorf("read balance of %s: %w", user, err)
	}
	b.Available = b.Balance - b.Held
	return b, nil
}
