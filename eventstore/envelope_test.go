package eventstore

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

// TestEnvelopeIsCanonical: for random fields the hand-written envelope
// encoder produces exactly what an RFC 8785 canonicalizer makes of it.
func TestEnvelopeIsCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09 \"\\/\n\t\x01\x1f\u00e9\u2028\u2029😀<>&")
	text := func() string {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 2000 {
		data, _ := json.Marshal(map[string]any{text(): text(), "n": r.IntN(1 << 40), "f": r.Float64()})
		canon, err := CanonicalData(data)
		if err != nil {
			t.Fatal(err)
		}
		e := EventData{ID: text() + "x", Type: text() + "t", SchemaVersion: 1 + r.IntN(9), Data: canon,
			Metadata: Metadata{Actor: text(), CorrelationID: text(), CausationID: text(), IdempotencyKey: text()}}
		version := uint64(r.Int64N(1 << 53)) // JSON numbers are exact up to 2^53
		got := encodeEnvelope(text()+"s", version, e, time.Unix(r.Int64N(1<<33), r.Int64N(1e9)))
		want, err := jcs.Transform(got)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d: envelope not canonical (%v)\n got %s\nwant %s", i, err, got, want)
		}
	}
}

func BenchmarkCanonicalData(b *testing.B) {
	data, _ := json.Marshal(map[string]any{"job_id": "0192f0c1-0000-7000-8000-000000000000", "owner": "0192f0c1-0000-7000-8000-00000000abcd",
		"type": "render", "priority": "normal", "gpu": true, "cost": 10, "payload": "s3://bucket/scenes/" + strings.Repeat("x", 60) + ".blend"})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := CanonicalData(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStored(b *testing.B) {
	data, _ := CanonicalData([]byte(`{"job_id":"0192f0c1-0000-7000-8000-000000000000","owner":"0192f0c1-0000-7000-8000-00000000abcd","type":"render","priority":"normal","gpu":true,"cost":10,"payload":"s3://bucket/scenes/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.blend"}`))
	e := EventData{ID: "0192f0c1-0000-7000-8000-000000000001", Type: "job.submitted", SchemaVersion: 1, Data: data,
		Metadata: Metadata{Actor: "user:0192f0c1-0000-7000-8000-00000000abcd", CorrelationID: "0192f0c1-0000-7000-8000-000000000002"}}
	raw := encodeEnvelope("job-0192f0c1-0000-7000-8000-000000000000", 1, e, time.Now())
	h := LeafHash(raw)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeStored(1, "job-0192f0c1-0000-7000-8000-000000000000", 1, raw, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEnvelopeRoundTrip: decoding what encodeEnvelope wrote gives back every
// field, for random fields including escapes, and any truncation fails.
func TestEnvelopeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("aZ09 \"\\/\n\t\x01\x1f\u00e9\u2028😀<>&,:{}")
	text := func(min int) string {
		var b strings.Builder
		for range min + r.IntN(10) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 3000 {
		data, _ := CanonicalData([]byte(`{"a":1,"id":"x","nested":{"b":0,"id":1},"s":"\",\"id\":"}`))
		var md Metadata
		for _, f := range []*string{&md.Actor, &md.CausationID, &md.CorrelationID, &md.IdempotencyKey} {
			if r.IntN(2) == 0 {
				*f = text(1)
			}
		}
		e := EventData{ID: text(1), Type: text(1), SchemaVersion: 1 + r.IntN(9), Data: data, Metadata: md}
		stream, version, at := text(1), uint64(r.Int64N(1<<53)), time.UnixMicro(r.Int64N(1<<50)).UTC()
		b := encodeEnvelope(stream, version, e, at)
		got, err := decodeEnvelope(b)
		if err != nil || got.ID != e.ID || got.Type != e.Type || got.Stream != stream || got.Version != version ||
			got.SchemaVersion != e.SchemaVersion || got.Metadata != md || string(got.Data) != string(data) || got.RecordedAt != at.Format(RecordedAtLayout) {
			t.Fatalf("case %d: decoded %+v, %v\nfrom %s", i, got, err, b)
		}
		if _, err := decodeEnvelope(b[:r.IntN(len(b))]); err == nil {
			t.Fatalf("case %d: a truncated envelope decoded", i)
		}
	}
}
