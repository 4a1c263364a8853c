package payments

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stripe/stripe-go/v76"

	"github.com/rendertrust/rendertrust/domain"
)

// checkoutSession is the part of a Stripe Checkout Session the webhook reads.
// Field names and types are the same in every Stripe API version, unlike
// stripe.CheckoutSession as a whole.
type checkoutSession struct {
	Object            string                              `json:"object"`
	ID                string                              `json:"id"`
	Mode              stripe.CheckoutSessionMode          `json:"mode"`
	PaymentStatus     stripe.CheckoutSessionPaymentStatus `json:"payment_status"`
	AmountTotal       int64                               `json:"amount_total"`
	Currency          string                              `json:"currency"`
	ClientReferenceID string                              `json:"client_reference_id"`
	Metadata          map[string]string                   `json:"metadata"`
}

// errNotASession: an event's data.object is not a checkout session.
var errNotASession = errors.New("data.object is not a checkout session")

// decodeSession reads a checkout session from an event's data.object, or
// returns errNotASession.
func decodeSession(raw json.RawMessage) (checkoutSession, error) {
	var s checkoutSession
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%w: %w", errNotASession, err)
	}
	if s.Object != "checkout.session" || s.ID == "" {
		return s, fmt.Errorf("%w: object %.40q, id %.40q", errNotASession, s.Object, s.ID)
	}
	return s, nil
}

// ours reports whether RenderTrust created the session: it carries any of
// the metadata keys Stripe.Checkout sets. A Stripe account may serve other
// integrations too; their sessions are none of the webhook's business.
func (s checkoutSession) ours() bool {
	for _, k := range [...]string{metaUserID, metaPurchaseID, metaPackageID} {
		if _, ok := s.Metadata[k]; ok {
			return true
		}
	}
	return false
}

// paidCheckout returns the paid checkout the session reports. It returns
// domain.ErrInvalidPurchase when the session is not in payment mode or its
// client reference differs from its user metadata; the purchase itself is
// checked by fulfil.
func (s checkoutSession) paidCheckout() (paidCheckout, error) {
	user := s.Metadata[metaUserID]
	switch {
	case s.Mode != stripe.CheckoutSessionModePayment:
		return paidCheckout{}, fmt.Errorf("%w: session %s is in mode %.20q, not payment", domain.ErrInvalidPurchase, s.ID, s.Mode)
	case s.ClientReferenceID != user:
		return paidCheckout{}, fmt.Errorf("%w: session %s has client reference %.40q but user %.40q",
			domain.ErrInvalidPurchase, s.ID, s.ClientReferenceID, user)
	}
	return paidCheckout{
		provider:    domain.ProviderStripe,
		sessionID:   s.ID,
		purchaseID:  s.Metadata[metaPurchaseID],
		packageID:   s.Metadata[metaPackageID],
		user:        domain.UserID(user),
		amountCents: s.AmountTotal,
		currency:    s.Currency,
	}, nil
}

// logAttrs names the session in log lines.
func (s checkoutSession) logAttrs() []any {
	return []any{
		"session_id", s.ID, "payment_status", s.PaymentStatus,
		"user_id", s.Metadata[metaUserID], "purchase_id", s.Metadata[metaPurchaseID],
		"package_id", s.Metadata[metaPackageID],
		"amount_total", s.AmountTotal, "currency", s.Currency,
	}
}
