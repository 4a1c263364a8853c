package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// webhookFulfilTimeout bounds crediting one delivery. Stripe gives up on a
// slow endpoint and retries; better to answer 500 ourselves before it does.
const webhookFulfilTimeout = 10 * time.Second

// webhookActor is who credits Stripe purchases, in event metadata; the
// Stripe event id is the correlation id.
const webhookActor = "system:stripe-webhook"

// Webhook delivery errors. Deliver returns them wrapped; check with errors.Is.
var (
	// ErrInvalidSignature: the Stripe-Signature header is missing or
	// malformed, its timestamp is outside the tolerance, or no configured
	// secret verifies the body. Nothing was written.
	ErrInvalidSignature = &domain.Error{Code: domain.CodeInvalidSignature, Message: "invalid Stripe-Signature"}
	// ErrInvalidEvent: a correctly signed body is not a Stripe event.
	ErrInvalidEvent = &domain.Error{Code: domain.CodeInvalid, Message: "invalid Stripe event"}
)

// Outcome says what a verified delivery did. It is answered to Stripe, which
// shows it in the dashboard's delivery log.
type Outcome string

// The outcomes of a verified delivery. All are answered 2xx.
const (
	// OutcomeCredited: the session's purchase is credited, by this delivery
	// or an earlier one.
	OutcomeCredited Outcome = "credited"
	// OutcomeNotPaid: the session is not (or not yet) paid, its delayed
	// payment failed, or it expired. Nothing was credited.
	OutcomeNotPaid Outcome = "not_paid"
	// OutcomeIgnored: an event type not handled, or a session that was not
	// created by RenderTrust (no RenderTrust metadata).
	OutcomeIgnored Outcome = "ignored"
	// OutcomeRejected: a RenderTrust session that cannot be credited as
	// reported (see the package doc). Logged at error level; nothing written.
	OutcomeRejected Outcome = "rejected"
)

// Webhook verifies Stripe webhook deliveries and credits paid checkout
// sessions exactly once. The API's webhook route reads the raw body and
// calls Deliver.
type Webhook struct {
	secrets   []string
	tolerance time.Duration
	fulfiller Fulfiller
	log       *slog.Logger
}

// NewWebhook returns a webhook that verifies deliveries with any of
// c.WebhookSecrets within c.Tolerance and credits through f. It returns
// ErrInvalidConfig when there is no secret, too many, one that is not a
// whsec_… secret, or a tolerance outside (0, 1h]. A nil log means
// slog.Default().
func NewWebhook(c Config, f Fulfiller, log *slog.Logger) (*Webhook, error) {
	tolerance, err := c.checkWebhook()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{
		secrets:   append([]string(nil), c.WebhookSecrets...),
		tolerance: tolerance,
		fulfiller: f,
		log:       log,
	}, nil
}

// Deliver verifies one delivery (its raw body and Stripe-Signature header)
// and handles the event. It returns the outcome, or ErrInvalidSignature or
// ErrInvalidEvent (nothing written; answer 400), or an internal error when
// crediting failed for a reason a retry may fix (answer 5xx so Stripe
// retries; a retry is safe).
func (w *Webhook) Deliver(ctx context.Context, payload []byte, signature string) (Outcome, error) {
	if err := w.authenticate(payload, signature); err != nil {
		return "", err
	}
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return "", fmt.Errorf("%w: no id and type", ErrInvalidEvent)
	}
	return w.handle(ctx, ev)
}

// authenticate returns ErrInvalidSignature unless one of the secrets
// verifies payload within the tolerance.
func (w *Webhook) authenticate(payload []byte, signature string) error {
	err := webhook.ErrNoValidSignature
	for _, secret := range w.secrets {
		err = webhook.ValidatePayloadWithTolerance(payload, signature, secret, w.tolerance)
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			break // verified, or a header or timestamp fault no other secret fixes
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return nil
}

// event is the part of a Stripe event the webhook reads.
type event struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// handle acts on a verified event.
func (w *Webhook) handle(ctx context.Context, ev event) (Outcome, error) {
	log := w.log.With("stripe_event_id", ev.ID, "stripe_event_type", ev.Type)
	switch stripe.EventType(ev.Type) {
	case stripe.EventTypeCheckoutSessionCompleted, stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		return w.sessionPaid(ctx, log, ev)
	case stripe.EventTypeCheckoutSessionAsyncPaymentFailed, stripe.EventTypeCheckoutSessionExpired:
		return w.sessionNotPaid(log, ev)
	default:
		log.Debug("stripe webhook: event type not handled")
		return OutcomeIgnored, nil
	}
}

// sessionPaid credits a session that reports payment_status "paid".
func (w *Webhook) sessionPaid(ctx context.Context, log *slog.Logger, ev event) (Outcome, error) {
	s, err := decodeSession(ev.Data.Object)
	if err != nil {
		log.Error("stripe webhook: cannot read the checkout session; nothing credited", "err", err)
		return OutcomeRejected, nil
	}
	log = log.With(s.logAttrs()...)
	if !s.ours() {
		log.Warn("stripe webhook: checkout session without RenderTrust metadata; ignored")
		return OutcomeIgnored, nil
	}
	switch s.PaymentStatus {
	case stripe.CheckoutSessionPaymentStatusPaid:
	case stripe.CheckoutSessionPaymentStatusUnpaid:
		log.Info("stripe webhook: checkout session not paid yet; waiting for async_payment_succeeded")
		return OutcomeNotPaid, nil
	default: // no_payment_required: every package has a price, so this is not a sale
		log.Warn("stripe webhook: checkout session not paid; nothing credited")
		return OutcomeNotPaid, nil
	}
	c, err := s.paidCheckout()
	if err == nil {
		err = w.fulfil(ctx, ev.ID, c)
	}
	switch {
	case err == nil:
		log.Info("stripe webhook: purchase credited")
		return OutcomeCredited, nil
	case permanent(err):
		log.Error("stripe webhook: paid checkout session cannot be credited; reconcile it by hand", "err", err)
		return OutcomeRejected, nil
	default:
		log.Warn("stripe webhook: crediting failed; Stripe will retry", "err", err)
		return "", err
	}
}

// fulfil credits c within webhookFulfilTimeout. It goes on when the request
// is cancelled, because Stripe hanging up does not undo a payment and a
// half-done append is wasted work.
func (w *Webhook) fulfil(ctx context.Context, eventID string, c paidCheckout) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), webhookFulfilTimeout)
	defer cancel()
	return fulfil(ctx, w.fulfiller, commands.Actor{ID: webhookActor, CorrelationID: eventID}, c)
}

// sessionNotPaid logs a session whose payment failed or that expired. It
// credits nothing, and never needs a retry.
func (w *Webhook) sessionNotPaid(log *slog.Logger, ev event) (Outcome, error) {
	s, err := decodeSession(ev.Data.Object)
	if err != nil {
		log.Warn("stripe webhook: cannot read the checkout session", "err", err)
		return OutcomeNotPaid, nil
	}
	log.Info("stripe webhook: checkout session not paid; nothing credited", s.logAttrs()...)
	return OutcomeNotPaid, nil
}
