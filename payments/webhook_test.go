package payments_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
	"github.com/rendertrust/rendertrust/payments/paymentstest"
)

// deliveriesConcurrent is how many times the exactly-once test delivers one
// event at the same moment.
const deliveriesConcurrent = 20

// TestWebhookCreditsOncePerSession delivers one paid session many times, at
// once and in sequence, on every backend:
//
//  1. checkout.session.completed is delivered 20 times concurrently; every
//     delivery is answered 200 "credited".
//  2. The same event is delivered again, then an async_payment_succeeded
//     event for the same session; both are answered "credited".
//  3. The account holds the package's credits once, and the log holds one
//     credits.purchased event with provider stripe, the session id, the
//     purchase id and the webhook as actor.
func TestWebhookCreditsOncePerSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		user, purchaseID, sessionID := domain.UserID("u-"+uuid.NewString()), uuid.NewString(), "cs_test_once"
		s := paidSession(t, sessionID, user, purchaseID, "credits_500")
		payload := eventPayload(t, "evt_completed", stripe.EventTypeCheckoutSessionCompleted, s)
		header := sign(payload, secretCurrent, time.Now())

		// 1.
		srv := httptest.NewServer(apiHandler(e.webhook))
		defer srv.Close()
		var wg sync.WaitGroup
		errs := make(chan error, deliveriesConcurrent)
		for range deliveriesConcurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- postOnce(srv.URL+"/api/v1/webhooks/stripe", payload, header)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}

		// 2.
		deliverSigned(t, e.webhook, payload, payments.OutcomeCredited)
		async := eventPayload(t, "evt_async", stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded, s)
		deliverSigned(t, e.webhook, async, payments.OutcomeCredited)

		// 3.
		acc := e.account(t, user)
		if got, want := acc.Purchased(), domain.Credits(500); got != want {
			t.Errorf("Purchased() = %d, want %d", got, want)
		}
		if got, want := acc.Balance(), domain.Credits(500); got != want {
			t.Errorf("Balance() = %d, want %d", got, want)
		}
		events, recs := e.purchased(t)
		if len(events) != 1 {
			t.Fatalf("log holds %d credits.purchased events, want 1: %+v", len(events), events)
		}
		got := events[0]
		want := domain.CreditsPurchased{
			UserID: user, PurchaseID: purchaseID, PackageID: "credits_500", Credits: 500,
			AmountCents: 4000, Currency: "usd", Provider: domain.ProviderStripe, CheckoutSessionID: sessionID,
		}
		if got.UserID != want.UserID || got.PurchaseID != want.PurchaseID || got.PackageID != want.PackageID ||
			got.Credits != want.Credits || got.AmountCents != want.AmountCents || got.Currency != want.Currency ||
			got.Provider != want.Provider || got.CheckoutSessionID != want.CheckoutSessionID {
			t.Errorf("credits.purchased = %+v, want %+v", got, want)
		}
		if got := recs[0].Metadata.Actor; got != "system:stripe-webhook" {
			t.Errorf("actor = %q, want system:stripe-webhook", got)
		}
	})
}

// postOnce posts one signed delivery and returns an error unless it is
// answered 200 "credited".
func postOnce(url string, payload []byte, header string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Stripe-Signature", header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"outcome":"credited"`) {
		return fmt.Errorf("delivery answered %d %s, want 200 credited", resp.StatusCode, body)
	}
	return nil
}

// TestWebhookRefusesUnverified checks that a delivery whose signature does
// not verify is answered 400 invalid_signature and writes nothing.
func TestWebhookRefusesUnverified(t *testing.T) {
	e := newEnv(t, backends[0])
	payload := eventPayload(t, "evt_1", stripe.EventTypeCheckoutSessionCompleted,
		paidSession(t, "cs_test_1", "u-1", uuid.NewString(), "credits_100"))
	now := time.Now()
	tampered := bytes.Replace(payload, []byte(`"amount_total":1000`), []byte(`"amount_total":1`), 1)
	if bytes.Equal(tampered, payload) {
		t.Fatal("tampering changed nothing")
	}
	tests := []struct {
		name    string
		payload []byte
		header  string
	}{
		{"TamperedBody", tampered, sign(payload, secretCurrent, now)},
		{"StaleTimestamp", payload, sign(payload, secretCurrent, now.Add(-10*time.Minute))},
		{"WrongSecret", payload, sign(payload, "whsec_test_attacker", now)},
		{"NoHeader", payload, ""},
		{"MalformedHeader", payload, "t=notatime,v1=zz"},
		{"OtherScheme", payload, strings.Replace(sign(payload, secretCurrent, now), "v1=", "v0=", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, res := deliver(t, e.webhook, tt.payload, tt.header)
			if status != http.StatusBadRequest || res.Error.Code != domain.CodeInvalidSignature {
				t.Errorf("answered %d %+v, want 400 invalid_signature", status, res)
			}
			if h := e.head(t); h != 0 {
				t.Errorf("log head = %d after a refused delivery, want 0", h)
			}
		})
	}
}

