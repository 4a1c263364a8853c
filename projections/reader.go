package projections

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Reader answers the API's queries from the read models' views. Its
// methods are safe for concurrent use and never block on a runner or a
// rebuild.
type Reader struct {
	db *sqldb.DB
}

// NewReader returns a Reader of the read models in db.
func NewReader(db *sqldb.DB) *Reader { return &Reader{db: db} }

// Page limits of the list queries.
const (
	// PageLimitDefault is the page size when a query asks for none.
	PageLimitDefault = 50
	// PageLimitMax bounds a page's size.
	PageLimitMax = 200
)

var (
	// ErrInvalidCursor is returned (wrapped) for a cursor that no page
	// produced. Its code is domain.CodeInvalid (HTTP 400).
	ErrInvalidCursor = &domain.Error{Code: domain.CodeInvalid, Message: "invalid cursor"}
	// ErrInvalidQuery is returned (wrapped) for a page limit, status, day
	// count or time zone out of range. Its code is domain.CodeInvalid.
	ErrInvalidQuery = &domain.Error{Code: domain.CodeInvalid, Message: "invalid query"}
)

// pageLimit returns the page size for a requested limit (0 = default), or
// ErrInvalidQuery.
func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return PageLimitDefault, nil
	case limit < 0 || limit > PageLimitMax:
		return 0, fmt.Errorf("%w: limit %d, want 1..%d", ErrInvalidQuery, limit, PageLimitMax)
	}
	return limit, nil
}

// cursorVersion prefixes every cursor, so the format can change later.
const cursorVersion = "1"

// encodeCursor makes an opaque cursor from parts, which must not contain
// '|'.
func encodeCursor(kind string, parts ...string) string {
	raw := cursorVersion + "|" + kind + "|" + strings.Join(parts, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor returns the n parts of a cursor of kind, or ErrInvalidCursor.
func decodeCursor(cursor, kind string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) > 512 {
		return nil, fmt.Errorf("%w: not a cursor", ErrInvalidCursor)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != n+2 || parts[0] != cursorVersion || parts[1] != kind {
		return nil, fmt.Errorf("%w: not a %s cursor", ErrInvalidCursor, kind)
	}
	return parts[2:], nil
}
