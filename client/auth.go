package client

import (
	"context"
	"net/http"
	"time"
)

// User is an account as the API shows it to its owner.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"` // "creator" or "admin"
}

// tokenResponse is what register, login and refresh answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"` // seconds
	User         *User  `json:"user"`
}

func (r tokenResponse) tokens(now time.Time) Tokens {
	t := Tokens{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken}
	if r.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(time.Duration(r.ExpiresIn) * time.Second)
	}
	return t
}

type credentials struct {
	Email    string `json:"email"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password"`
}

// Register creates a creator account (password at least 8 characters) and
// logs the client in as it. It returns an *APIError: ErrInvalid for a bad
// field, ErrConflict when the email is taken.
func (c *Client) Register(ctx context.Context, email, name, password string) (User, error) {
	return c.startSession(ctx, "/api/v1/auth/register", credentials{Email: email, Name: name, Password: password})
}

// Login logs the client in. It returns an *APIError: ErrUnauthorized for a
// wrong email or password, ErrRateLimited after too many attempts (its
// RetryAfter says when to try again).
func (c *Client) Login(ctx context.Context, email, password string) (User, error) {
	return c.startSession(ctx, "/api/v1/auth/login", credentials{Email: email, Password: password})
}

func (c *Client) startSession(ctx context.Context, path string, body credentials) (User, error) {
	var resp tokenResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: path, body: body}, &resp); err != nil {
		return User{}, err
	}
	c.setTokens(resp.tokens(c.now()))
	if resp.User == nil {
		return User{}, nil
	}
	return *resp.User, nil
}

// Logout revokes the session's refresh token and forgets the session. The
// session is forgotten even when the server could not be told (the error
// is returned then); an already revoked session is not an error.
func (c *Client) Logout(ctx context.Context) error {
	t := c.Tokens()
	c.setTokens(Tokens{})
	if t.RefreshToken == "" {
		return nil
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/auth/logout", body: map[string]string{"refresh_token": t.RefreshToken}}, nil)
	if isAPIStatus(err, http.StatusUnauthorized) {
		return nil
	}
	return err
}

// Me returns the logged-in user. It returns an *APIError matching
// ErrUnauthorized without a valid session.
func (c *Client) Me(ctx context.Context) (User, error) {
	var u User
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/me", auth: true}, &u)
	return u, err
}
