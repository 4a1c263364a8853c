package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a job's payload.
const (
	// PayloadURIBytesMax bounds a payload URI.
	PayloadURIBytesMax = 2048
	// PayloadInlineBytesMax bounds inline JSON, before compaction.
	PayloadInlineBytesMax = 64 << 10
)

// payloadSchemes are the URI schemes a payload may use.
var payloadSchemes = map[string]bool{"s3": true, "ipfs": true, "https": true}

// Payload is a job's input: either a URI (s3://, ipfs:// or https://) or
// inline JSON, never both. Inline is kept as compact JSON text in a string
// so that any re-encoding of the event (for instance canonical JSON in the
// log) preserves it byte for byte. Build one with PayloadURI or PayloadInline.
type Payload struct {
	URI    string `json:"uri,omitempty"`
	Inline string `json:"inline,omitempty"`
}

// PayloadURI returns a payload that references s. It returns
// ErrPayloadTooLarge if s is longer than PayloadURIBytesMax and
// ErrInvalidPayload unless s is an absolute s3://, ipfs:// or https:// URI
// with a host (bucket, CID or server), no credentials and no white space.
func PayloadURI(s string) (Payload, error) {
	if len(s) > PayloadURIBytesMax {
		return Payload{}, fmt.Errorf("%w: uri is %d bytes, max %d",
			ErrPayloadTooLarge, len(s), PayloadURIBytesMax)
	}
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return Payload{}, fmt.Errorf("%w: uri is empty, not utf-8 or has white space or control characters",
			ErrInvalidPayload)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	switch {
	case !payloadSchemes[u.Scheme]:
		return Payload{}, fmt.Errorf("%w: scheme %q, want s3, ipfs or https",
			ErrInvalidPayload, truncate(u.Scheme, 20))
	case u.Opaque != "" || u.Host == "":
		return Payload{}, fmt.Errorf("%w: uri has no host", ErrInvalidPayload)
	case u.User != nil:
		return Payload{}, fmt.Errorf("%w: uri must not carry credentials", ErrInvalidPayload)
	}
	return Payload{URI: s}, nil
}

// PayloadInline returns a payload that carries raw, compacted. It returns
// ErrPayloadTooLarge if raw is longer than PayloadInlineBytesMax and
// ErrInvalidPayload if raw is not a single valid JSON value.
func PayloadInline(raw []byte) (Payload, error) {
	if len(raw) > PayloadInlineBytesMax {
		return Payload{}, fmt.Errorf("%w: inline json is %d bytes, max %d",
			ErrPayloadTooLarge, len(raw), PayloadInlineBytesMax)
	}
	// Invalid UTF-8 is valid to encoding/json but would be rewritten on
	// re-encoding, so a decoded event would differ from the decided one.
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return Payload{}, fmt.Errorf("%w: inline payload is not valid json", ErrInvalidPayload)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return Payload{Inline: buf.String()}, nil
}

// IsURI reports whether the payload is a URI reference.
func (p Payload) IsURI() bool { return p.URI != "" }

// Validate returns nil if p is exactly one valid URI or one valid inline JSON
// value; otherwise ErrInvalidPayload or ErrPayloadTooLarge.
func (p Payload) Validate() error {
	_, err := p.normalize()
	return err
}

// normalize validates p and returns it with inline JSON compacted.
func (p Payload) normalize() (Payload, error) {
	switch {
	case p.URI != "" && p.Inline != "":
		return Payload{}, fmt.Errorf("%w: both uri and inline json", ErrInvalidPayload)
	case p.URI != "":
		return PayloadURI(p.URI)
	case p.Inline != "":
		return PayloadInline([]byte(p.Inline))
	}
	return Payload{}, fmt.Errorf("%w: empty payload", ErrInvalidPayload)
}
