package payments

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// Checkout is a started checkout, as the API answers it.
type Checkout struct {
	// CheckoutURL is the page where the user pays (Stripe), or the success
	// URL (Dev, where the purchase is already credited; empty when no
	// success URL is configured).
	CheckoutURL string `json:"checkout_url"`
	// SessionID is the provider's checkout session: cs_… for Stripe,
	// dev_{purchase id} for Dev.
	SessionID string `json:"session_id"`
	// PurchaseID is the purchase the session will credit, a UUIDv7.
	PurchaseID string `json:"purchase_id"`
	// Dev is true when nothing is charged: the dev provider credited the
	// purchase at once.
	Dev bool `json:"dev"`
}

// Provider starts checkouts of credit packages. Stripe and Dev implement it;
// the API consumes it.
type Provider interface {
	// Checkout starts the purchase of package packageID by user. It returns
	// domain.ErrInvalidID for a bad user id, domain.ErrUnknownPackage, and
	// an internal (non-*domain.Error) error when the provider or the store
	// fails.
	Checkout(ctx context.Context, user domain.UserID, packageID string) (Checkout, error)
}

// Fulfiller credits paid checkouts. *commands.Service is one: it credits
// once per purchase id and once per checkout session.
type Fulfiller interface {
	FulfilPurchase(ctx context.Context, a commands.Actor, user domain.UserID, p domain.Purchase) (uint64, error)
}

var (
	_ Provider  = (*Stripe)(nil)
	_ Provider  = (*Dev)(nil)
	_ Fulfiller = (*commands.Service)(nil)
)

// Metadata keys set on every Checkout Session (and its PaymentIntent). The
// webhook reads them back from sessions created long before, so they never
// change.
const (
	metaUserID     = "user_id"
	metaPurchaseID = "purchase_id"
	metaPackageID  = "package_id"
)

// sessionIDPlaceholder is the template Stripe fills in success URLs.
const sessionIDPlaceholder = "{CHECKOUT_SESSION_ID}"

// checkoutPackage validates a checkout request and returns its package, or
// domain.ErrInvalidID or domain.ErrUnknownPackage.
func checkoutPackage(user domain.UserID, packageID string) (domain.Package, error) {
	if !domain.ValidID(string(user)) {
		return domain.Package{}, fmt.Errorf("%w: user id %.40q", domain.ErrInvalidID, user)
	}
	return domain.LookupPackage(packageID)
}

// newPurchaseID returns a fresh purchase id, a UUIDv7. It is also the Stripe
// idempotency key of the session that sells it.
func newPurchaseID() string { return uuid.Must(uuid.NewV7()).String() }

// successURL fills the session id into a success URL template.
func successURL(template, sessionID string) string {
	return strings.ReplaceAll(template, sessionIDPlaceholder, sessionID)
}
