package eventstore

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeStored feeds arbitrary stored bytes (with their true leaf hash,
// so decoding is reached) to DecodeStored. It must never panic, refuse only
// with a *CorruptionError, and what it accepts must name the row's stream
// and version; re-encoding the decoded event must decode to the same event.
// (The decoder splits rather than validates — the leaf hash, checked
// first, is what vouches for the bytes — so a non-canonical envelope with a
// matching hash is accepted; the seed corpus keeps one such input.)
func FuzzDecodeStored(f *testing.F) {
	e := EventData{ID: "0192f0c1-0000-7000-8000-000000000001", Type: "job.submitted", SchemaVersion: 1,
		Data: []byte(`{"cost":10,"job_id":"j1"}`), Metadata: Metadata{Actor: "user:u1", CorrelationID: "c1"}}
	f.Add(encodeEnvelope("job-j1", 1, e, time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)), "job-j1", uint64(1))
	f.Add([]byte(`{}`), "s", uint64(0))
	f.Add([]byte(`{"stream":"s","version":1}`), "s", uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, stream string, version uint64) {
		h := LeafHash(b)
		rec, err := DecodeStored(7, stream, version, b, h[:])
		if err != nil {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("error %T %v is not a *CorruptionError", err, err)
			}
			return
		}
		if rec.Stream != stream || rec.Version != version || rec.Position != 7 || rec.LeafHash != h {
			t.Fatalf("decoded %s@%d at %d, row is %s@%d at 7", rec.Stream, rec.Version, rec.Position, stream, version)
		}
		m := rec.Metadata
		if !utf8.ValidString(rec.ID + rec.Type + m.Actor + m.CausationID + m.CorrelationID + m.IdempotencyKey) {
			return // appends refuse such names (validName); the decoder need not round-trip them
		}
		again := encodeEnvelope(rec.Stream, rec.Version, EventData{ID: rec.ID, Type: rec.Type, SchemaVersion: rec.SchemaVersion,
			Data: rec.Data, Metadata: rec.Metadata}, rec.RecordedAt)
		h2 := LeafHash(again)
		rec2, err := DecodeStored(7, stream, version, again, h2[:])
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if rec2.ID != rec.ID || rec2.Type != rec.Type || !bytes.Equal(rec2.Data, rec.Data) || rec2.Metadata != rec.Metadata ||
			rec2.SchemaVersion != rec.SchemaVersion || !rec2.RecordedAt.Equal(rec.RecordedAt) {
			t.Fatalf("re-encoding changed the event:\n stored %q\nencoded %q", b, again)
		}
		if _, err := DecodeStored(7, stream, version, b, make([]byte, 32)); err == nil {
			t.Fatal("a wrong stored hash was accepted")
		}
	})
}
