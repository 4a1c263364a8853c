package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
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

// idempotencyKeyBytesMax bounds an Idempotency-Key.
const idempotencyKeyBytesMax = 255

// AnswerCache keeps the first successful answer to each Idempotency-Key;
// *idempotency.AnswerCache (the idempotency_keys table) implements it.
type AnswerCache interface {
	// Claim binds (scope, key) to requestHash if new and returns the
	// answer stored for it, nil while none is stored. It returns
	// domain.ErrIdempotencyConflict when the key is bound to another hash.
	Claim(ctx context.Context, scope, key, requestHash string) ([]byte, error)
	// Keep stores the answer of a claimed key unless one is stored already.
	Keep(ctx context.Context, scope, key string, answer []byte) error
}

// idempotency honours Idempotency-Key on a POST: the first successful
// answer is stored, and a repeat with the same key, path and body gets it
// again without running the handler; the same key with another body is 409.
// Keys are scoped by caller. Answers that carry credentials (tokens) are
// never stored, so those routes pass through. Commands still derive their
// ids from the key (it travels in the Actor), so two concurrent first
// attempts write once. Without an AnswerCache nothing is replayed.
func (s *Server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" || carriesCredentials(c.Path()) || s.Answers == nil {
			return next(c)
		}
		if len(key) > idempotencyKeyBytesMax {
			return domain.Errorf(domain.CodeInvalid, "Idempotency-Key: longer than %d bytes", idempotencyKeyBytesMax)
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return bodyError(err)
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		hash, err := requestHash(keyedRequest{Path: c.Request().URL.Path, Body: body})
		if err != nil {
			return err
		}
		ctx, scope := c.Request().Context(), "http:"+callerScope(c)
		stored, err := s.Answers.Claim(ctx, scope, key, hash)
		if err != nil {
			return err
		}
		if stored != nil {
			return replay(c, stored)
		}
		ans, err := record(c, next)
		if err != nil {
			return err
		}
		b, err := json.Marshal(ans)
		if err != nil {
			return fmt.Errorf("encode answer: %w", err)
		}
		return s.Answers.Keep(ctx, scope, key, b)
	}
}

// replay answers again what was stored for the key.
func replay(c echo.Context, stored []byte) error {
	var ans storedAnswer
	if err := json.Unmarshal(stored, &ans); err != nil {
		return fmt.Errorf("decode stored answer: %w", err)
	}
	c.Response().Header().Set("Idempotent-Replayed", "true")
	return c.Blob(ans.Status, ans.ContentType, ans.Body)
}

// requestHash is the SHA-256 of the request's JSON: what a key is bound to.
func requestHash(request keyedRequest) (string, error) {
	b, err := json.Marshal(request)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
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
