package payments_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/payments"
)

// TestNewStripeConfig checks which configurations make a Stripe provider.
func TestNewStripeConfig(t *testing.T) {
	ok := payments.Config{SecretKey: "sk_test_1", SuccessURL: testSuccessURL}
	tests := []struct {
		name string
		c    payments.Config
		want error
	}{
		{"Valid", ok, nil},
		{"RestrictedKey", with(ok, func(c *payments.Config) { c.SecretKey = "rk_live_1" }), nil},
		{"APIURL", with(ok, func(c *payments.Config) { c.APIURL = "http://127.0.0.1:12111" }), nil},
		{"CancelURL", with(ok, func(c *payments.Config) { c.CancelURL = testCancelURL }), nil},
		{"NoKey", with(ok, func(c *payments.Config) { c.SecretKey = "" }), payments.ErrInvalidConfig},
		{"PublishableKey", with(ok, func(c *payments.Config) { c.SecretKey = "pk_test_1" }), payments.ErrInvalidConfig},
		{"WebhookSecretAsKey", with(ok, func(c *payments.Config) { c.SecretKey = "whsec_1" }), payments.ErrInvalidConfig},
		{"KeyWithNewline", with(ok, func(c *payments.Config) { c.SecretKey = "sk_test_1\n" }), payments.ErrInvalidConfig},
		{"NoSuccessURL", with(ok, func(c *payments.Config) { c.SuccessURL = "" }), payments.ErrInvalidConfig},
		{"RelativeSuccessURL", with(ok, func(c *payments.Config) { c.SuccessURL = "/credits" }), payments.ErrInvalidConfig},
		{"BadCancelURL", with(ok, func(c *payments.Config) { c.CancelURL = "ftp://x/y" }), payments.ErrInvalidConfig},
		{"BadAPIURL", with(ok, func(c *payments.Config) { c.APIURL = "127.0.0.1:12111" }), payments.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := payments.NewStripe(tt.c, nil); !errors.Is(err, tt.want) {
				t.Errorf("NewStripe() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNewWebhookConfig checks which configurations make a webhook.
func TestNewWebhookConfig(t *testing.T) {
	ok := payments.Config{WebhookSecrets: []string{secretCurrent}}
	tests := []struct {
		name string
		c    payments.Config
		want error
	}{
		{"Valid", ok, nil},
		{"Rotation", with(ok, func(c *payments.Config) { c.WebhookSecrets = []string{secretCurrent, secretPrevious} }), nil},
		{"Tolerance", with(ok, func(c *payments.Config) { c.Tolerance = time.Minute }), nil},
		{"NoSecret", payments.Config{}, payments.ErrInvalidConfig},
		{"EmptySecret", with(ok, func(c *payments.Config) { c.WebhookSecrets = []string{""} }), payments.ErrInvalidConfig},
		{"APIKeyAsSecret", with(ok, func(c *payments.Config) { c.WebhookSecrets = []string{"sk_test_1"} }), payments.ErrInvalidConfig},
		{"UnsplitList", with(ok, func(c *payments.Config) { c.WebhookSecrets = []string{"whsec_a,whsec_b"} }), payments.ErrInvalidConfig},
		{"TooManySecrets", with(ok, func(c *payments.Config) {
			c.WebhookSecrets = slices.Repeat([]string{secretCurrent}, 9)
		}), payments.ErrInvalidConfig},
		{"NegativeTolerance", with(ok, func(c *payments.Config) { c.Tolerance = -time.Second }), payments.ErrInvalidConfig},
		{"HugeTolerance", with(ok, func(c *payments.Config) { c.Tolerance = 2 * time.Hour }), payments.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := payments.NewWebhook(tt.c, nil, nil); !errors.Is(err, tt.want) {
				t.Errorf("NewWebhook() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNewDevConfig checks that the dev provider is refused whenever a Stripe
// key is configured.
func TestNewDevConfig(t *testing.T) {
	tests := []struct {
		name string
		c    payments.Config
		want error
	}{
		{"Empty", payments.Config{}, nil},
		{"SuccessURL", payments.Config{SuccessURL: testSuccessURL}, nil},
		{"APIURLOnly", payments.Config{APIURL: "http://127.0.0.1:12111"}, nil},
		{"SecretKey", payments.Config{SecretKey: "sk_test_1"}, payments.ErrDevRefused},
		{"WebhookSecret", payments.Config{WebhookSecrets: []string{secretCurrent}}, payments.ErrDevRefused},
		{"BadSuccessURL", payments.Config{SuccessURL: "credits"}, payments.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := payments.NewDev(tt.c, nil, nil); !errors.Is(err, tt.want) {
				t.Errorf("NewDev() error = %v, want %v", err, tt.want)
			}
			if got, want := tt.c.StripeConfigured(), errors.Is(tt.want, payments.ErrDevRefused); got != want {
				t.Errorf("StripeConfigured() = %v, want %v", got, want)
			}
		})
	}
}

// TestParseWebhookSecrets checks the comma-separated form of
// STRIPE_WEBHOOK_SECRET.
func TestParseWebhookSecrets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"Empty", "", nil},
		{"Blank", " , ", nil},
		{"One", "whsec_a", []string{"whsec_a"}},
		{"Rotation", " whsec_new , whsec_old,", []string{"whsec_new", "whsec_old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := payments.ParseWebhookSecrets(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("ParseWebhookSecrets(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// with returns c changed by f.
func with(c payments.Config, f func(*payments.Config)) payments.Config {
	c.WebhookSecrets = slices.Clone(c.WebhookSecrets)
	f(&c)
	return c
}
