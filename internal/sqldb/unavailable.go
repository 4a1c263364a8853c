package sqldb

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says the database could not be reached
// or went away (refused or dropped connections, a server shutting down or
// starting up, no answer before the deadline): a failure of the service,
// not of the request, which the API answers 503 "unavailable" so that
// clients retry (a write whose commit was cut may have committed: its
// Idempotency-Key makes the retry safe).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	var pg *pgconn.PgError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), // the database did not answer in time
		errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pg):
		return unavailableState(pg.Code)
	}
	return false
}

// unavailableState reports whether a PostgreSQL SQLSTATE says the server
// is out of reach: class 08 (connection exception), 57P01-57P03 (shutting
// down, crashed, starting up) and 53300 (too many connections).
func unavailableState(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
}
