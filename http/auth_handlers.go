package http

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/identity"
)

// TokenResponse is what register, login and refresh answer.
type TokenResponse struct {
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token"`
	TokenType    string         `json:"token_type"`
	ExpiresIn    int            `json:"expires_in"`
	User         *identity.User `json:"user,omitempty"`
}

type credentials struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (s *Server) register(c echo.Context) error {
	var req credentials
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	u, err := s.Users.Register(c.Request().Context(), req.Email, req.Name, req.Password, identity.RoleCreator)
	if err != nil {
		return err
	}
	return s.issue(c, http.StatusCreated, u)
}

func (s *Server) login(c echo.Context) error {
	var req credentials
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	finish, err := s.Users.BeginLogin(ctx, strings.ToLower(strings.TrimSpace(req.Email)), c.RealIP())
	if err != nil {
		c.Response().Header().Set("Retry-After", retryAfterHeader(err))
		return err
	}
	u, err := s.Users.Authenticate(ctx, req.Email, req.Password)
	switch {
	case err == nil:
		finish(ctx, identity.LoginSucceeded)
	case domain.ErrorCode(err) == domain.CodeUnauthorized:
		finish(ctx, identity.LoginFailed)
		return err
	default:
		finish(ctx, identity.LoginErred)
		return err
	}
	return s.issue(c, http.StatusOK, u)
}

func retryAfterHeader(err error) string {
	if ra, ok := err.(retryAfter); ok {
		return itoa(ra.RetryAfterSeconds())
	}
	return "60"
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c echo.Context) error {
	var req refreshRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id, next, err := s.Users.RotateRefreshToken(ctx, req.RefreshToken)
	if err != nil {
		return err
	}
	u, err := s.Users.User(ctx, id)
	if err != nil {
		return err
	}
	access, err := s.Tokens.Issue(u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TokenResponse{AccessToken: access, RefreshToken: next, TokenType: "Bearer", ExpiresIn: int(s.Tokens.TTL().Seconds())})
}

func (s *Server) logout(c echo.Context) error {
	var req refreshRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.Users.RevokeRefreshToken(c.Request().Context(), req.RefreshToken); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) issue(c echo.Context, status int, u identity.User) error {
	access, err := s.Tokens.Issue(u)
	if err != nil {
		return err
	}
	refresh, err := s.Users.IssueRefreshToken(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(status, TokenResponse{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.Tokens.TTL().Seconds()), User: &u})
}

func (s *Server) me(c echo.Context) error {
	u, err := s.Users.User(c.Request().Context(), userOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}
