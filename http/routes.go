package http

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// route is one entry of the API's route table; the OpenAPI document is
// checked against this table.
type route struct {
	method, path string
	handler      echo.HandlerFunc
	auth         authKind
}

type authKind int

const (
	public authKind = iota
	user
	admin
	node
)

// routeTable lists every API route.
func (s *Server) routeTable() []route {
	return []route{
		{http.MethodPost, "/api/v1/auth/register", s.register, public},
		{http.MethodPost, "/api/v1/auth/login", s.login, public},
		{http.MethodPost, "/api/v1/auth/refresh", s.refresh, public},
		{http.MethodPost, "/api/v1/auth/logout", s.logout, public},
		{http.MethodGet, "/api/v1/me", s.me, user},

		{http.MethodPost, "/api/v1/jobs/dispatch", s.dispatchJob, user},
		{http.MethodGet, "/api/v1/jobs", s.listJobs, user},
		{http.MethodGet, "/api/v1/jobs/types", s.jobTypes, public},
		{http.MethodGet, "/api/v1/jobs/:id", s.getJob, user},
		{http.MethodPost, "/api/v1/jobs/:id/cancel", s.cancelJob, user},
		{http.MethodGet, "/api/v1/jobs/:id/result", s.jobResult, user},
		{http.MethodGet, "/api/v1/results/:id", s.downloadResult, public},

		{http.MethodGet, "/api/v1/credits/balance", s.balance, user},
		{http.MethodGet, "/api/v1/credits/transactions", s.transactions, user},
		{http.MethodGet, "/api/v1/credits/usage", s.usage, user},
		{http.MethodGet, "/api/v1/credits/packages", s.packages, public},
		{http.MethodPost, "/api/v1/credits/checkout", s.checkout, user},
		{http.MethodPost, "/api/v1/webhooks/stripe", s.stripeWebhook, public},

		{http.MethodGet, "/api/v1/ledger/consistency", s.consistency, user},
		{http.MethodGet, "/api/v1/ledger/chain", s.chain, public},
		{http.MethodGet, "/api/v1/ledger/:entry_id/proof", s.proof, user},
		{http.MethodGet, "/api/v1/ledger/:entry_id/verify", s.verify, user},

		{http.MethodPost, "/api/v1/nodes/enroll", s.enrollNode, public},
		{http.MethodPost, "/api/v1/nodes/heartbeat", s.heartbeat, node},
		{http.MethodGet, "/api/v1/nodes/assignments", s.assignments, node},
		{http.MethodPost, "/api/v1/nodes/jobs/:id/started", s.jobStarted, node},
		{http.MethodPut, "/api/v1/nodes/jobs/:id/result", s.uploadResult, node},
		{http.MethodPost, "/api/v1/nodes/jobs/:id/failed", s.jobFailed, node},

		{http.MethodPost, "/api/v1/admin/enrollment-tokens", s.issueEnrollmentToken, admin},
		{http.MethodPost, "/api/v1/admin/grants", s.grant, admin},
		{http.MethodPost, "/api/v1/admin/jobs/:id/refund", s.refund, admin},
		{http.MethodGet, "/api/v1/admin/nodes", s.listNodes, admin},
		{http.MethodPost, "/api/v1/admin/nodes/:id/retire", s.retireNode, admin},
		{http.MethodPost, "/api/v1/admin/nodes/:id/credential", s.rotateNodeCredential, admin},
		{http.MethodGet, "/api/v1/admin/users", s.listUsers, admin},

		{http.MethodGet, "/api/v1/openapi.json", s.openAPI, public},
		{http.MethodGet, "/healthz", s.healthz, public},
		{http.MethodGet, "/readyz", s.readyz, public},
	}
}

func (s *Server) routes() {
	e := s.echo
	e.Use(dropInvalidRequestID)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: newRequestID}))
	e.Use(s.accessLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  s.CORSOrigins,
		AllowHeaders:  []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"},
		ExposeHeaders: []string{"X-Request-Id", "Retry-After"},
	}))
	if !s.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(s.MetricsHandler()))
	}
	for _, r := range s.routeTable() {
		if s.HealthOnly && r.path != "/healthz" && r.path != "/readyz" {
			continue
		}
		e.Add(r.method, r.path, r.handler, s.guard(r)...)
	}
	if s.App != nil && !s.HealthOnly {
		e.GET("/*", s.app)
		e.HEAD("/*", s.app)
	}
	s.metrics.knowRoutes(e.Routes())
}

// app serves the Creator app for every path no route claims; an unknown
// API path, and /metrics when it is served on another address, stay a
// JSON 404.
func (s *Server) app(c echo.Context) error {
	if p := c.Request().URL.Path; strings.HasPrefix(p, "/api/") || p == "/metrics" {
		return echo.ErrNotFound // the API's own paths; /metrics when served elsewhere
	}
	s.App.ServeHTTP(c.Response(), c.Request())
	return nil
}

// guard returns the middleware a route runs behind: body limits, a JSON
// content type for bodies, and its authentication.
func (s *Server) guard(r route) []echo.MiddlewareFunc {
	var mw []echo.MiddlewareFunc
	switch {
	case r.path == "/api/v1/webhooks/stripe":
		// The webhook reads its raw body itself, with its own limit.
	case r.method == http.MethodPut:
		mw = append(mw, uploadDeadline, middleware.BodyLimit("1G"))
	case r.method == http.MethodPost:
		mw = append(mw, middleware.BodyLimit("256K"), requireJSON)
	}
	switch r.auth {
	case user:
		mw = append(mw, s.requireUser(false), s.readOwnWrites)
	case admin:
		mw = append(mw, s.requireUser(true))
	case node:
		mw = append(mw, s.requireNode)
	}
	if r.method == http.MethodPost && r.path != "/api/v1/webhooks/stripe" {
		mw = append(mw, s.idempotency)
	}
	return mw
}
