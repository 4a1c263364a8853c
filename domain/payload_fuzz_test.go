package domain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzPayloadURI: a payload reference is refused with ErrInvalidPayload or
// ErrPayloadTooLarge, or accepted unchanged, within the size limit, with an
// allowed scheme and no white space.
func FuzzPayloadURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/scene.blend", "ipfs://bafy/x", "https://host/a?b=c#d", "https://user:pw@host/",
		"s3:opaque", "ftp://h/x", "", "s3://b/k k", "https://[::1]:80/", "S3://B/K", "https://%zz/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := PayloadURI(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) && !errors.Is(err, ErrPayloadTooLarge) {
				t.Fatalf("%q: error %v is neither ErrInvalidPayload nor ErrPayloadTooLarge", s, err)
			}
			return
		}
		if p.URI != s || len(s) > PayloadURIBytesMax || strings.ContainsAny(s, " \t\r\n") || p.Inline != "" {
			t.Fatalf("%q accepted as %+v", s, p)
		}
		if !strings.HasPrefix(strings.ToLower(s), "s3://") && !strings.HasPrefix(strings.ToLower(s), "ipfs://") && !strings.HasPrefix(strings.ToLower(s), "https://") {
			t.Fatalf("%q accepted with another scheme", s)
		}
	})
}

// FuzzPayloadInline: an inline payload is refused, or accepted as valid,
// compact JSON that survives an encode/decode round trip byte for byte.
func FuzzPayloadInline(f *testing.F) {
	for _, s := range []string{`{"a":1}`, ` [1, 2 ,3] `, `"x"`, `{"a":`, `nul`, "\"\xff\"", `1e999`, `{"a":1}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := PayloadInline(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) && !errors.Is(err, ErrPayloadTooLarge) {
				t.Fatalf("%q: error %v is neither ErrInvalidPayload nor ErrPayloadTooLarge", raw, err)
			}
			return
		}
		if !json.Valid([]byte(p.Inline)) || len(p.Inline) > len(raw) {
			t.Fatalf("%q accepted as %q", raw, p.Inline)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Payload
		if err := json.Unmarshal(b, &back); err != nil || back != p {
			t.Fatalf("%q: round trip gave %+v, %v", raw, back, err)
		}
	})
}
