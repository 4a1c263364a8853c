package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/payments"
	"github.com/rendertrust/rendertrust/payments/paymentstest"
)

// TestCheckoutHandler checks the checkout route's answers.
func TestCheckoutHandler(t *testing.T) {
	provider := &paymentstest.Provider{CheckoutFn: func(_ context.Context, user domain.UserID, packageID string) (payments.Checkout, error) {
		switch packageID {
		case "credits_100":
			return payments.Checkout{CheckoutURL: "https://pay/" + string(user), SessionID: "cs_1", PurchaseID: "p-1"}, nil
		case "broken":
			return payments.Checkout{}, errors.New("stripe: connection refused")
		}
		return payments.Checkout{}, domain.ErrUnknownPackage
	}}
	authenticated := func(r *http.Request) (domain.UserID, error) {
		if r.Header.Get("Authorization") == "" {
			return "", domain.Errorf(domain.CodeUnauthorized, "authentication required")
		}
		return "u-1", nil
	}
	h := payments.CheckoutHandler(provider, authenticated)
	tests := []struct {
		name       string
		method     string
		body       string
		anonymous  bool
		wantStatus int
		wantCode   domain.Code
	}{
		{"Created", http.MethodPost, `{"package_id":"credits_100"}`, false, http.StatusOK, ""},
		{"UnknownPackage", http.MethodPost, `{"package_id":"credits_7"}`, false, http.StatusBadRequest, domain.CodeInvalid},
		{"NoPackage", http.MethodPost, `{}`, false, http.StatusBadRequest, domain.CodeInvalid},
		{"NotJSON", http.MethodPost, `package_id=credits_100`, false, http.StatusBadRequest, domain.CodeInvalid},
		{"TooLarge", http.MethodPost, `{"package_id":"` + strings.Repeat("x", 8<<10) + `"}`, false, http.StatusRequestEntityTooLarge, domain.CodeTooLarge},
		{"Anonymous", http.MethodPost, `{"package_id":"credits_100"}`, true, http.StatusUnauthorized, domain.CodeUnauthorized},
		{"ProviderFails", http.MethodPost, `{"package_id":"broken"}`, false, http.StatusInternalServerError, domain.CodeInternal},
		{"GET", http.MethodGet, ``, false, http.StatusMethodNotAllowed, domain.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/api/v1/credits/checkout", strings.NewReader(tt.body))
			if !tt.anonymous {
				req.Header.Set("Authorization", "Bearer t")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := decodeResponse(t, rec.Body.Bytes())
			if rec.Code != tt.wantStatus || res.Error.Code != tt.wantCode {
				t.Fatalf("answered %d %s, want %d %q", rec.Code, rec.Body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode == domain.CodeInternal && res.Error.Message != "internal error" {
				t.Errorf("message = %q: internal details reached the client", res.Error.Message)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			var c payments.Checkout
			if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			if want := (payments.Checkout{CheckoutURL: "https://pay/u-1", SessionID: "cs_1", PurchaseID: "p-1"}); c != want {
				t.Errorf("answered %+v, want %+v", c, want)
			}
		})
	}
}
