package payments

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Limits on configuration.
const (
	// webhookSecretsMax bounds the signing secrets accepted at once: the
	// current one and those being rotated out.
	webhookSecretsMax = 8
	// webhookToleranceMax bounds how old a signature's timestamp may be;
	// larger windows weaken the replay protection the timestamp gives.
	webhookToleranceMax = time.Hour
)

// Configuration errors, returned wrapped by the constructors; check them with
// errors.Is.
var (
	// ErrInvalidConfig: a Config field is missing or malformed for the
	// provider or webhook being built.
	ErrInvalidConfig = errors.New("invalid payments configuration")
	// ErrDevRefused: the dev provider was asked for while Stripe keys are
	// configured, which would let purchases through unpaid.
	ErrDevRefused = errors.New("dev payment provider refused: Stripe keys are configured")
)

// Config configures the Stripe provider, the webhook and the dev provider.
// cmd/ fills it (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_API_URL);
// nothing in this package reads the environment.
type Config struct {
	// SecretKey is the Stripe secret (sk_…) or restricted (rk_…) API key.
	SecretKey string
	// WebhookSecrets are the endpoint signing secrets (whsec_…). A delivery
	// is accepted if any of them verifies it, so a secret can be rotated
	// without downtime: add the new one, then drop the old one.
	WebhookSecrets []string
	// APIURL points stripe-go at another Stripe API endpoint, such as
	// stripe-mock; empty means https://api.stripe.com.
	APIURL string
	// SuccessURL is where Checkout sends the user after paying (required for
	// Stripe). Stripe replaces {CHECKOUT_SESSION_ID} in it with the session
	// id; Dev does the same and answers it as the checkout URL.
	SuccessURL string
	// CancelURL is where Checkout's back button leads; empty shows none.
	CancelURL string
	// Tolerance is how old a webhook signature's timestamp may be; 0 means
	// stripe-go's webhook.DefaultTolerance (5 minutes).
	Tolerance time.Duration
}

// StripeConfigured reports whether any Stripe key is set. Then the dev
// provider is refused.
func (c Config) StripeConfigured() bool {
	return c.SecretKey != "" || len(c.WebhookSecrets) > 0
}

// ParseWebhookSecrets splits a comma-separated list of signing secrets (the
// form STRIPE_WEBHOOK_SECRET takes during rotation), trimming spaces and
// dropping empty entries. It returns nil for a blank list.
func ParseWebhookSecrets(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// checkStripe returns ErrInvalidConfig unless c can create checkout sessions.
func (c Config) checkStripe() error {
	if !hasPrefix(c.SecretKey, "sk_", "rk_") || strings.ContainsAny(c.SecretKey, " \t\r\n") {
		return fmt.Errorf("%w: the Stripe secret key must be an sk_… or rk_… key", ErrInvalidConfig)
	}
	if c.APIURL != "" {
		if err := checkURL("Stripe API URL", c.APIURL); err != nil {
			return err
		}
	}
	if err := checkURL("success URL", c.SuccessURL); err != nil {
		return err
	}
	if c.CancelURL != "" {
		return checkURL("cancel URL", c.CancelURL)
	}
	return nil
}

// checkWebhook returns ErrInvalidConfig unless c can verify webhooks, and
// the tolerance to verify them with.
func (c Config) checkWebhook() (time.Duration, error) {
	switch n := len(c.WebhookSecrets); {
	case n == 0:
		return 0, fmt.Errorf("%w: no webhook signing secret", ErrInvalidConfig)
	case n > webhookSecretsMax:
		return 0, fmt.Errorf("%w: %d webhook signing secrets, at most %d", ErrInvalidConfig, n, webhookSecretsMax)
	}
	for i, s := range c.WebhookSecrets {
		if !hasPrefix(s, "whsec_") || strings.ContainsAny(s, " \t\r\n,") {
			return 0, fmt.Errorf("%w: webhook signing secret #%d is not a whsec_… secret", ErrInvalidConfig, i+1)
		}
	}
	switch {
	case c.Tolerance == 0:
		return webhook.DefaultTolerance, nil
	case c.Tolerance < 0 || c.Tolerance > webhookToleranceMax:
		return 0, fmt.Errorf("%w: webhook tolerance %v is outside (0, %v]", ErrInvalidConfig, c.Tolerance, webhookToleranceMax)
	}
	return c.Tolerance, nil
}

// checkDev returns ErrDevRefused when Stripe keys are configured, and
// ErrInvalidConfig for a malformed success URL.
func (c Config) checkDev() error {
	if c.StripeConfigured() {
		return ErrDevRefused
	}
	if c.SuccessURL != "" {
		return checkURL("success URL", c.SuccessURL)
	}
	return nil
}

// checkURL returns ErrInvalidConfig unless raw is an absolute http(s) URL.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %s %q is not an absolute http(s) URL", ErrInvalidConfig, what, raw)
	}
	return nil
}

func hasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}
