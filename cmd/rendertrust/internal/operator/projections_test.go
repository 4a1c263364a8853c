package operator

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/projections"
)

// TestWriteProjectionStatus prints one projection in each state and checks
// the state each line shows.
func TestWriteProjectionStatus(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := []projections.Status{
		{Name: "jobs"},
		{Name: "nodes", Built: true, Stale: true},
		{Name: "usage", Built: true, Error: "disk full\x1b[2J"},
		{Name: "balances", Built: true, Position: 5, Head: 9, LagEvents: 4, LagSeconds: 1.5, UpdatedAt: at},
		{Name: "transactions", Built: true, Position: 9, Head: 9, UpdatedAt: at},
	}
	want := map[string]string{"jobs": "not built", "nodes": "stale: rebuild needed", "usage": "failing: disk full [2J",
		"balances": "catching up", "transactions": "ok"}
	var b bytes.Buffer
	if err := writeProjectionStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(st)+1 || !strings.HasPrefix(lines[0], "PROJECTION") {
		t.Fatalf("table:\n%s\nwant a header and %d lines", b.String(), len(st))
	}
	for _, line := range lines[1:] {
		name := strings.Fields(line)[0]
		if !strings.HasSuffix(strings.TrimRight(line, " "), strings.TrimRight(want[name], " ")) {
			t.Errorf("line %q: want state %q", line, want[name])
		}
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("the table passes a terminal escape through:\n%q", b.String())
	}
	if !strings.Contains(b.String(), "1.5s") || !strings.Contains(b.String(), at.Format(time.RFC3339)) {
		t.Errorf("the table lacks the lag or the update time:\n%s", b.String())
	}
}

// TestBar draws a bar whose total grows and checks its description, unit
// and rate.
func TestBar(t *testing.T) {
	var b bytes.Buffer
	pb := newBar(&b, "rebuild balances", "events")
	pb.set(0, 10)
	pb.set(12, 10)
	pb.finish()
	for _, w := range []string{"rebuild balances", "events/s", "12/12"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("bar output %q lacks %q", b.String(), w)
		}
	}
	var none *bar
	none.set(1, 2) // a nil bar draws nothing
	none.finish()
	if newBar(nil, "x", "events") != nil {
		t.Error("newBar(nil) is not nil")
	}
}
