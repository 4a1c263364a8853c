package cluster_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

func openPostgres(t *testing.T, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestJoinRefuses: against a live API process signing with key k1,
// accepting k1 and storing results in r1, a process joins or is refused
// with the refusal naming what does not fit.
func TestJoinRefuses(t *testing.T) {
	live := cluster.ProcessConfig{Holder: "a", SigningKey: "k1", Accepts: []string{"k1"}, Results: "r1"}
	cases := []struct {
		name string
		c    cluster.ProcessConfig
		want error // nil: joins
	}{
		{"Same", cluster.ProcessConfig{Holder: "b", SigningKey: "k1", Accepts: []string{"k1"}, Results: "r1"}, nil},
		{"AcceptsMore", cluster.ProcessConfig{Holder: "b", SigningKey: "k1", Accepts: []string{"k1", "k2"}, Results: "r1"}, nil},
		{"ErrTokensRefused", cluster.ProcessConfig{Holder: "b", SigningKey: "k2", Accepts: []string{"k2", "k1"}, Results: "r1"}, cluster.ErrTokensRefused},
		{"ErrTokensNotAccepted", cluster.ProcessConfig{Holder: "b", SigningKey: "k1", Accepts: []string{"k2"}, Results: "r1"}, cluster.ErrTokensNotAccepted},
		{"ErrResultsNotShared", cluster.ProcessConfig{Holder: "b", SigningKey: "k1", Accepts: []string{"k1"}, Results: "r2"}, cluster.ErrResultsNotShared},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openPostgres(t, pgtest.NewDatabase(t))
			if _, err := cluster.Join(context.Background(), db, live, nil); err != nil {
				t.Fatal(err)
			}
			_, err := cluster.Join(context.Background(), db, tc.c, nil)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("join: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestJoinIgnoresDeadAndLeft: 1. a process that left (its Run ended) is
// not checked against; 2. nor is one whose row was not refreshed within
// the live bound (it died without leaving).
func TestJoinIgnoresDeadAndLeft(t *testing.T) {
	db := openPostgres(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	old := cluster.ProcessConfig{Holder: "old", SigningKey: "k1", Accepts: []string{"k1"}, Results: "r1"}
	next := cluster.ProcessConfig{Holder: "new", SigningKey: "k2", Accepts: []string{"k2"}, Results: "r2"}

	p, err := cluster.Join(ctx, db, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Join(ctx, db, next, nil); !errors.Is(err, cluster.ErrTokensRefused) {
		t.Fatalf("join beside a live process: %v, want ErrTokensRefused", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stop()
	p.Run(runCtx) // ends at once, leaving
	n, err := cluster.Join(ctx, db, next, nil)
	if err != nil {
		t.Fatalf("step 1: join after the other left: %v", err)
	}

	n.Run(runCtx)
	if _, err := cluster.Join(ctx, db, old, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE api_processes SET seen_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Join(ctx, db, next, nil); err != nil {
		t.Fatalf("step 2: join beside a process silent for a minute: %v", err)
	}
}
