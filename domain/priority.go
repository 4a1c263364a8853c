package domain

import (
	"fmt"
	"strings"
)

// Priority orders queued jobs for dispatch: high before normal before low.
type Priority string

// The priorities. Their strings are part of the event log and never change.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"

	// PriorityDefault is the priority of a job submitted without one.
	PriorityDefault = PriorityNormal
)

// ParsePriority returns the priority named by s, ignoring case and
// surrounding space; "" gives PriorityDefault. Anything else returns
// ErrInvalidPriority.
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToLower(strings.TrimSpace(s)))
	if p == "" {
		return PriorityDefault, nil
	}
	if !p.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidPriority, truncate(s, 40))
	}
	return p, nil
}

// Valid reports whether p is low, normal or high.
func (p Priority) Valid() bool {
	return p == PriorityLow || p == PriorityNormal || p == PriorityHigh
}

// Rank returns p's dispatch rank: 0 low, 1 normal, 2 high (higher goes
// first), and -1 for an invalid priority.
func (p Priority) Rank() int {
	switch p {
	case PriorityLow:
		return 0
	case PriorityNormal:
		return 1
	case PriorityHigh:
		return 2
	}
	return -1
}
