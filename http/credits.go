package http

import (
	"context"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
	"github.com/rendertrust/rendertrust/projections"
)

func (s *Server) balance(c echo.Context) error {
	b, err := s.Reader.Balance(c.Request().Context(), userOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (s *Server) transactions(c echo.Context) error {
	limit, err := intParam(c, "limit", 0, 1, projections.PageLimitMax)
	if err != nil {
		return err
	}
	var anchored uint64
	if s.Ledger != nil {
		anchored = s.Ledger.AnchoredSize()
	}
	page, err := s.Reader.Transactions(c.Request().Context(), userOf(c), projections.TransactionQuery{Cursor: c.QueryParam("cursor"), Limit: limit, AnchoredSize: anchored})
	if err != nil {
		return err
	}
	if page.Transactions == nil {
		page.Transactions = []projections.Transaction{}
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) usage(c echo.Context) error {
	days, err := intParam(c, "days", projections.UsageDaysDefault, 1, projections.UsageDaysMax)
	if err != nil {
		return err
	}
	u, err := s.Reader.Usage(c.Request().Context(), userOf(c), projections.UsageQuery{Days: days, TimeZone: c.QueryParam("tz"), Now: s.Now()})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

// PackageView is one credit package as the API lists it.
type PackageView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Credits    int64  `json:"credits"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

func (s *Server) packages(c echo.Context) error {
	var out []PackageView
	for _, p := range domain.Packages() {
		out = append(out, PackageView{ID: p.ID, Name: p.Name, Credits: int64(p.Credits), PriceCents: p.AmountCents, Currency: p.Currency})
	}
	return c.JSON(http.StatusOK, map[string]any{"packages": out})
}

type checkoutRequest struct {
	PackageID string `json:"package_id"`
}

var errPaymentsOff = &domain.Error{Code: domain.CodeUnavailable, Message: "payments are not configured"}

func (s *Server) checkout(c echo.Context) error {
	if s.Checkout == nil {
		return errPaymentsOff
	}
	var req checkoutRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if _, err := domain.LookupPackage(req.PackageID); err != nil {
		return err
	}
	res, err := s.Checkout.Checkout(c.Request().Context(), userOf(c), req.PackageID)
	if err != nil {
		return err
	}
	if s.Runner != nil {
		if head, err := s.headPosition(c.Request().Context()); err == nil {
			s.wroteForUser(c, head) // a dev checkout credits at once
		}
	}
	return c.JSON(http.StatusOK, res)
}

// webhookBodyBytesMax bounds a Stripe webhook delivery. A checkout session
// event is a few KiB; Stripe's own example endpoints allow 64 KiB.
const webhookBodyBytesMax = 256 << 10

// StripeWebhook verifies and handles one Stripe webhook delivery;
// *payments.Webhook implements it. Deliver returns the outcome, or an
// application error (invalid_signature, invalid) when the delivery is not
// from Stripe, or an internal error when a retry may succeed.
type StripeWebhook interface {
	Deliver(ctx context.Context, payload []byte, signature string) (payments.Outcome, error)
}

// webhookResponse answers a verified delivery. Stripe shows it in the
// dashboard's delivery log.
type webhookResponse struct {
	Outcome  payments.Outcome `json:"outcome"`
	Received bool             `json:"received"`
}

// stripeWebhook answers a Stripe delivery with Stripe's retry rules in mind:
// 200 for every verified event (including those ignored or that cannot be
// honoured), 400 for one that is not from Stripe, 413 beyond
// webhookBodyBytesMax, and 500 when crediting failed and a retry may succeed.
func (s *Server) stripeWebhook(c echo.Context) error {
	if s.StripeWebhook == nil {
		return errPaymentsOff
	}
	r := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, webhookBodyBytesMax))
	if err != nil {
		return bodyError(err)
	}
	outcome, err := s.StripeWebhook.Deliver(r.Context(), body, r.Header.Get("Stripe-Signature"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookResponse{Outcome: outcome, Received: true})
}
