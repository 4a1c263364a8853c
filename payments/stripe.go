package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/rendertrust/rendertrust/domain"
)

// Limits on calls to the Stripe API.
const (
	// stripeRequestTimeout bounds one HTTP request to Stripe (stripe-go's
	// own default is 80 s, longer than a creator will wait for a button).
	stripeRequestTimeout = 30 * time.Second
	// stripeNetworkRetriesMax bounds stripe-go's retries of a request that
	// failed in transit. They are safe: every session is created with an
	// idempotency key.
	stripeNetworkRetriesMax = 2
)

// Stripe starts checkouts as Stripe Checkout Sessions. Its client is its own
// (no stripe-go globals), so several instances, e.g. one per test, coexist.
type Stripe struct {
	api        *client.API
	successURL string
	cancelURL  string
}

// NewStripe returns a Stripe provider for c.SecretKey, talking to c.APIURL
// when set. It returns ErrInvalidConfig when the key, the API URL or the
// success or cancel URL is missing or malformed. A nil log means
// slog.Default().
func NewStripe(c Config, log *slog.Logger) (*Stripe, error) {
	if err := c.checkStripe(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Stripe{
		api:        client.New(c.SecretKey, newBackends(c.APIURL, log)),
		successURL: c.SuccessURL,
		cancelURL:  c.CancelURL,
	}, nil
}

// newBackends returns stripe-go backends of their own: the API backend at
// apiURL (Stripe's when empty), each with a bounded HTTP client and log.
func newBackends(apiURL string, log *slog.Logger) *stripe.Backends {
	config := func(url *string) *stripe.BackendConfig {
		return &stripe.BackendConfig{
			HTTPClient:        &http.Client{Timeout: stripeRequestTimeout},
			LeveledLogger:     stripeLogger{log},
			MaxNetworkRetries: stripe.Int64(stripeNetworkRetriesMax),
			URL:               url,
		}
	}
	var api *string
	if apiURL != "" {
		api = stripe.String(apiURL)
	}
	// One config per backend: GetBackendWithConfig fills in the URL of the
	// config it is given, so a shared one would send Connect and Uploads
	// calls to the API host.
	return &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, config(api)),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, config(nil)),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, config(nil)),
	}
}

// Checkout creates a Checkout Session in payment mode selling the package at
// its list price, tied to the user and a fresh purchase id (client reference
// and metadata), with the purchase id as Stripe idempotency key. It returns
// the session's URL and id. It returns domain.ErrInvalidID for a bad user
// id, domain.ErrUnknownPackage, and an internal error (wrapping the
// *stripe.Error, if any) when Stripe refuses or cannot be reached.
func (s *Stripe) Checkout(ctx context.Context, user domain.UserID, packageID string) (Checkout, error) {
	pkg, err := checkoutPackage(user, packageID)
	if err != nil {
		return Checkout{}, err
	}
	purchaseID := newPurchaseID()
	params := s.sessionParams(pkg, user, purchaseID)
	params.Context = ctx
	params.SetIdempotencyKey(purchaseID)
	sess, err := s.api.CheckoutSessions.New(params)
	if err != nil {
		return Checkout{}, fmt.Errorf("create Stripe checkout session for purchase %s: %w", purchaseID, err)
	}
	if sess.ID == "" || sess.URL == "" {
		return Checkout{}, fmt.Errorf("create Stripe checkout session for purchase %s: %w", purchaseID, errNoSessionURL)
	}
	return Checkout{CheckoutURL: sess.URL, SessionID: sess.ID, PurchaseID: purchaseID}, nil
}

// errNoSessionURL: Stripe answered a session without id or URL.
var errNoSessionURL = errors.New("Stripe answered a session without id or URL")

// sessionParams returns the parameters of a session selling one pkg to user
// as purchase purchaseID.
func (s *Stripe) sessionParams(pkg domain.Package, user domain.UserID, purchaseID string) *stripe.CheckoutSessionParams {
	metadata := map[string]string{
		metaUserID:     string(user),
		metaPurchaseID: purchaseID,
		metaPackageID:  pkg.ID,
	}
	p := &stripe.CheckoutSessionParams{
		Mode: stripe.String(string(stripe.CheckoutSessionModePayment)),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String(pkg.Currency),
				UnitAmount:  stripe.Int64(pkg.AmountCents),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(pkg.Name)},
			},
			Quantity: stripe.Int64(1),
		}},
		ClientReferenceID: stripe.String(string(user)),
		Metadata:          metadata,
		// The PaymentIntent carries the same metadata so that a refund or a
		// dispute, which names the payment and not the session, can be
		// traced to its purchase.
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: metadata},
		SuccessURL:        stripe.String(s.successURL),
	}
	if s.cancelURL != "" {
		p.CancelURL = stripe.String(s.cancelURL)
	}
	return p
}

// stripeLogger passes stripe-go's warnings and errors to slog and drops its
// chatter.
type stripeLogger struct{ log *slog.Logger }

var _ stripe.LeveledLoggerInterface = stripeLogger{}

func (stripeLogger) Debugf(string, ...any) {}
func (stripeLogger) Infof(string, ...any)  {}
func (l stripeLogger) Warnf(format string, v ...any) {
	l.log.Warn("stripe-go: " + fmt.Sprintf(format, v...))
}
func (l stripeLogger) Errorf(format string, v ...any) {
	l.log.Error("stripe-go: " + fmt.Sprintf(format, v...))
}
