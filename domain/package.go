package domain

import "fmt"

// Package is a credit package a user can buy: Credits for AmountCents in
// Currency (ISO 4217, lower case, as Stripe spells it).
type Package struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Credits     Credits `json:"credits"`
	AmountCents int64   `json:"amount_cents"`
	Currency    string  `json:"currency"`
}

// packages are the credit packages on sale, cheapest first.
var packages = [...]Package{
	{ID: "credits_100", Name: "100 credits", Credits: 100, AmountCents: 1000, Currency: "usd"},
	{ID: "credits_500", Name: "500 credits", Credits: 500, AmountCents: 4000, Currency: "usd"},
	{ID: "credits_1000", Name: "1,000 credits", Credits: 1000, AmountCents: 7000, Currency: "usd"},
}

// Packages returns the credit packages on sale, cheapest first.
func Packages() []Package { return append([]Package(nil), packages[:]...) }

// LookupPackage returns the package with the given id, or ErrUnknownPackage.
func LookupPackage(id string) (Package, error) {
	for _, p := range packages {
		if p.ID == id {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("%w: %q", ErrUnknownPackage, truncate(id, 40))
}

// Purchase returns the Purchase of this package at its list price, ready
// for Account.Purchase. It does not validate; Account.Purchase does.
func (p Package) Purchase(purchaseID string, provider Provider, checkoutSessionID string) Purchase {
	return Purchase{
		PurchaseID:        purchaseID,
		PackageID:         p.ID,
		Credits:           p.Credits,
		AmountCents:       p.AmountCents,
		Currency:          p.Currency,
		Provider:          provider,
		CheckoutSessionID: checkoutSessionID,
	}
}
