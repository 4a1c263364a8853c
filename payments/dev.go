package payments

import (
	"context"
	"log/slog"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// devSessionPrefix starts every dev checkout session id, so a dev purchase
// is recognizable by its session as well as by its provider.
const devSessionPrefix = "dev_"

// devActor is who credits dev purchases, in event metadata.
const devActor = "system:dev-payments"

// Dev is the payment provider of serve --dev: a checkout completes at once,
// through the same fulfilment path as a paid Stripe session, with provider
// "dev" so the purchase is marked as such in its event and everywhere it is
// shown. Nothing is charged.
type Dev struct {
	fulfiller  Fulfiller
	successURL string
	log        *slog.Logger
}

// NewDev returns the dev provider, crediting through f. It returns
// ErrDevRefused when c configures any Stripe key (a real deployment must
// never hand out credits unpaid) and ErrInvalidConfig for a malformed
// success URL. A nil log means slog.Default().
func NewDev(c Config, f Fulfiller, log *slog.Logger) (*Dev, error) {
	if err := c.checkDev(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Dev{fulfiller: f, successURL: c.SuccessURL, log: log}, nil
}

// Checkout credits the package to user at once and returns the session
// (dev_{purchase id}) with Dev set, and the success URL as checkout URL. It
// returns domain.ErrInvalidID for a bad user id, domain.ErrUnknownPackage,
// and an internal error when the store fails.
func (d *Dev) Checkout(ctx context.Context, user domain.UserID, packageID string) (Checkout, error) {
	pkg, err := checkoutPackage(user, packageID)
	if err != nil {
		return Checkout{}, err
	}
	purchaseID := newPurchaseID()
	c := paidCheckout{
		provider:    domain.ProviderDev,
		sessionID:   devSessionPrefix + purchaseID,
		purchaseID:  purchaseID,
		packageID:   pkg.ID,
		user:        user,
		amountCents: pkg.AmountCents,
		currency:    pkg.Currency,
	}
	a := commands.Actor{ID: devActor, CorrelationID: purchaseID}
	if err := fulfil(ctx, d.fulfiller, a, c); err != nil {
		return Checkout{}, err
	}
	d.log.Info("dev checkout credited; nothing was charged",
		"user_id", user, "purchase_id", purchaseID, "package_id", pkg.ID)
	return Checkout{
		CheckoutURL: successURL(d.successURL, c.sessionID),
		SessionID:   c.sessionID,
		PurchaseID:  purchaseID,
		Dev:         true,
	}, nil
}
