package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// The envelope is the frozen encoding of an event: the bytes that are stored
// verbatim, hashed into the Merkle log and handed to auditors. Its keys are in
// RFC 8785 (JCS) order and its values in JCS form, so anyone can re-derive the
// bytes from the fields. Changing a key, the key order, the time format or the
// string escaping would break every proof ever issued: never change them; add
// a new schema version instead.
type envelope struct {
	Data          json.RawMessage `json:"data"`
	ID            string          `json:"id"`
	Metadata      Metadata        `json:"metadata"`
	RecordedAt    string          `json:"recorded_at"`
	SchemaVersion int             `json:"schema_version"`
	Stream        string          `json:"stream"`
	Type          string          `json:"type"`
	Version       uint64          `json:"version"`
}

// RecordedAtLayout is the envelope's recorded_at format: UTC, always six
// fractional digits. It is part of the hashed bytes and may never change.
const RecordedAtLayout = "2006-01-02T15:04:05.000000Z"

// CanonicalData returns data in RFC 8785 form (sorted keys, no insignificant
// whitespace, numbers as ECMAScript doubles), or an *InvalidError when it is
// not JSON. Integers beyond ±2^53 lose precision, as in every JCS encoder.
func CanonicalData(data json.RawMessage) (json.RawMessage, error) {
	if len(data) == 0 {
		return nil, &InvalidError{Field: "data", Reason: "empty"}
	}
	out, err := jcs.Transform(data)
	if err != nil {
		return nil, &InvalidError{Field: "data", Reason: "not JSON: " + err.Error()}
	}
	return out, nil
}

// encodeEnvelope builds the canonical bytes of one event. data must already
// be canonical (CanonicalData).
func encodeEnvelope(stream string, version uint64, e EventData, at time.Time) []byte {
	b := make([]byte, 0, 160+len(e.Data)+len(stream)+len(e.Type))
	b = append(b, `{"data":`...)
	b = append(b, e.Data...)
	b = append(b, `,"id":`...)
	b = appendJCSString(b, e.ID)
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, e.Metadata)
	b = append(b, `,"recorded_at":"`...)
	b = at.UTC().AppendFormat(b, RecordedAtLayout)
	b = append(b, `","schema_version":`...)
	b = strconv.AppendInt(b, int64(e.SchemaVersion), 10)
	b = append(b, `,"stream":`...)
	b = appendJCSString(b, stream)
	b = append(b, `,"type":`...)
	b = appendJCSString(b, e.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, version, 10)
	return append(b, '}')
}

func appendMetadata(b []byte, m Metadata) []byte {
	b = append(b, '{')
	sep := false
	field := func(name, v string) {
		if v == "" {
			return
		}
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = appendJCSString(b, name)
		b = append(b, ':')
		b = appendJCSString(b, v)
	}
	field("actor", m.Actor) // keys in JCS (UTF-16 code unit) order
	field("causation_id", m.CausationID)
	field("correlation_id", m.CorrelationID)
	field("idempotency_key", m.IdempotencyKey)
	return append(b, '}')
}

// appendJCSString appends s as a JSON string the way RFC 8785 §3.2.2.2 does:
// only '"', '\\' and control characters are escaped; s must be valid UTF-8.
func appendJCSString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// LeafHash returns the RFC 9162 leaf hash of an entry: SHA-256(0x00 ‖ b).
func LeafHash(b []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// DecodeStored turns a stored row back into a RecordedEvent, checking the
// stored hash against the bytes and the row's columns against the envelope.
// Any mismatch is a *CorruptionError naming the position.
func DecodeStored(position uint64, stream string, version uint64, b []byte, storedHash []byte) (RecordedEvent, error) {
	corrupt := func(reason string) (RecordedEvent, error) {
		return RecordedEvent{}, &CorruptionError{Position: position, Reason: reason}
	}
	sum := LeafHash(b)
	if len(storedHash) != len(sum) || string(storedHash) != string(sum[:]) {
		return corrupt("leaf hash does not match the stored bytes")
	}
	env, err := decodeEnvelope(b)
	if err != nil {
		return corrupt("stored bytes are not an envelope: " + err.Error())
	}
	if env.Stream != stream || env.Version != version {
		return corrupt(fmt.Sprintf("row says %s@%d, envelope says %s@%d", stream, version, env.Stream, env.Version))
	}
	at, err := time.Parse(RecordedAtLayout, env.RecordedAt)
	if err != nil {
		return corrupt("bad recorded_at: " + err.Error())
	}
	return RecordedEvent{
		ID: env.ID, Stream: env.Stream, Version: env.Version, Position: position,
		Type: env.Type, SchemaVersion: env.SchemaVersion, RecordedAt: at,
		Data: env.Data, Metadata: env.Metadata, Bytes: b, LeafHash: sum,
	}, nil
}

// decodeEnvelope splits canonical envelope bytes. The data value comes
// first and can be large, so it is not parsed: in canonical form it ends
// where the last `,"id":` begins (every later value is a string with its
// quotes escaped, or a number), and only the short tail is decoded, in the
// frozen key order of encodeEnvelope.
func decodeEnvelope(b []byte) (envelope, error) {
	const head = `{"data":`
	var env envelope
	i := bytes.LastIndex(b, []byte(`,"id":`))
	if !bytes.HasPrefix(b, []byte(head)) || i < len(head) {
		return env, errors.New("not a canonical envelope")
	}
	env.Data = b[len(head):i:i]
	p := tailParser{b: b, i: i}
	p.lit(`,"id":`)
	env.ID = p.str()
	p.lit(`,"metadata":{`)
	env.Metadata = p.metadata()
	p.lit(`,"recorded_at":`)
	env.RecordedAt = p.str()
	p.lit(`,"schema_version":`)
	env.SchemaVersion = int(p.uint())
	p.lit(`,"stream":`)
	env.Stream = p.str()
	p.lit(`,"type":`)
	env.Type = p.str()
	p.lit(`,"version":`)
	env.Version = p.uint()
	p.lit(`}`)
	if p.err == nil && p.i != len(b) {
		p.err = errors.New("trailing bytes")
	}
	return env, p.err
}

// tailParser reads the envelope's tail; the first error sticks.
type tailParser struct {
	b   []byte
	i   int
	err error
}

func (p *tailParser) fail(what string) {
	if p.err == nil {
		p.err = fmt.Errorf("envelope: %s at byte %d", what, p.i)
	}
}

func (p *tailParser) lit(s string) {
	if p.err != nil || !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.fail("expected " + s)
		return
	}
	p.i += len(s)
}

