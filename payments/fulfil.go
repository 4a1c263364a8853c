package payments

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// paidCheckout is a checkout a provider reports as paid: what the webhook
// reads from a Stripe session and what Dev makes up at once.
type paidCheckout struct {
	provider    domain.Provider
	sessionID   string
	purchaseID  string
	packageID   string
	user        domain.UserID
	amountCents int64  // what was paid, in the currency's minor unit
	currency    string // ISO 4217, lower case
}

// purchase checks c against the package table and returns the purchase to
// credit. It returns domain.ErrUnknownPackage, domain.ErrInvalidID for a bad
// user id, and domain.ErrInvalidPurchase when the amount or currency paid is
// not the package's price.
func (c paidCheckout) purchase() (domain.Purchase, error) {
	pkg, err := domain.LookupPackage(c.packageID)
	if err != nil {
		return domain.Purchase{}, err
	}
	if !domain.ValidID(string(c.user)) {
		return domain.Purchase{}, fmt.Errorf("%w: user id %.40q", domain.ErrInvalidID, c.user)
	}
	if c.amountCents != pkg.AmountCents || c.currency != pkg.Currency {
		return domain.Purchase{}, fmt.Errorf("%w: paid %d %.10q, package %s costs %d %s",
			domain.ErrInvalidPurchase, c.amountCents, c.currency, pkg.ID, pkg.AmountCents, pkg.Currency)
	}
	return pkg.Purchase(c.purchaseID, c.provider, c.sessionID), nil
}

// fulfil credits a paid checkout to its user: the one path by which every
// provider's purchases reach the ledger. Crediting is idempotent per purchase
// id and per session, so fulfil may run any number of times, concurrently. It
// returns the errors of purchase and of Fulfiller.FulfilPurchase
// (domain.ErrIdempotencyConflict when the purchase id or session was credited
// with other details; an internal error when the store fails).
func fulfil(ctx context.Context, f Fulfiller, a commands.Actor, c paidCheckout) error {
	p, err := c.purchase()
	if err != nil {
		return fmt.Errorf("checkout session %s: %w", c.sessionID, err)
	}
	if _, err := f.FulfilPurchase(ctx, a, c.user, p); err != nil {
		return fmt.Errorf("fulfil purchase %s of session %s: %w", p.PurchaseID, c.sessionID, err)
	}
	return nil
}

// permanent reports whether a fulfilment error is the checkout's fault, so
// no retry can succeed: any application error. Internal errors (the store
// failed or timed out) are worth retrying.
func permanent(err error) bool {
	code := domain.ErrorCode(err)
	return code != "" && code != domain.CodeInternal
}