// TestWebhookDeliverErrors checks Deliver's errors without HTTP.
func TestWebhookDeliverErrors(t *testing.T) {
	e := newEnv(t, backends[0])
	notJSON := []byte("not json")
	tests := []struct {
		name    string
		payload []byte
		header  string
		want    error
	}{
		{"ErrInvalidSignature", notJSON, sign(notJSON, "whsec_test_other", time.Now()), payments.ErrInvalidSignature},
		{"ErrInvalidEvent", notJSON, sign(notJSON, secretCurrent, time.Now()), payments.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.webhook.Deliver(ctx, tt.payload, tt.header)
			if !errors.Is(err, tt.want) {
				t.Errorf("Deliver() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestWebhookAcceptsRotatedSecrets checks that a delivery signed with any
// configured secret is accepted.
func TestWebhookAcceptsRotatedSecrets(t *testing.T) {
	e := newEnv(t, backends[0])
	for i, secret := range []string{secretCurrent, secretPrevious} {
		t.Run(secret, func(t *testing.T) {
			payload := eventPayload(t, fmt.Sprintf("evt_%d", i), stripe.EventTypeCheckoutSessionCompleted,
				paidSession(t, fmt.Sprintf("cs_test_%d", i), "u-rotation", uuid.NewString(), "credits_100"))
			status, res := deliver(t, e.webhook, payload, sign(payload, secret, time.Now()))
			if status != http.StatusOK || res.Outcome != payments.OutcomeCredited {
				t.Errorf("answered %d %+v, want 200 credited", status, res)
			}
		})
	}
	if got, want := e.account(t, "u-rotation").Purchased(), domain.Credits(200); got != want {
		t.Errorf("Purchased() = %d, want %d", got, want)
	}
}

// TestWebhookCreditsNothing checks events that must credit nothing: they
// are answered 200 with their outcome and write nothing.
func TestWebhookCreditsNothing(t *testing.T) {
	e := newEnv(t, backends[0])
	paid := paidSession(t, "cs_test_nothing", "u-nothing", uuid.NewString(), "credits_100")
	unpaid := paid.with("payment_status", "unpaid").with("status", "complete")
	tests := []struct {
		name string
		typ  stripe.EventType
		obj  any
		want payments.Outcome
	}{
		{"AsyncPaymentFailed", stripe.EventTypeCheckoutSessionAsyncPaymentFailed, unpaid, payments.OutcomeNotPaid},
		{"Expired", stripe.EventTypeCheckoutSessionExpired, unpaid.with("status", "expired"), payments.OutcomeNotPaid},
		{"CompletedUnpaid", stripe.EventTypeCheckoutSessionCompleted, unpaid, payments.OutcomeNotPaid},
		{"AsyncSucceededUnpaid", stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded, unpaid, payments.OutcomeNotPaid},
		{"NoPaymentRequired", stripe.EventTypeCheckoutSessionCompleted, paid.with("payment_status", "no_payment_required"), payments.OutcomeNotPaid},
		{"UnhandledType", stripe.EventTypePaymentIntentSucceeded, map[string]any{"id": "pi_1", "object": "payment_intent"}, payments.OutcomeIgnored},
		{"ForeignSession", stripe.EventTypeCheckoutSessionCompleted, paid.with("metadata", map[string]string{"order": "42"}), payments.OutcomeIgnored},
		{"ForeignSessionNoMetadata", stripe.EventTypeCheckoutSessionCompleted, paid.with("metadata", nil), payments.OutcomeIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deliverSigned(t, e.webhook, eventPayload(t, "evt_"+tt.name, tt.typ, tt.obj), tt.want)
			if h := e.head(t); h != 0 {
				t.Errorf("log head = %d, want 0", h)
			}
		})
	}
}

// TestWebhookRejectsUnhonourable checks paid RenderTrust sessions that
// cannot be credited as reported: they are answered 200 "rejected" (Stripe
// must not retry), logged at error level, and write nothing.
func TestWebhookRejectsUnhonourable(t *testing.T) {
	e := newEnv(t, backends[0])
	paid := paidSession(t, "cs_test_reject", "u-reject", uuid.NewString(), "credits_100")
	tests := []struct {
		name string
		obj  any
	}{
		{"UnknownPackage", paid.withMeta("package_id", "credits_1000000")},
		{"BadUserID", paid.withMeta("user_id", "u 1").with("client_reference_id", "u 1")},
		{"MissingUserID", paid.withMeta("user_id", "").with("client_reference_id", "")},
		{"MissingPurchaseID", paid.withMeta("purchase_id", "")},
		{"AmountMismatch", paid.with("amount_total", 999)},
		{"CurrencyMismatch", paid.with("currency", "eur")},
		{"ClientReferenceMismatch", paid.with("client_reference_id", "u-other")},
		{"SubscriptionMode", paid.with("mode", "subscription")},
		{"NotASession", map[string]any{"id": "pi_1", "object": "payment_intent", "metadata": map[string]string{"purchase_id": "p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eventID := "evt_" + tt.name
			deliverSigned(t, e.webhook, eventPayload(t, eventID, stripe.EventTypeCheckoutSessionCompleted, tt.obj), payments.OutcomeRejected)
			if h := e.head(t); h != 0 {
				t.Errorf("log head = %d, want 0", h)
			}
			if n := e.logs.count("level=ERROR", "stripe_event_id="+eventID); n != 1 {
				t.Errorf("%d error log lines name %s, want 1:\n%s", n, eventID, e.logs)
			}
		})
	}
}

// TestWebhookSessionCreditedOnce checks that a session already credited is
// never credited again, even under another purchase id:
//
//  1. A paid session is credited.
//  2. The same session arrives with another purchase id: answered 200
//     "rejected", logged, nothing written.
//  3. The account holds one purchase.
func TestWebhookSessionCreditedOnce(t *testing.T) {
	e := newEnv(t, backends[0])
	s := paidSession(t, "cs_test_twice", "u-twice", uuid.NewString(), "credits_100")

	// 1.
	deliverSigned(t, e.webhook, eventPayload(t, "evt_1", stripe.EventTypeCheckoutSessionCompleted, s), payments.OutcomeCredited)
	head := e.head(t)

	// 2.
	other := s.withMeta("purchase_id", uuid.NewString())
	deliverSigned(t, e.webhook, eventPayload(t, "evt_2", stripe.EventTypeCheckoutSessionCompleted, other), payments.OutcomeRejected)
	if h := e.head(t); h != head {
		t.Errorf("log head = %d, want %d", h, head)
	}

	// 3.
	if got, want := e.account(t, "u-twice").Purchased(), domain.Credits(100); got != want {
		t.Errorf("Purchased() = %d, want %d", got, want)
	}
}

// TestWebhookDelayedPayment follows a session paid by a delayed method:
//
//  1. checkout.session.completed with payment_status unpaid: nothing.
//  2. checkout.session.async_payment_succeeded, paid: credited.
//  3. A second session: completed unpaid, then async_payment_failed:
//     nothing, ever.
func TestWebhookDelayedPayment(t *testing.T) {
	e := newEnv(t, backends[0])
	user := domain.UserID("u-delayed")
	s := paidSession(t, "cs_test_delayed", user, uuid.NewString(), "credits_1000")

	// 1.
	deliverSigned(t, e.webhook, eventPayload(t, "evt_1", stripe.EventTypeCheckoutSessionCompleted, s.with("payment_status", "unpaid")), payments.OutcomeNotPaid)
	if got := e.account(t, user).Purchased(); got != 0 {
		t.Fatalf("Purchased() = %d before the payment succeeded, want 0", got)
	}

	// 2.
	deliverSigned(t, e.webhook, eventPayload(t, "evt_2", stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded, s), payments.OutcomeCredited)
	if got, want := e.account(t, user).Purchased(), domain.Credits(1000); got != want {
		t.Fatalf("Purchased() = %d, want %d", got, want)
	}

	// 3.
	failed := paidSession(t, "cs_test_failed", user, uuid.NewString(), "credits_100").with("payment_status", "unpaid")
	deliverSigned(t, e.webhook, eventPayload(t, "evt_3", stripe.EventTypeCheckoutSessionCompleted, failed), payments.OutcomeNotPaid)
	deliverSigned(t, e.webhook, eventPayload(t, "evt_4", stripe.EventTypeCheckoutSessionAsyncPaymentFailed, failed), payments.OutcomeNotPaid)
	if got, want := e.account(t, user).Purchased(), domain.Credits(1000); got != want {
		t.Errorf("Purchased() = %d after a failed payment, want %d", got, want)
	}
	if events, _ := e.purchased(t); len(events) != 1 {
		t.Errorf("log holds %d purchases, want 1", len(events))
	}
}

// TestWebhookFulfilmentErrors checks how the webhook answers each kind of
// fulfilment error, and what it asks the fulfiller to credit.
func TestWebhookFulfilmentErrors(t *testing.T) {
	user, purchaseID := domain.UserID("u-fake"), uuid.NewString()
	payload := eventPayload(t, "evt_fake", stripe.EventTypeCheckoutSessionCompleted,
		paidSession(t, "cs_test_fake", user, purchaseID, "credits_100"))
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   domain.Code
		wantOut    payments.Outcome
	}{
		{"Credited", nil, http.StatusOK, "", payments.OutcomeCredited},
		{"StoreFailure", errors.New("database is locked"), http.StatusInternalServerError, domain.CodeInternal, ""},
		{"Timeout", context.DeadlineExceeded, http.StatusServiceUnavailable, domain.CodeUnavailable, ""}, // Stripe retries it
		{"ErrIdempotencyConflict", domain.ErrIdempotencyConflict, http.StatusOK, "", payments.OutcomeRejected},
		{"ErrInvalidAmount", domain.ErrInvalidAmount, http.StatusOK, "", payments.OutcomeRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			f := &paymentstest.Fulfiller{FulfilPurchaseFn: func(_ context.Context, a commands.Actor, u domain.UserID, p domain.Purchase) (uint64, error) {
				calls++
				pkg, _ := domain.LookupPackage("credits_100")
				if want := pkg.Purchase(purchaseID, domain.ProviderStripe, "cs_test_fake"); p != want || u != user {
					t.Errorf("FulfilPurchase(%s, %+v), want (%s, %+v)", u, p, user, want)
				}
				if a.ID != "system:stripe-webhook" || a.CorrelationID != "evt_fake" {
					t.Errorf("actor = %+v, want system:stripe-webhook correlated with evt_fake", a)
				}
				return 1, tt.err
			}}
			w := mustWebhook(t, f, nil)
			status, res := deliver(t, w, payload, sign(payload, secretCurrent, time.Now()))
			if status != tt.wantStatus || res.Error.Code != tt.wantCode || res.Outcome != tt.wantOut {
				t.Errorf("answered %d %+v, want %d code %q outcome %q", status, res, tt.wantStatus, tt.wantCode, tt.wantOut)
			}
			if tt.wantCode == domain.CodeInternal && res.Error.Message != "internal error" {
				t.Errorf("message = %q: internal details reached Stripe", res.Error.Message)
			}
			if calls != 1 {
				t.Errorf("FulfilPurchase called %d times, want 1", calls)
			}
		})
	}
}

// TestWebhookHTTP checks the API's webhook route's answers to requests that
// are not deliveries.
func TestWebhookHTTP(t *testing.T) {
	e := newEnv(t, backends[0])
	big := bytes.Repeat([]byte("x"), 512<<10)
	tests := []struct {
		name       string
		method     string
		body       []byte
		header     string
		wantStatus int
		wantCode   domain.Code
	}{
		{"GET", http.MethodGet, nil, "", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"TooLarge", http.MethodPost, big, sign(big, secretCurrent, time.Now()), http.StatusRequestEntityTooLarge, domain.CodeTooLarge},
		{"SignedNotJSON", http.MethodPost, []byte("[]"), sign([]byte("[]"), secretCurrent, time.Now()), http.StatusBadRequest, domain.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/api/v1/webhooks/stripe", bytes.NewReader(tt.body))
			req.Header.Set("Stripe-Signature", tt.header)
			rec := httptest.NewRecorder()
			apiHandler(e.webhook).ServeHTTP(rec, req)
			res := decodeResponse(t, rec.Body.Bytes())
			if rec.Code != tt.wantStatus || res.Error.Code != tt.wantCode {
				t.Errorf("answered %d %+v, want %d %q", rec.Code, res, tt.wantStatus, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}
}
