package sqldb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUnavailable: connection failures and a server shutting down or
// starting and a deadline passed are "unavailable"; a cancelled request, a refused statement or any other error is not.
func TestUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"Nil", nil, false},
		{"AdminShutdown", fmt.Errorf("begin append: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"CannotConnectNow", &pgconn.PgError{Code: "57P03"}, true},
		{"ConnectionFailure", &pgconn.PgError{Code: "08006"}, true},
		{"TooManyConnections", &pgconn.PgError{Code: "53300"}, true},
		{"Refused", fmt.Errorf("read: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"BadConn", fmt.Errorf("rollback: %w", driver.ErrBadConn), true},
		{"ConnClosed", pgconn.ErrConnClosed, true},
		{"Deadline", fmt.Errorf("fulfil: %w", context.DeadlineExceeded), true},
		{"Canceled", fmt.Errorf("fulfil: %w", context.Canceled), false},
		{"UniqueViolation", &pgconn.PgError{Code: "23505"}, false},
		{"SerializationFailure", &pgconn.PgError{Code: "40001"}, false},
		{"Other", errors.New("no such table"), false},
	}
	for _, c := range cases {
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
