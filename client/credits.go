package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Balance is an account's credits.
type Balance struct {
	Balance   int64 `json:"balance"`   // purchases + grants + refunds − deductions
	Held      int64 `json:"held"`      // set aside for jobs that have not ended
	Available int64 `json:"available"` // Balance − Held: what new jobs can use
}

// Balance returns the caller's credits.
func (c *Client) Balance(ctx context.Context) (Balance, error) {
	var b Balance
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/credits/balance", auth: true}, &b)
	return b, err
}

// Transaction is one credit movement.
type Transaction struct {
	// EntryID is the ledger entry, whose Merkle proof Proof returns.
	EntryID string `json:"entry_id"`
	// Type is purchase, grant, hold, deduction, release or refund.
	Type string `json:"type"`
	// Amount is positive; Type says which way the credits went.
	Amount   int64     `json:"amount"`
	JobID    string    `json:"job_id,omitempty"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
	Dev      bool      `json:"dev,omitempty"` // bought from the development payment provider: nothing was paid
	Position uint64    `json:"position"`      // the entry's place in the ledger
	Anchored bool      `json:"anchored"`      // covered by an on-chain anchor yet
}

// TransactionQuery selects a page of transactions.
type TransactionQuery struct {
	Limit  int    // 1..PageLimitMax; 0 for the server's default (50)
	Cursor string // a previous page's NextCursor; "" for the newest
}

// TransactionPage is one page of transactions, newest first.
type TransactionPage struct {
	Transactions []Transaction `json:"transactions"`
	NextCursor   string        `json:"next_cursor,omitempty"` // "" on the last page
}

// Transactions returns one page of the caller's credit movements. It
// returns an *APIError matching ErrInvalid for a bad limit or cursor.
func (c *Client) Transactions(ctx context.Context, q TransactionQuery) (TransactionPage, error) {
	v := url.Values{}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p TransactionPage
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/credits/transactions", query: v, auth: true}, &p)
	return p, err
}

// AllTransactions iterates over the caller's credit movements, newest
// first, fetching pages as it goes. Iteration stops after yielding an
// error.
func (c *Client) AllTransactions(ctx context.Context) iter.Seq2[Transaction, error] {
	return func(yield func(Transaction, error) bool) {
		q := TransactionQuery{Limit: PageLimitMax}
		for {
			p, err := c.Transactions(ctx, q)
			if err != nil {
				yield(Transaction{}, err)
				return
			}
			for _, t := range p.Transactions {
				if !yield(t, nil) {
					return
				}
			}
			if p.NextCursor == "" || len(p.Transactions) == 0 {
				return
			}
			q.Cursor = p.NextCursor
		}
	}
}

// UsageQuery selects the days of the usage chart.
type UsageQuery struct {
	Days     int    // 1..90; 0 for 7
	TimeZone string // IANA name whose midnights divide the days; "" for UTC
}

// Usage is the credits consumed per local day.
type Usage struct {
	TimeZone string     `json:"time_zone"`
	Days     []UsageDay `json:"days"` // oldest first, today last
	Total    int64      `json:"total"`
}

// UsageDay is the credits consumed on one day.
type UsageDay struct {
	Date    string `json:"date"` // YYYY-MM-DD
	Credits int64  `json:"credits"`
}

// Usage returns the caller's credit consumption per day, the guide's 7-day
// chart by default. It returns an *APIError matching ErrInvalid for a bad
// day count or time zone.
func (c *Client) Usage(ctx context.Context, q UsageQuery) (Usage, error) {
	v := url.Values{}
	if q.Days != 0 {
		v.Set("days", strconv.Itoa(q.Days))
	}
	if q.TimeZone != "" {
		v.Set("tz", q.TimeZone)
	}
	var u Usage
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/credits/usage", query: v, auth: true}, &u)
	return u, err
}

// Package is a credit package for sale.
type Package struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Credits    int64  `json:"credits"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

// Packages returns the credit packages for sale; it needs no session.
func (c *Client) Packages(ctx context.Context) ([]Package, error) {
	var resp struct {
		Packages []Package `json:"packages"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/credits/packages"}, &resp)
	return resp.Packages, err
}

// Checkout is a started purchase.
type Checkout struct {
	// CheckoutURL is the Stripe page where the purchase is paid; under the
	// development provider (Dev) the credits are already on the account.
	CheckoutURL string `json:"checkout_url"`
	SessionID   string `json:"session_id"`
	PurchaseID  string `json:"purchase_id"`
	Dev         bool   `json:"dev"`
}

// Checkout starts buying a credit package. The credits arrive once the
// payment is confirmed (at once under the development provider). It
// returns an *APIError: ErrInvalid for an unknown package, ErrUnavailable
// when the server has no payment provider.
func (c *Client) Checkout(ctx context.Context, packageID string) (Checkout, error) {
	var co Checkout
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/credits/checkout", body: map[string]string{"package_id": packageID}, auth: true}, &co)
	return co, err
}
