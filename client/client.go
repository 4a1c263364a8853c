package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits of the client.
const (
	// responseBytesMax bounds a JSON response body.
	responseBytesMax = 8 << 20
	// tokenExpirySkew refreshes an access token this long before it expires,
	// so a request does not race its token's expiry.
	tokenExpirySkew = 30 * time.Second
	// userAgentDefault names the SDK to the server.
	userAgentDefault = "rendertrust-go"
)

// Client is a RenderTrust API client. It keeps the session's tokens and
// refreshes the access token for the caller: before a request when it has
// expired, and once after a 401. Refresh tokens rotate, so the client
// always keeps (and reports through WithTokenHook) the newest one. A
// Client is safe for concurrent use; concurrent requests that find the
// token expired share one refresh.
type Client struct {
	base      *url.URL
	http      *http.Client
	userAgent string
	onTokens  func(Tokens)
	now       func() time.Time

	mu     sync.Mutex // guards tokens
	tokens Tokens

	refreshMu sync.Mutex // one refresh at a time: a rotated token is used once
}

// Tokens are a session's credentials.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"` // of the access token
}

// expired reports whether the access token is missing or (nearly) expired at now.
func (t Tokens) expired(now time.Time) bool {
	return t.AccessToken == "" || (!t.ExpiresAt.IsZero() && !now.Add(tokenExpirySkew).Before(t.ExpiresAt))
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests (downloads included)
// through hc instead of a default client without a timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTokens starts the client with a saved session, as WithTokenHook
// reported it.
func WithTokens(t Tokens) Option { return func(c *Client) { c.tokens = t } }

// WithTokenHook calls f with the session's tokens whenever they change
// (register, login, refresh, logout — then with zero Tokens), so a program
// can save them. Saving matters: refresh tokens rotate, and presenting an
// old one again revokes the whole session. f is called synchronously,
// never concurrently with itself.
func WithTokenHook(f func(Tokens)) Option { return func(c *Client) { c.onTokens = f } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the API at baseURL ("https://api.rendertrust.com").
// It returns an error if baseURL is not an absolute http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host", baseURL)
	}
	c := &Client{base: u, http: &http.Client{}, userAgent: userAgentDefault, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the API's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// Tokens returns the session's current tokens (zero when logged out).
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// setTokens replaces the session and tells the hook.
func (c *Client) setTokens(t Tokens) {
	c.mu.Lock()
	c.tokens = t
	c.mu.Unlock()
	if c.onTokens != nil {
		c.onTokens(t)
	}
}

// request is one API call.
type request struct {
	method, path   string
	query          url.Values
	body           any // encoded as JSON when not nil
	auth           bool
	idempotencyKey string
}

// do sends r and decodes a 2xx JSON answer into out (when not nil). An
// authenticated request whose token is refused (401) is sent once more
// after a refresh. It returns an *APIError for an error answer, and the
// transport's or context's error otherwise.
func (c *Client) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("client: encode %s %s: %w", r.method, r.path, err)
		}
	}
	token, err := c.accessToken(ctx, r.auth)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, r, body, token)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized && token != "" && c.Tokens().RefreshToken != "" {
		discard(resp)
		if token, err = c.refresh(ctx, token); err != nil {
			return err
		}
		if resp, err = c.send(ctx, r, body, token); err != nil {
			return err
		}
	}
	defer discard(resp)
	return decode(resp, out)
}

// send makes one HTTP round trip.
func (c *Client) send(ctx context.Context, r request, body []byte, token string) (*http.Response, error) {
	u := c.base.String() + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	return resp, nil
}

// decode returns the error a non-2xx response carries, or decodes its JSON
// body into out.
func decode(resp *http.Response, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ErrorFromResponse(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, responseBytesMax)).Decode(out); err != nil {
		return fmt.Errorf("client: decode %s response: %w", resp.Request.URL.Path, err)
	}
	return nil
}

// discard drains (boundedly) and closes a body so the connection is reused.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyBytesMax))
	resp.Body.Close()
}

// accessToken returns the token to send: none for a public request or a
// client never logged in, else the current access token, refreshed first
// when it has expired and a refresh token is at hand.
func (c *Client) accessToken(ctx context.Context, auth bool) (string, error) {
	if !auth {
		return "", nil
	}
	t := c.Tokens()
	if t.expired(c.now()) && t.RefreshToken != "" {
		return c.refresh(ctx, t.AccessToken)
	}
	return t.AccessToken, nil
}

// refresh trades the refresh token for a new pair, unless another caller
// already replaced stale (the access token that failed or expired), in
// which case that caller's token is used. It returns the new access token,
// or an error wrapping the *APIError of a refused refresh (errors.Is
// ErrUnauthorized: the session is over; log in again).
func (c *Client) refresh(ctx context.Context, stale string) (string, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	t := c.Tokens()
	if t.AccessToken != stale && !t.expired(c.now()) {
		return t.AccessToken, nil
	}
	if t.RefreshToken == "" {
		return "", fmt.Errorf("client: refresh session: %w", ErrUnauthorized)
	}
	var resp tokenResponse
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": t.RefreshToken}}, &resp)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			c.setTokens(Tokens{}) // the refresh token is spent or revoked: the session is over
		}
		return "", fmt.Errorf("client: refresh session: %w", err)
	}
	c.setTokens(resp.tokens(c.now()))
	return resp.AccessToken, nil
}

// pathID checks an id that goes into a path and returns it escaped. It
// returns an error for an empty id or one of dots only, which would name
// another route.
func pathID(kind, id string) (string, error) {
	if strings.Trim(id, ". ") == "" {
		return "", fmt.Errorf("client: %s id %q is empty or only dots", kind, id)
	}
	return url.PathEscape(id), nil
}
