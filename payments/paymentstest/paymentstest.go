// Package paymentstest has hand-written fakes of what package payments
// consumes and provides, for tests of payments and of the API.
package paymentstest

import (
	"context"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
)

// Provider is a payments.Provider whose Checkout calls CheckoutFn.
type Provider struct {
	CheckoutFn func(ctx context.Context, user domain.UserID, packageID string) (payments.Checkout, error)
}

var _ payments.Provider = (*Provider)(nil)

// Checkout calls CheckoutFn.
func (p *Provider) Checkout(ctx context.Context, user domain.UserID, packageID string) (payments.Checkout, error) {
	return p.CheckoutFn(ctx, user, packageID)
}

// Fulfiller is a payments.Fulfiller whose FulfilPurchase calls
// FulfilPurchaseFn.
type Fulfiller struct {
	FulfilPurchaseFn func(ctx context.Context, a commands.Actor, user domain.UserID, p domain.Purchase) (uint64, error)
}

var _ payments.Fulfiller = (*Fulfiller)(nil)

// FulfilPurchase calls FulfilPurchaseFn.
func (f *Fulfiller) FulfilPurchase(ctx context.Context, a commands.Actor, user domain.UserID, p domain.Purchase) (uint64, error) {
	return f.FulfilPurchaseFn(ctx, a, user, p)
}
