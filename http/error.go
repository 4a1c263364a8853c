package http

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Codes beyond the domain's that only the HTTP layer produces.
const (
	codeUnsupportedMediaType domain.Code = "unsupported_media_type"
	codeMethodNotAllowed     domain.Code = "method_not_allowed"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[domain.Code]int{
	domain.CodeInvalid:             http.StatusBadRequest,
	domain.CodeUnauthorized:        http.StatusUnauthorized,
	domain.CodeInsufficientCredits: http.StatusPaymentRequired,
	domain.CodeForbidden:           http.StatusForbidden,
	domain.CodeNotFound:            http.StatusNotFound,
	domain.CodeConflict:            http.StatusConflict,
	domain.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	domain.CodeRateLimited:         http.StatusTooManyRequests,
	domain.CodeNoHealthyNodes:      http.StatusServiceUnavailable,
	domain.CodeInternal:            http.StatusInternalServerError,
	codeUnsupportedMediaType:       http.StatusUnsupportedMediaType,
	codeMethodNotAllowed:           http.StatusMethodNotAllowed,
	domain.CodeInvalidSignature:    http.StatusBadRequest,
	domain.CodeNotAnchored:         http.StatusConflict,
	domain.CodeUnavailable:         http.StatusServiceUnavailable,
}

// errDatabaseUnavailable answers a request whose database could not be
// reached (sqldb.Unavailable): 503, so that clients retry.
var errDatabaseUnavailable = &domain.Error{Code: domain.CodeUnavailable, Message: "the database is unavailable, try again shortly"}

// ErrorBody is the one JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable code and a human message.
type ErrorDetail struct {
	Code    domain.Code `json:"code"`
	Message string      `json:"message"`
	// RetryAfterSeconds is set for rate limits and "not anchored yet".
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// errorf returns an application error with an HTTP-only code.
func errorf(code domain.Code, format string, args ...any) error {
	return domain.Errorf(code, format, args...)
}

// errorHandler renders every error as ErrorBody. Application errors keep
// their code and message; anything else is "internal", logged with the
// request id, and its details never reach the client.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		return // the client went away; there is no one to answer
	}
	code, msg := domain.ErrorCode(err), domain.ErrorMessage(err)
	if code == domain.CodeInternal && sqldb.Unavailable(err) {
		code, msg = domain.CodeUnavailable, errDatabaseUnavailable.Message // the client retries; nothing is logged as a failure of ours
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code, msg = echoCode(he.Code), http.StatusText(he.Code)
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusBadRequest
	}
	if status >= 500 && code != domain.CodeNoHealthyNodes && code != domain.CodeUnavailable {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	var ra retryAfter
	body := ErrorBody{Error: ErrorDetail{Code: code, Message: msg}}
	if errors.As(err, &ra) {
		body.Error.RetryAfterSeconds = ra.RetryAfterSeconds()
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, body)
}

// retryAfter is an error that tells the client when to try again.
type retryAfter interface{ RetryAfterSeconds() int }

func echoCode(status int) domain.Code {
	switch status {
	case http.StatusNotFound:
		return domain.CodeNotFound
	case http.StatusMethodNotAllowed:
		return codeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return domain.CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return codeUnsupportedMediaType
	case http.StatusUnauthorized:
		return domain.CodeUnauthorized
	case http.StatusTooManyRequests:
		return domain.CodeRateLimited
	case http.StatusServiceUnavailable:
		return domain.CodeUnavailable
	}
	if status >= 500 {
		return domain.CodeInternal
	}
	return domain.CodeInvalid
}
