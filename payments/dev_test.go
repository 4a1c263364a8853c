package payments_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
)

// TestDevCheckoutCreditsAtOnce buys a package from the dev provider on
// every backend:
//
//  1. Checkout answers a dev session, dev_{purchase id}, with the success
//     URL filled in.
//  2. The account already holds the credits.
//  3. The log holds one credits.purchased event with provider dev and that
//     session, so the purchase shows as dev wherever it is shown.
func TestDevCheckoutCreditsAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		d, err := payments.NewDev(payments.Config{SuccessURL: testSuccessURL}, e.svc, e.logger())
		if err != nil {
			t.Fatal(err)
		}
		user := domain.UserID("u-dev")

		// 1.
		c, err := d.Checkout(ctx, user, "credits_500")
		if err != nil {
			t.Fatalf("Checkout: %v", err)
		}
		if !c.Dev || c.SessionID != "dev_"+c.PurchaseID || !strings.HasSuffix(c.CheckoutURL, "session_id="+c.SessionID) {
			t.Errorf("Checkout() = %+v, want a dev session dev_{purchase id} and the success URL", c)
		}

		// 2.
		if got := e.account(t, user); got.Balance() != 500 || got.Purchased() != 500 {
			t.Errorf("Balance() = %d, Purchased() = %d, want 500 and 500", got.Balance(), got.Purchased())
		}

		// 3.
		events, recs := e.purchased(t)
		if len(events) != 1 {
			t.Fatalf("log holds %d purchases, want 1", len(events))
		}
		if got := events[0]; got.Provider != domain.ProviderDev || got.CheckoutSessionID != c.SessionID ||
			got.PurchaseID != c.PurchaseID || len(got.Postings) != 1 || got.Postings[0].Debit != domain.AccountDevProvider {
			t.Errorf("credits.purchased = %+v, want a dev purchase of session %s from %s", got, c.SessionID, domain.AccountDevProvider)
		}
		if got := recs[0].Metadata.Actor; got != "system:dev-payments" {
			t.Errorf("actor = %q, want system:dev-payments", got)
		}
	})
}

// TestDevCheckoutErrors checks that a bad checkout writes nothing.
func TestDevCheckoutErrors(t *testing.T) {
	e := newEnv(t, backends[0])
	d, err := payments.NewDev(payments.Config{}, e.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		user domain.UserID
		pkg  string
		want error
	}{
		{"ErrUnknownPackage", "u-1", "credits_7", domain.ErrUnknownPackage},
		{"ErrInvalidID", "", "credits_100", domain.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.Checkout(ctx, tt.user, tt.pkg); !errors.Is(err, tt.want) {
				t.Errorf("Checkout() error = %v, want %v", err, tt.want)
			}
			if h := e.head(t); h != 0 {
				t.Errorf("log head = %d, want 0", h)
			}
		})
	}
}

// TestDevCheckoutWithoutSuccessURL checks that Dev works with no URLs
// configured, as serve --dev runs it.
func TestDevCheckoutWithoutSuccessURL(t *testing.T) {
	e := newEnv(t, backends[0])
	d, err := payments.NewDev(payments.Config{}, e.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Checkout(ctx, "u-1", "credits_100")
	if err != nil || c.CheckoutURL != "" || !c.Dev {
		t.Errorf("Checkout() = %+v, %v, want a dev checkout without URL", c, err)
	}
}
