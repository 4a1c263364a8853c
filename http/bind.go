package http

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

// bindJSON decodes the request body into v, refusing malformed JSON, wrong
// field types, trailing data and bodies over the limit, with an error that
// names the problem.
func bindJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Errorf(domain.CodeInvalid, "body: unexpected data after the JSON value")
	}
	return nil
}

func bodyError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return domain.Errorf(domain.CodeTooLarge, "body: larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &typeErr):
		return domain.Errorf(domain.CodeInvalid, "%s: must be %s", fieldName(typeErr.Field), typeErr.Type)
	case errors.As(err, &syntaxErr):
		return domain.Errorf(domain.CodeInvalid, "body: malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF):
		return domain.Errorf(domain.CodeInvalid, "body: a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Errorf(domain.CodeInvalid, "body: truncated JSON")
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
		return domain.Errorf(domain.CodeTooLarge, "body: too large")
	}
	return domain.Errorf(domain.CodeInvalid, "body: %v", err)
}

func fieldName(f string) string {
	if f == "" {
		return "body"
	}
	return f
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, domain.Errorf(domain.CodeInvalid, "%s: must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
