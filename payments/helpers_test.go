package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	rthttp "github.com/rendertrust/rendertrust/http"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/payments"
)

var ctx = context.Background()

// Signing secrets of the webhook under test: the current one and one being
// rotated out.
const (
	secretCurrent  = "whsec_test_current"
	secretPrevious = "whsec_test_previous"
)

// backend opens a fresh event store and state database of one kind.
type backend struct {
	name string
	open func(tb testing.TB) (eventstore.Store, *sqldb.DB)
}

var backends = []backend{
	{"SQLite", func(tb testing.TB) (eventstore.Store, *sqldb.DB) {
		dir := tb.TempDir()
		store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
		if err != nil {
			tb.Fatal(err)
		}
		db, err := sqldb.OpenSQLite(filepath.Join(dir, "state.db"))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close(); store.Close() })
		return store, db
	}},
	{"PostgreSQL", func(tb testing.TB) (eventstore.Store, *sqldb.DB) {
		dsn := pgtest.NewDatabase(tb)
		store, err := postgres.Open(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		db, err := sqldb.OpenPostgres(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close(); store.Close() })
		return store, db
	}},
}

// forEachBackend runs f as a subtest on every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// env is a command service on a fresh backend, with a webhook crediting
// through it and a log to inspect.
type env struct {
	store   eventstore.Store
	svc     *commands.Service
	webhook *payments.Webhook
	logs    *lockedBuffer
}

func newEnv(tb testing.TB, b backend) *env {
	tb.Helper()
	store, db := b.open(tb)
	d := dispatch.New(nil, 0, nil)
	svc, err := commands.New(ctx, commands.Config{Store: d.Watch(store), DB: db, Dispatcher: d})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{store: store, svc: svc, logs: &lockedBuffer{}}
	e.webhook = mustWebhook(tb, svc, e.logger())
	return e
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustWebhook returns a webhook accepting secretCurrent and secretPrevious.
func mustWebhook(tb testing.TB, f payments.Fulfiller, log *slog.Logger) *payments.Webhook {
	tb.Helper()
	w, err := payments.NewWebhook(payments.Config{WebhookSecrets: []string{secretCurrent, secretPrevious}}, f, log)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

func (e *env) head(tb testing.TB) uint64 {
	tb.Helper()
	h, err := e.store.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// purchased returns every credits.purchased event in the log, with its
// envelope.
func (e *env) purchased(tb testing.TB) ([]domain.CreditsPurchased, []eventstore.RecordedEvent) {
	tb.Helper()
	var events []domain.CreditsPurchased
	var recs []eventstore.RecordedEvent
	for from := uint64(1); ; {
		page, err := e.store.ReadAll(ctx, from, eventstore.ReadEventsMax)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return events, recs
		}
		for _, r := range page {
			if r.Type != domain.EventCreditsPurchased {
				continue
			}
			ev, err := domain.DecodeEvent(r.Type, r.Data)
			if err != nil {
				tb.Fatalf("decode %s at %d: %v", r.Type, r.Position, err)
			}
			events = append(events, ev.(domain.CreditsPurchased))
			recs = append(recs, r)
		}
		from = page[len(page)-1].Position + 1
	}
}

// account returns the user's account as the command side sees it.
func (e *env) account(tb testing.TB, user domain.UserID) *domain.Account {
	tb.Helper()
	acc, err := e.svc.Account(ctx, user)
	if err != nil {
		tb.Fatal(err)
	}
	return acc
}

// session is a checkout session as the webhook reads it from an event.
type session map[string]any

// paidSession returns a paid session RenderTrust created for user buying
// packageID as purchaseID.
func paidSession(tb testing.TB, id string, user domain.UserID, purchaseID, packageID string) session {
	tb.Helper()
	pkg, err := domain.LookupPackage(packageID)
	if err != nil {
		tb.Fatal(err)
	}
	return session{
		"id": id, "object": "checkout.session", "mode": "payment",
		"status": "complete", "payment_status": "paid",
		"amount_total": pkg.AmountCents, "currency": pkg.Currency,
		"client_reference_id": string(user),
		"metadata": map[string]string{
			"user_id": string(user), "purchase_id": purchaseID, "package_id": packageID,
		},
	}
}

// with returns a copy of s with key set to v.
func (s session) with(key string, v any) session {
	c := session{}
	for k, old := range s {
		c[k] = old
	}
	c[key] = v
	return c
}

// withMeta returns a copy of s with metadata key set to v.
func (s session) withMeta(key, v string) session {
	meta := map[string]string{}
	for k, old := range s["metadata"].(map[string]string) {
		meta[k] = old
	}
	meta[key] = v
	return s.with("metadata", meta)
}

// eventPayload returns a Stripe event of type typ about obj, as Stripe
// sends it.
func eventPayload(tb testing.TB, eventID string, typ stripe.EventType, obj any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{
		"id": eventID, "object": "event", "api_version": stripe.APIVersion,
		"created": time.Now().Unix(), "livemode": false, "pending_webhooks": 1,
		"type": typ, "data": map[string]any{"object": obj},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sign returns the Stripe-Signature header of payload with secret at time
// at, made by stripe-go's test helper.
func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: at,
	}).Header
}

// response is a webhook or checkout answer: an outcome or an error.
type response struct {
	Received bool             `json:"received"`
	Outcome  payments.Outcome `json:"outcome"`
	Error    struct {
		Code    domain.Code `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

// apiHandler returns the API with w behind its webhook route: the path a
// delivery takes in production (the API reads the body and answers).
func apiHandler(w *payments.Webhook) http.Handler {
	return rthttp.New(rthttp.Config{StripeWebhook: w, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
}

// deliver posts payload with signature header to the API's webhook route
// in front of w and returns the status and decoded answer.
func deliver(tb testing.TB, w *payments.Webhook, payload []byte, header string) (int, response) {
	tb.Helper()
	h := apiHandler(w)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/stripe", bytes.NewReader(payload))
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, decodeResponse(tb, rec.Body.Bytes())
}

func decodeResponse(tb testing.TB, body []byte) response {
	tb.Helper()
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		tb.Fatalf("answer %q is not JSON: %v", body, err)
	}
	return r
}

// deliverSigned signs payload with secretCurrent now and delivers it,
// failing the test unless it is answered 200 with outcome want.
func deliverSigned(tb testing.TB, h *payments.Webhook, payload []byte, want payments.Outcome) {
	tb.Helper()
	status, res := deliver(tb, h, payload, sign(payload, secretCurrent, time.Now()))
	if status != http.StatusOK || !res.Received || res.Outcome != want {
		tb.Fatalf("delivery answered %d %+v, want 200 with outcome %q", status, res, want)
	}
}

// stripeMockURL returns the stripe-mock that .ci/with-stripe-mock started.
// Without it the test is skipped, except under CI=true, where a missing
// service is a failure, never a skip.
func stripeMockURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("STRIPE_MOCK_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("STRIPE_MOCK_URL is not set under CI=true: run the tests through .ci/with-stripe-mock")
		}
		tb.Skip("STRIPE_MOCK_URL not set (.ci/with-stripe-mock starts stripe-mock); skipping outside CI")
	}
	return u
}

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many log lines hold every one of parts.
func (b *lockedBuffer) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
