package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestPayloadURI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"s3", "s3://bucket/scene.blend", nil},
		{"ipfs", "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", nil},
		{"https", "https://example.com/a/b?c=d", nil},
		{"upper-case scheme", "S3://bucket/key", nil},
		{"empty", "", ErrInvalidPayload},
		{"http", "http://example.com/x", ErrInvalidPayload},
		{"file", "file:///etc/passwd", ErrInvalidPayload},
		{"relative", "bucket/key", ErrInvalidPayload},
		{"opaque", "s3:bucket/key", ErrInvalidPayload},
		{"no host", "https:///path", ErrInvalidPayload},
		{"credentials", "https://user:pw@example.com/x", ErrInvalidPayload},
		{"space", "s3://bucket/my scene", ErrInvalidPayload},
		{"control", "s3://bucket/\x01", ErrInvalidPayload},
		{"bad utf-8", "s3://bucket/\xff", ErrInvalidPayload},
		{"ErrPayloadTooLarge", "s3://b/" + strings.Repeat("k", PayloadURIBytesMax), ErrPayloadTooLarge},
		{"at limit", "s3://b/" + strings.Repeat("k", PayloadURIBytesMax-7), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PayloadURI(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PayloadURI(%.40q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err == nil && (p.URI != tt.in || !p.IsURI() || p.Validate() != nil) {
				t.Errorf("PayloadURI(%.40q) = %+v", tt.in, p)
			}
		})
	}
}

func TestPayloadInline(t *testing.T) {
	big := `"` + strings.Repeat("x", PayloadInlineBytesMax) + `"`
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"object", `{ "scene": "a", "frames": [1, 2] }`, `{"scene":"a","frames":[1,2]}`, nil},
		{"array", `[1,2]`, `[1,2]`, nil},
		{"scalar", ` 42 `, `42`, nil},
		{"html kept", `{"a":"<b>"}`, `{"a":"<b>"}`, nil},
		{"empty", ``, "", ErrInvalidPayload},
		{"broken", `{"a":`, "", ErrInvalidPayload},
		{"two values", `1 2`, "", ErrInvalidPayload},
		{"bad utf-8", "\"\xff\"", "", ErrInvalidPayload},
		{"ErrPayloadTooLarge", big, "", ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PayloadInline([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if p.Inline != tt.want || p.IsURI() {
				t.Errorf("Inline = %q, want %q", p.Inline, tt.want)
			}
		})
	}
}

func TestPayloadValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Payload
		wantErr error
	}{
		{"uri", Payload{URI: "s3://b/k"}, nil},
		{"inline not compact", Payload{Inline: `{ "a" : 1 }`}, nil},
		{"both", Payload{URI: "s3://b/k", Inline: `1`}, ErrInvalidPayload},
		{"neither", Payload{}, ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
