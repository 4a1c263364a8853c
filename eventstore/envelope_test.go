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
