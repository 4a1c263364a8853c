package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// UserID is a user's opaque id (a UUID made by the identity service). No
// personal data ever goes in it.
type UserID string

// JobID is a job's opaque id, chosen by the caller that submits the job.
type JobID string

// NodeID is a compute node's opaque id, chosen by the caller that enrolls it.
type NodeID string

// Limits on ids and free text.
const (
	idBytesMax     = 128  // any id: user, job, node, purchase, grant, refund, session
	reasonBytesMax = 512  // grant, release, refund, cancel and retire reasons
	errorBytesMax  = 2048 // a job failure's error message
	nameBytesMax   = 128  // a node's display name
)

// Stream name prefixes. They are part of the event log and never change.
const (
	accountStreamPrefix = "account-"
	jobStreamPrefix     = "job-"
	nodeStreamPrefix    = "node-"
)

// AccountStream returns the name of a user's account stream, "account-{user}".
func AccountStream(user UserID) string { return accountStreamPrefix + string(user) }

// JobStream returns the name of a job's stream, "job-{id}".
func JobStream(id JobID) string { return jobStreamPrefix + string(id) }

// NodeStream returns the name of a node's stream, "node-{id}".
func NodeStream(id NodeID) string { return nodeStreamPrefix + string(id) }

// ValidID reports whether s is a usable id: 1 to 128 bytes of [A-Za-z0-9._-].
// The alphabet keeps ids safe inside stream names and account refs.
func ValidID(s string) bool {
	if s == "" || len(s) > idBytesMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// checkID returns ErrInvalidID, naming what the id is, unless ValidID(id).
func checkID(what, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %s %q", ErrInvalidID, what, truncate(id, 40))
	}
	return nil
}

// cleanText makes s safe to store in an event: valid UTF-8 (JSON would
// otherwise rewrite it and a decoded event would differ from the decided one),
// without control characters, trimmed, and at most maxBytes long, cut on a
// rune boundary.
func cleanText(s string, maxBytes int) string {
	s = StripControl(strings.ToValidUTF8(s, "\uFFFD"))
	return strings.TrimSpace(truncate(strings.TrimSpace(s), maxBytes))
}

// StripControl returns s with each control character (C0, DEL, C1: NUL,
// which PostgreSQL refuses in text, and the escapes a terminal obeys)
// replaced by a space.
func StripControl(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate cuts s to at most maxBytes without splitting a rune.
func truncate(s string, maxBytes int) string {
	if len(s) <= maxBytes {
		return s
	}
	cut := maxBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// requireReason cleans a reason and returns ErrInvalidReason if it is empty.
func requireReason(reason string) (string, error) {
	r := cleanText(reason, reasonBytesMax)
	if r == "" {
		return "", fmt.Errorf("%w: reason is required", ErrInvalidReason)
	}
	return r, nil
}

// stamp normalizes a decision time as events store it: UTC, microseconds,
// no monotonic reading.
func stamp(now time.Time) time.Time {
	return now.UTC().Truncate(time.Microsecond)
}
