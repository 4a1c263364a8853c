package projections

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeCursor: any client-supplied cursor decodes to exactly n parts
// or fails with ErrInvalidCursor, and a cursor made by encodeCursor
// decodes back to its parts.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor("jobs", "2026-11-26T12:00:00Z", "j1"), "a", "b")
	f.Add("", "x", "")
	f.Add("MXxqb2JzfA", "p", "q")
	f.Add(strings.Repeat("A", 800), "a", "b")
	f.Fuzz(func(t *testing.T, cursor, a, b string) {
		parts, err := decodeCursor(cursor, "jobs", 2)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("%q: error %v is not ErrInvalidCursor", cursor, err)
			}
		} else if len(parts) != 2 {
			t.Fatalf("%q decoded to %d parts", cursor, len(parts))
		}
		if strings.Contains(a, "|") || strings.Contains(b, "|") || len(a)+len(b) > 400 {
			return
		}
		got, err := decodeCursor(encodeCursor("jobs", a, b), "jobs", 2)
		if err != nil || got[0] != a || got[1] != b {
			t.Fatalf("round trip of %q, %q gave %q, %v", a, b, got, err)
		}
	})
}
