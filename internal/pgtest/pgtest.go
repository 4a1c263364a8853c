// Package pgtest gives tests their own PostgreSQL database on the server
// named by DATABASE_URL (make test starts a throwaway one).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminTimeout bounds creating and dropping a test database.
const adminTimeout = 30 * time.Second

// URL returns DATABASE_URL. Without it the test is skipped, except under
// CI=true, where a missing service is a failure, never a skip.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("DATABASE_URL is not set under CI=true: run the tests through make test")
		}
		tb.Skip("DATABASE_URL not set (make test starts PostgreSQL); skipping outside CI")
	}
	return u
}

// NewDatabase creates an empty database, drops it when tb ends, and returns
// its connection string.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := URL(tb)
	name := "rt_test_" + randomHex(8)
	exec(tb, admin, "CREATE DATABASE "+name)
	tb.Cleanup(func() { exec(tb, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func exec(tb testing.TB, dsn, sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