// str reads a JSON string as encodeEnvelope writes it.
func (p *tailParser) str() string {
	if p.err != nil || p.i >= len(p.b) || p.b[p.i] != '"' {
		p.fail("expected a string")
		return ""
	}
	start, escaped := p.i, false
	for p.i++; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '\\':
			escaped = true
			p.i++
		case '"':
			p.i++
			raw := p.b[start:p.i]
			if !escaped {
				return string(raw[1 : len(raw)-1])
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				p.fail("bad string")
			}
			return out
		}
	}
	p.fail("unterminated string")
	return ""
}

func (p *tailParser) uint() uint64 {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.ParseUint(string(p.b[start:p.i]), 10, 64)
	if err != nil && p.err == nil {
		p.fail("expected a number")
	}
	return n
}

// metadata reads the metadata object's members, after its '{': string
// values under known keys, in JCS order, each at most once.
func (p *tailParser) metadata() Metadata {
	var m Metadata
	fields := map[string]*string{"actor": &m.Actor, "causation_id": &m.CausationID, "correlation_id": &m.CorrelationID, "idempotency_key": &m.IdempotencyKey}
	last := ""
	for first := true; p.err == nil && p.i < len(p.b) && p.b[p.i] != '}'; first = false {
		if !first {
			p.lit(",")
		}
		key := p.str()
		p.lit(":")
		dst, ok := fields[key]
		if !ok || key <= last {
			p.fail("unexpected metadata key " + strconv.Quote(key))
			break
		}
		*dst, last = p.str(), key
	}
	p.lit("}")
	return m
}

// validName checks a stream name, event type or id: non-empty, valid UTF-8,
// no control characters, at most max bytes.
func validName(field, s string, max int) error {
	switch {
	case s == "":
		return &InvalidError{Field: field, Reason: "empty"}
	case len(s) > max:
		return &InvalidError{Field: field, Reason: fmt.Sprintf("%d bytes, limit %d", len(s), max)}
	case !utf8.ValidString(s):
		return &InvalidError{Field: field, Reason: "not valid UTF-8"}
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return &InvalidError{Field: field, Reason: fmt.Sprintf("control character %U", r)}
		}
	}
	return nil
}

// CheckPositions fails with a *CorruptionError when events, read from
// position from, do not run from, from+1, … without a gap.
func CheckPositions(from uint64, events []RecordedEvent) error {
	want := max(from, 1)
	for _, e := range events {
		if e.Position != want {
			return &CorruptionError{Position: want, Reason: fmt.Sprintf("missing: the next stored event is at position %d", e.Position)}
		}
		want++
	}
	return nil
}

// CheckVersions fails with a *CorruptionError when a stream's events, read
// from version from, skip a version.
func CheckVersions(from uint64, events []RecordedEvent) error {
	want := max(from, 1)
	for _, e := range events {
		if e.Version != want {
			return &CorruptionError{Position: e.Position, Reason: fmt.Sprintf("stream %s skips from version %d to %d", e.Stream, want, e.Version)}
		}
		want++
	}
	return nil
}

// ClampFrom maps position or version 0 to 1, where every log and stream starts.
func ClampFrom(from uint64) uint64 { return max(from, 1) }

// ClampMax bounds a read's size to 1..ReadEventsMax.
func ClampMax(n int) int { return min(max(n, 1), ReadEventsMax) }

// Rows is a result set of (position, stream, version, bytes, leaf_hash)
// rows, as both SQL drivers return it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanEvents decodes every row with DecodeStored, failing with the first
// *CorruptionError or driver error. The caller closes rows.
func ScanEvents(rows Rows) ([]RecordedEvent, error) {
	var events []RecordedEvent
	for rows.Next() {
		var (
			position, version int64
			stream            string
			b, hash           []byte
		)
		if err := rows.Scan(&position, &stream, &version, &b, &hash); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e, err := DecodeStored(uint64(position), stream, uint64(version), b, hash)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return events, nil
}
