package payments

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rendertrust/rendertrust/domain"
)

// Limits on request bodies.
const (
	// webhookBodyBytesMax bounds a webhook delivery. A checkout session
	// event is a few KiB; Stripe's own example endpoints allow 64 KiB.
	webhookBodyBytesMax = 256 << 10
	// checkoutBodyBytesMax bounds a checkout request, {"package_id": …}.
	checkoutBodyBytesMax = 4 << 10
)

// ServeHTTP answers a Stripe webhook delivery (POST /api/v1/webhooks/stripe)
// with Stripe's retry rules in mind: 200 {"received":true,"outcome":…} for
// every verified event, including those it ignores or cannot honour; 400
// invalid_signature (or invalid) for a delivery that is not from Stripe; 413
// too_large beyond webhookBodyBytesMax; 405 for a method other than POST; and
// 500 internal when crediting failed and a retry may succeed. Errors use the
// API's shape, {"error":{"code":…,"message":…}}.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		writeError(rw, http.StatusMethodNotAllowed, domain.Errorf(domain.CodeInvalid, "method %s not allowed", r.Method))
		return
	}
	body, err := readBody(rw, r, webhookBodyBytesMax)
	if err != nil {
		writeError(rw, statusOf(err), err)
		return
	}
	outcome, err := w.Deliver(r.Context(), body, r.Header.Get("Stripe-Signature"))
	if err != nil {
		writeError(rw, statusOf(err), err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"received": true, "outcome": outcome})
}

// CheckoutHandler returns a handler for POST /api/v1/credits/checkout with
// body {"package_id": …}: it starts a checkout with p for the user that user
// names and answers 200 with the Checkout ({checkout_url, session_id,
// purchase_id, dev}). user returns the authenticated user of a request, or an
// error (a *domain.Error, e.g. CodeUnauthorized; anything else is 500).
// Errors use the API's shape: 400 invalid (bad JSON, unknown package), 413
// too_large, 405, 500 internal.
func CheckoutHandler(p Provider, user func(*http.Request) (domain.UserID, error)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			writeError(rw, http.StatusMethodNotAllowed, domain.Errorf(domain.CodeInvalid, "method %s not allowed", r.Method))
			return
		}
		uid, err := user(r)
		if err != nil {
			writeError(rw, statusOf(err), err)
			return
		}
		packageID, err := readCheckoutRequest(rw, r)
		if err != nil {
			writeError(rw, statusOf(err), err)
			return
		}
		c, err := p.Checkout(r.Context(), uid, packageID)
		if err != nil {
			writeError(rw, statusOf(err), err)
			return
		}
		writeJSON(rw, http.StatusOK, c)
	})
}

// readCheckoutRequest returns the package id of a checkout request, or a
// CodeInvalid or CodeTooLarge error.
func readCheckoutRequest(rw http.ResponseWriter, r *http.Request) (string, error) {
	body, err := readBody(rw, r, checkoutBodyBytesMax)
	if err != nil {
		return "", err
	}
	var req struct {
		PackageID string `json:"package_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", domain.Errorf(domain.CodeInvalid, "body is not a JSON object with package_id")
	}
	if req.PackageID == "" {
		return "", domain.Errorf(domain.CodeInvalid, "package_id is required")
	}
	return req.PackageID, nil
}

// readBody reads a request body of at most maxBytes. It returns a
// CodeTooLarge error beyond that, and a CodeInvalid one when reading fails.
func readBody(rw http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, domain.Errorf(domain.CodeTooLarge, "body larger than %d bytes", maxBytes)
	case err != nil:
		return nil, domain.Errorf(domain.CodeInvalid, "read body: %v", err)
	}
	return body, nil
}

// statusOf maps an error's code to the status these handlers answer. The
// API's own table lives in http/; this one covers what payments returns.
func statusOf(err error) int {
	switch domain.ErrorCode(err) {
	case domain.CodeInvalid, CodeInvalidSignature:
		return http.StatusBadRequest
	case domain.CodeUnauthorized:
		return http.StatusUnauthorized
	case domain.CodeForbidden:
		return http.StatusForbidden
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeConflict:
		return http.StatusConflict
	case domain.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case domain.CodeRateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is the API's one error shape.
type errorBody struct {
	Error struct {
		Code    domain.Code `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

// writeError answers err in the API's error shape; an internal error's
// details never reach the client.
func writeError(rw http.ResponseWriter, status int, err error) {
	var b errorBody
	b.Error.Code = domain.ErrorCode(err)
	b.Error.Message = domain.ErrorMessage(err)
	writeJSON(rw, status, b)
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("payments: encode response: %v", err)) // only our own plain types get here
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	rw.Write(append(b, '\n'))
}
