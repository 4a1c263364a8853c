package payments_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
)

// Checkout URLs of the provider under test; success carries Stripe's
// session id template.
const (
	testSuccessURL = "https://app.rendertrust.test/credits/success?session_id={CHECKOUT_SESSION_ID}"
	testCancelURL  = "https://app.rendertrust.test/credits"
)

// stripeRequest is a request stripe-go sent, as the recording proxy saw it.
type stripeRequest struct {
	method, path   string
	idempotencyKey string
	form           url.Values
}

// recorder is a reverse proxy in front of stripe-mock that records what
// stripe-go sends. stripe-mock checks each request against Stripe's OpenAPI
// spec but does not echo most parameters back, so the test reads them here.
type recorder struct {
	mu       sync.Mutex
	requests []stripeRequest
}

func newRecorder(tb testing.TB, target string) (*recorder, string) {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("STRIPE_MOCK_URL: %v", err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		rec.mu.Lock()
		rec.requests = append(rec.requests, stripeRequest{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), form})
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return rec, srv.URL
}

func (r *recorder) all() []stripeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stripeRequest(nil), r.requests...)
}

// mustStripe returns a Stripe provider talking to apiURL.
func mustStripe(tb testing.TB, apiURL string) *payments.Stripe {
	tb.Helper()
	p, err := payments.NewStripe(payments.Config{
		SecretKey: "sk_test_123", APIURL: apiURL, SuccessURL: testSuccessURL, CancelURL: testCancelURL,
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestStripeCheckout creates a session for every package against
// stripe-mock and checks what was sent and what was answered.
func TestStripeCheckout(t *testing.T) {
	rec, apiURL := newRecorder(t, stripeMockURL(t))
	p := mustStripe(t, apiURL)
	user := domain.UserID("u-" + uuid.NewString())
	for _, pkg := range domain.Packages() {
		t.Run(pkg.ID, func(t *testing.T) {
			before := len(rec.all())
			c, err := p.Checkout(ctx, user, pkg.ID)
			if err != nil {
				t.Fatalf("Checkout: %v", err)
			}
			if !strings.HasPrefix(c.SessionID, "cs_") || !strings.HasPrefix(c.CheckoutURL, "https://") || c.Dev {
				t.Errorf("Checkout() = %+v, want a cs_ session with an https URL, not dev", c)
			}
			if id, err := uuid.Parse(c.PurchaseID); err != nil || id.Version() != 7 {
				t.Errorf("purchase id %q is not a UUIDv7 (%v)", c.PurchaseID, err)
			}
			reqs := rec.all()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests reached Stripe, want 1", len(reqs))
			}
			checkSessionRequest(t, reqs[0], pkg, user, c.PurchaseID)
		})
	}
}

// checkSessionRequest compares a recorded session creation with what
// selling pkg to user as purchaseID must send.
func checkSessionRequest(t *testing.T, got stripeRequest, pkg domain.Package, user domain.UserID, purchaseID string) {
	t.Helper()
	if got.method != http.MethodPost || got.path != "/v1/checkout/sessions" {
		t.Errorf("request %s %s, want POST /v1/checkout/sessions", got.method, got.path)
	}
	if got.idempotencyKey != purchaseID {
		t.Errorf("Idempotency-Key = %q, want the purchase id %q", got.idempotencyKey, purchaseID)
	}
	want := map[string]string{
		"mode":                                          "payment",
		"line_items[0][price_data][currency]":           pkg.Currency,
		"line_items[0][price_data][unit_amount]":        strconv.FormatInt(pkg.AmountCents, 10),
		"line_items[0][price_data][product_data][name]": pkg.Name,
		"line_items[0][quantity]":                       "1",
		"client_reference_id":                           string(user),
		"metadata[user_id]":                             string(user),
		"metadata[purchase_id]":                         purchaseID,
		"metadata[package_id]":                          pkg.ID,
		"payment_intent_data[metadata][purchase_id]":    purchaseID,
		"success_url":                                   testSuccessURL,
		"cancel_url":                                    testCancelURL,
	}
	for k, v := range want {
		if g := got.form.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
}

// TestStripeCheckoutThenWebhook sells a package end to end: a session made
// by stripe-mock, then its paid completion delivered to the webhook, shows
// in the account and the log.
//
//  1. Checkout creates a session for credits_100.
//  2. The webhook receives checkout.session.completed for that session,
//     with the metadata Checkout sent.
//  3. The account holds 100 credits; the log holds one stripe purchase of
//     that session and purchase id.
func TestStripeCheckoutThenWebhook(t *testing.T) {
	rec, apiURL := newRecorder(t, stripeMockURL(t))
	e := newEnv(t, backends[0])
	user := domain.UserID("u-e2e")

	// 1.
	c, err := mustStripe(t, apiURL).Checkout(ctx, user, "credits_100")
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}

	// 2.
	form := rec.all()[0].form
	s := paidSession(t, c.SessionID, domain.UserID(form.Get("client_reference_id")),
		form.Get("metadata[purchase_id]"), form.Get("metadata[package_id]"))
	deliverSigned(t, e.webhook, eventPayload(t, "evt_e2e", stripe.EventTypeCheckoutSessionCompleted, s), payments.OutcomeCredited)

	// 3.
	if got := e.account(t, user); got.Balance() != 100 || got.Purchased() != 100 {
		t.Errorf("Balance() = %d, Purchased() = %d, want 100 and 100", got.Balance(), got.Purchased())
	}
	events, _ := e.purchased(t)
	if len(events) != 1 || events[0].CheckoutSessionID != c.SessionID || events[0].PurchaseID != c.PurchaseID ||
		events[0].Provider != domain.ProviderStripe {
		t.Errorf("purchases = %+v, want one stripe purchase %s of session %s", events, c.PurchaseID, c.SessionID)
	}
}

// TestStripeCheckoutErrors checks bad requests, which never reach Stripe,
// and Stripe's refusals.
func TestStripeCheckoutErrors(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"No such thing"}}`)
	}))
	defer srv.Close()
	p := mustStripe(t, srv.URL)
	tests := []struct {
		name     string
		user     domain.UserID
		pkg      string
		want     error
		wantHits int32
	}{
		{"ErrUnknownPackage", "u-1", "credits_7", domain.ErrUnknownPackage, 0},
		{"ErrInvalidID", "u 1", "credits_100", domain.ErrInvalidID, 0},
		{"StripeRefuses", "u-1", "credits_100", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			_, err := p.Checkout(ctx, tt.user, tt.pkg)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Checkout() error = %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				var se *stripe.Error
				if !errors.As(err, &se) || domain.ErrorCode(err) != domain.CodeInternal {
					t.Errorf("Checkout() error = %v, want an internal error wrapping *stripe.Error", err)
				}
			}
			if got := hits.Load(); got != tt.wantHits {
				t.Errorf("%d requests reached Stripe, want %d", got, tt.wantHits)
			}
		})
	}
}
