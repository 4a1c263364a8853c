package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

func openFiltered(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSubscribeTypesScansInWindows: a kept event behind more events of
// other types than one read looks at is still found, each read moving the
// position on by the scan window and no further.
func TestSubscribeTypesScansInWindows(t *testing.T) {
	s := openFiltered(t)
	s.scanMax = 7
	for i := range 30 {
		storetest.MustAppend(t, s, "other", eventstore.Any, storetest.Event("other", i))
	}
	kept := storetest.MustAppend(t, s, "kept", eventstore.Any, storetest.Event("kept", 0)).LastPosition
	events, through, err := s.readTypes(context.Background(), 1, 100, []string{"kept"})
	if err != nil || len(events) != 0 || through != 7 {
		t.Fatalf("first read: %d events, through %d, %v; want none, through 7", len(events), through, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := s.SubscribeTypes(ctx, 1, "kept").Next()
	if err != nil || len(batch) != 1 || batch[0].Position != kept {
		t.Fatalf("subscription: %d events (%v), want the one at %d", len(batch), err, kept)
	}
}

// TestSubscribeTypesRefusesAMislabelledRow: a row whose type column says
// a kept type while its stored bytes say another is corruption, not an
// event to deliver.
func TestSubscribeTypesRefusesAMislabelledRow(t *testing.T) {
	s := openFiltered(t)
	pos := storetest.MustAppend(t, s, "other", eventstore.Any, storetest.Event("other", 0)).LastPosition
	if _, err := s.pool.Exec(context.Background(), `UPDATE events SET type = 'kept' WHERE position = $1`, int64(pos)); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.readTypes(context.Background(), 1, 100, []string{"kept"})
	var corrupt *eventstore.CorruptionError
	if !errors.As(err, &corrupt) || corrupt.Position != pos {
		t.Fatalf("read a mislabelled row: %v, want a CorruptionError at %d", err, pos)
	}
}
