package http

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/commands"
)

// storedAnswer is a successful answer kept for an Idempotency-Key.
type storedAnswer struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        []byte `json:"body"`
}

// keyedRequest is what an Idempotency-Key is bound to: the same key with
// another path or body is a conflict.
type keyedRequest struct {
	Path string `json:"path"`
	Body []byte `json:"body"`
}

// idempotency honours Idempotency-Key on a POST: the first successful
// answer is stored, and a repeat with the same key, path and body gets it
// again without running the handler; the same key with another body is 409.
// Keys are scoped by caller. Answers that carry credentials (tokens) are
// never stored, so those routes pass through. Handlers still derive their
// ids from the key, so two concurrent first attempts write once.
func (s *Server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" || carriesCredentials(c.Path()) {
			return next(c)
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return bodyError(err)
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		req := keyedRequest{Path: c.Request().URL.Path, Body: body}
		var replayed = true
		ans, err := commands.Idempotent(c.Request().Context(), s.Commands, "http:"+callerScope(c), key, req,
			func(context.Context) (storedAnswer, error) {
				replayed = false
				return record(c, next)
			})
		if err != nil || !replayed {
			return err
		}
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.Blob(ans.Status, ans.ContentType, ans.Body)
	}
}

// record runs the handler, copying what it writes; a failed handler's
// answer is not kept.
func record(c echo.Context, next echo.HandlerFunc) (storedAnswer, error) {
	rec := &recorder{ResponseWriter: c.Response().Writer}
	c.Response().Writer = rec
	if err := next(c); err != nil {
		return storedAnswer{}, err
	}
	st := c.Response().Status
	if st >= 300 {
		return storedAnswer{}, errNotStored
	}
	return storedAnswer{Status: st, ContentType: c.Response().Header().Get(echo.HeaderContentType), Body: rec.buf.Bytes()}, nil
}

// errNotStored ends an idempotent run whose answer was already written but
// is not one to replay.
var errNotStored = &notStored{}

type notStored struct{}

func (*notStored) Error() string { return "answer not stored" }

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

// carriesCredentials reports whether a route's answer holds a secret
// (tokens, an enrollment token, a node credential), which must never be
// kept in the idempotency table.
func carriesCredentials(path string) bool {
	switch path {
	case "/api/v1/nodes/enroll", "/api/v1/admin/enrollment-tokens", "/api/v1/admin/nodes/:id/credential":
		return true
	}
	return strings.HasPrefix(path, "/api/v1/auth/")
}

func callerScope(c echo.Context) string {
	switch {
	case nodeOf(c) != "":
		return "node:" + string(nodeOf(c))
	case userOf(c) != "":
		return "user:" + string(userOf(c))
	}
	return "addr:" + c.RealIP()
}
