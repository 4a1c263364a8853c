package eventstore

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// NewEventID returns a fresh UUIDv7: unique, and ordered by creation time.
func NewEventID() string { return uuid.Must(uuid.NewV7()).String() }

// DeriveEventID returns a UUIDv8 computed from namespace and parts, so a
// command or reactor that runs again produces the same ids and its re-append
// is an idempotent no-op. Different inputs give different ids.
func DeriveEventID(namespace string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(namespace))
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p) // length-prefixed: ("a","bc") ≠ ("ab","c")
	}
	var id uuid.UUID
	copy(id[:], h.Sum(nil))
	id[6] = (id[6] & 0x0f) | 0x80 // version 8: custom
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 9562 variant
	return strings.ToLower(id.String())
}
