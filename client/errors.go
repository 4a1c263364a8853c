package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errorBodyBytesMax bounds how much of an error response is read.
const errorBodyBytesMax = 64 << 10

// Error codes the API answers with. Codes are stable and only ever added.
const (
	CodeInvalid             = "invalid"
	CodeUnauthorized        = "unauthorized"
	CodeInsufficientCredits = "insufficient_credits"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeConflict            = "conflict"
	CodeTooLarge            = "too_large"
	CodeRateLimited         = "rate_limited"
	CodeNoHealthyNodes      = "no_healthy_nodes"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
)

// Sentinels an *APIError matches with errors.Is, by status or code.
var (
	// ErrInvalid: the request was refused as malformed (400).
	ErrInvalid = errors.New("rendertrust: invalid request")
	// ErrUnauthorized: no valid session (401) — log in again.
	ErrUnauthorized = errors.New("rendertrust: unauthorized")
	// ErrInsufficientCredits: not enough available credits for the job (402).
	ErrInsufficientCredits = errors.New("rendertrust: insufficient credits")
	// ErrForbidden: the caller may not do this, or a download link is
	// altered or expired (403).
	ErrForbidden = errors.New("rendertrust: forbidden")
	// ErrNotFound: no such job, entry or user — or not the caller's (404).
	ErrNotFound = errors.New("rendertrust: not found")
	// ErrConflict: the resource's state does not allow the request, e.g.
	// cancelling a RUNNING job or asking for the result of an unfinished
	// one (409).
	ErrConflict = errors.New("rendertrust: conflict")
	// ErrRateLimited: too many requests; APIError.RetryAfter says when to
	// try again (429).
	ErrRateLimited = errors.New("rendertrust: rate limited")
	// ErrNoHealthyNodes: no healthy node runs the job's type; nothing was
	// charged (503 no_healthy_nodes).
	ErrNoHealthyNodes = errors.New("rendertrust: no healthy nodes")
	// ErrUnavailable: the service (or a part of it, such as the anchoring
	// service behind proofs, or payments) is not available (503 other than
	// no_healthy_nodes).
	ErrUnavailable = errors.New("rendertrust: service unavailable")
)

// APIError is an error answer of the API: its HTTP status, the stable code
// and the message of the body {"error": {"code", "message"}}. It matches
// the sentinels above with errors.Is.
type APIError struct {
	Status  int    // HTTP status
	Code    string // stable error code, e.g. CodeInsufficientCredits; "" if the body had none
	Message string // human-readable, safe to show
	// RetryAfter is when to try again (429, and 503 when the server says);
	// zero when the server did not say.
	RetryAfter time.Duration
	// RequestID is the server's id of the request (X-Request-Id), for support.
	RequestID string
}

// Error returns the status, code and message.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
	}
	return fmt.Sprintf("rendertrust: %d %s: %s", e.Status, code, e.Message)
}

// Is reports whether target is the sentinel for e's status or code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrInsufficientCredits:
		return e.Status == http.StatusPaymentRequired || e.Code == CodeInsufficientCredits
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrNoHealthyNodes:
		return e.Code == CodeNoHealthyNodes
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable && e.Code != CodeNoHealthyNodes
	}
	return false
}

// Temporary reports whether the same request may succeed later: rate
// limits, unavailability and server errors other than 501.
func (e *APIError) Temporary() bool {
	switch {
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		return true
	case e.Status == http.StatusNotImplemented:
		return false
	}
	return e.Status >= 500
}

// errorBody is the API's one error shape.
type errorBody struct {
	Error struct {
		Code              string `json:"code"`
		Message           string `json:"message"`
		RetryAfterSeconds int    `json:"retry_after_seconds"`
	} `json:"error"`
}

// ErrorFromResponse returns the *APIError that a response with a non-2xx
// status carries. It reads at most 64 KiB of the body and leaves closing it
// to the caller. A body that is not the API's error shape (a proxy's page)
// gives the status text as the message. It is exported for programs that
// speak other parts of the API, such as the node agent.
func ErrorFromResponse(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytesMax))
	var body errorBody
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		e.RetryAfter = time.Duration(body.Error.RetryAfterSeconds) * time.Second
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// ChecksumError is returned by DownloadResult when the downloaded bytes do
// not hash to the SHA-256 the API recorded for the result. It matches
// ErrChecksumMismatch with errors.Is. Nothing is written to the path.
type ChecksumError struct {
	Want, Got string // lower-case hex SHA-256
	WantBytes int64  // the result's recorded size
	GotBytes  int64  // the bytes received
}

// ErrChecksumMismatch is matched by *ChecksumError.
var ErrChecksumMismatch = errors.New("rendertrust: downloaded result does not match its SHA-256")

// Error says what was expected and what arrived.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("rendertrust: downloaded result: sha256 %s (%d bytes), want %s (%d bytes)", e.Got, e.GotBytes, e.Want, e.WantBytes)
}

// Is reports whether target is ErrChecksumMismatch.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksumMismatch }

// isAPIStatus reports whether err is an *APIError with status.
func isAPIStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// ErrTooManyJobs is returned by ListJobs rather than more than ListJobsMax jobs.
var ErrTooManyJobs = errors.New("rendertrust: too many jobs to list at once")
