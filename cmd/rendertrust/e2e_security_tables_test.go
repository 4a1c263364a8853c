package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
)

// tableCounts are the row counts of every table of every SQLite database
// in a data dir, keyed "file:table".
type tableCounts struct {
	s      *server
	counts map[string]int64
}

// settledTables waits until the installation's workers have followed the
// whole log (the projections, the reactor, the audit log: their rows stop
// changing) and returns its row counts.
func settledTables(t *testing.T, s *server) *tableCounts {
	t.Helper()
	ctx := context.Background()
	head, err := s.m.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.m.Runner.WaitFor(ctx, head); err != nil {
		t.Fatalf("setup: projections: %v", err)
	}
	if err := s.m.Reactor.WaitFor(ctx, head); err != nil {
		t.Fatalf("setup: reactor: %v", err)
	}
	tc := &tableCounts{s: s}
	var last map[string]int64
	eventually(t, "setup: the audit log follows the log", func() string { // it has no position to wait for
		now := countRows(t, s)
		if !maps.Equal(now, last) {
			last = now
			return fmt.Sprintf("rows still changing: %v", now)
		}
		return ""
	})
	tc.counts = last
	t.Logf("%d tables watched: %v", len(last), slices.Sorted(maps.Keys(last)))
	return tc
}

// unchanged fails t if any table's row count changed.
func (tc *tableCounts) unchanged(t *testing.T) {
	t.Helper()
	now := countRows(t, tc.s)
	for _, k := range slices.Sorted(maps.Keys(tc.counts)) {
		if now[k] != tc.counts[k] {
			t.Errorf("table %s: %d rows, %d before: a refused request wrote", k, now[k], tc.counts[k])
		}
	}
	for k := range now {
		if _, ok := tc.counts[k]; !ok {
			t.Errorf("table %s appeared", k)
		}
	}
}

// countRows counts the rows of every table the catalog (sqlite_master) of
// every database file in the data dir lists.
func countRows(t *testing.T, s *server) map[string]int64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.m.Config.DataDir, "*.db"))
	if len(files) == 0 {
		t.Fatal("no database in the data dir")
	}
	out := map[string]int64{}
	for _, f := range files {
		db, err := sql.Open("sqlite", "file:"+f+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatalf("%s: catalog: %v", f, err)
		}
		for rows.Next() {
			var name string
			rows.Scan(&name)
			tables = append(tables, name)
		}
		rows.Close()
		for _, table := range tables {
			var n int64
			if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
				t.Fatalf("%s: count %s: %v", f, table, err)
			}
			out[filepath.Base(f)+":"+table] = n
		}
		db.Close()
	}
	return out
}

// setupStatus fails t when a setup call did not answer want.
func setupStatus(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("setup: %s answered %d, want %d", what, got, want)
	}
}
