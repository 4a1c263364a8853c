package http

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/identity"
)

// EnrollmentToken is a one-time token a node enrolls with.
type EnrollmentToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) issueEnrollmentToken(c echo.Context) error {
	tok, exp, err := s.Nodes.IssueEnrollmentToken(c.Request().Context(), actor(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, EnrollmentToken{Token: tok, ExpiresAt: exp})
}

type grantRequest struct {
	UserID string `json:"user_id"`
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

// LedgerWrite answers an admin write with the log position it reached.
type LedgerWrite struct {
	Position uint64 `json:"position"`
}

func (s *Server) grant(c echo.Context) error {
	var req grantRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	// A grant to a user who does not exist would credit an account nobody
	// can ever use.
	if _, err := s.Users.User(c.Request().Context(), domain.UserID(req.UserID)); err != nil {
		return err
	}
	// The grant id is derived from the Idempotency-Key: a retried request grants once.
	pos, err := s.Credits.Grant(c.Request().Context(), actor(c), domain.UserID(req.UserID), "", domain.Credits(req.Amount), req.Reason)
	if err != nil {
		return err
	}
	s.waitRead(c.Request().Context(), pos)
	res := LedgerWrite{pos}
	return c.JSON(http.StatusCreated, res)
}

type refundRequest struct {
	Amount int64  `json:"amount"` // 0: everything not yet refunded
	Reason string `json:"reason"`
}

func (s *Server) refund(c echo.Context) error {
	var req refundRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	// The refund id is derived from the Idempotency-Key: a retried request refunds once.
	pos, err := s.Credits.Refund(c.Request().Context(), actor(c), domain.JobID(c.Param("id")), domain.Credits(req.Amount), "", req.Reason)
	if err != nil {
		return err
	}
	s.waitRead(c.Request().Context(), pos)
	res := LedgerWrite{pos}
	return c.JSON(http.StatusCreated, res)
}

func (s *Server) listNodes(c echo.Context) error {
	nodes, err := s.Reader.Nodes(c.Request().Context(), s.Assignments, s.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"nodes": nodes})
}

func (s *Server) listUsers(c echo.Context) error {
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	users, err := s.Users.Users(c.Request().Context(), domain.UserID(c.QueryParam("after")), limit)
	if err != nil {
		return err
	}
	if users == nil {
		users = []identity.User{}
	}
	return c.JSON(http.StatusOK, map[string]any{"users": users})
}

type retireRequest struct {
	Reason string `json:"reason"`
}

// retireNode retires a node: its credential is refused at once and its
// jobs are retried elsewhere.
func (s *Server) retireNode(c echo.Context) error {
	var req retireRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	pos, err := s.Nodes.RetireNode(ctx, actor(c), domain.NodeID(c.Param("id")), req.Reason)
	if err != nil {
		return err
	}
	s.waitRead(ctx, pos)
	return c.JSON(http.StatusOK, LedgerWrite{pos})
}

// NodeCredential is a node's new credential after a rotation.
type NodeCredential struct {
	NodeID     string `json:"node_id"`
	Credential string `json:"credential"`
}

// rotateNodeCredential gives a node a new credential; the old one is
// refused from now on.
func (s *Server) rotateNodeCredential(c echo.Context) error {
	id := domain.NodeID(c.Param("id"))
	cred, err := s.Nodes.RotateNodeCredential(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NodeCredential{NodeID: string(id), Credential: cred})
}
