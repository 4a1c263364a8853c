package eventstore

import "fmt"

// ExpectedVersion is an append's precondition on its stream's version, with
// EventStoreDB's four kinds: Any, NoStream, StreamExists and Exact(n).
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectInvalid expectKind = iota // the zero value: refused, so a forgotten precondition is never "any"
	expectAny
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's version.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only to a stream that has no events.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only to a stream that has events.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact appends only when the stream's version is n (its n-th event is the
// last). Exact(0) is the same as NoStream.
func Exact(n uint64) ExpectedVersion {
	if n == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: n}
}

// Allows reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Allows(current uint64) bool {
	switch e.kind {
	case expectAny:
		return true
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	case expectExact:
		return current == e.version
	}
	return false
}

// Valid reports whether e is one of the four kinds (the zero value is not).
func (e ExpectedVersion) Valid() bool {
	return e.kind >= expectAny && e.kind <= expectExact
}

// IsExact reports whether e is Exact(n) for some n, and n.
func (e ExpectedVersion) IsExact() (uint64, bool) {
	return e.version, e.kind == expectExact
}

// Kind names e's kind: "any", "no_stream", "stream_exists", "exact" or "invalid".
func (e ExpectedVersion) Kind() string {
	switch e.kind {
	case expectAny:
		return "any"
	case expectNoStream:
		return "no_stream"
	case expectStreamExists:
		return "stream_exists"
	case expectExact:
		return "exact"
	}
	return "invalid"
}

// String renders e for messages, e.g. "exact 4".
func (e ExpectedVersion) String() string {
	if e.kind == expectExact {
		return fmt.Sprintf("exact %d", e.version)
	}
	return e.Kind()
}
