// Package bundle makes and checks audit bundles: self-contained files that
// settle a dispute about one job or one user's credits without RenderTrust's
// database or code. A bundle holds the exact bytes of every ledger entry
// concerned, the inclusion proof of each against an anchored root, the
// anchors (chain, contract, transaction, block), and a consistency proof
// from each anchored size it uses to the latest anchor at export, which
// shows the log was only appended to since.
//
// # File format
//
// One JSON document, one line of framing around an indented body:
//
//	{"sha256":"<64 hex digits>","body":{
//	  "format": "rendertrust-audit-bundle/1",
//	  "alg": "rfc9162-sha256",
//	  "subject": {"job": "…", "owner": "…"} or {"user": "…"}, with "window" when bounded,
//	  "exported_at": "…", "log_head": 1234,
//	  "latest_anchor": {"tree_size": …, "root": "<hex>", "anchor": {chain_id, contract, tx_hash, block_number, block_hash}},
//	  "entries": [<inclusion proof>, …],        // anchor/proof's public format, by position
//	  "consistency": [<consistency proof>, …],  // one per anchored size below the latest
//	  "unanchored": 0                           // entries left out: no anchor covered them yet
//	}}
//
// sha256 is the SHA-256 of the body's exact bytes, and the framing is exactly
// as written (no other whitespace, a final newline), so changing any single
// byte of the file fails verification. The seal only detects change: anyone
// can recompute it. What makes a bundle trustworthy is that each entry's
// bytes fold into a root that the chain holds, and each of those roots is
// consistent with the latest anchored root — none of which the exporter can
// forge. Each entry and consistency proof is also a document `rendertrust
// verify` and the auditors' Python script check on their own.
//
// A bundle proves that its entries are in the log. It cannot prove that no
// entry was left out, except within a stream: versions carry no gaps, and a
// job bundle without a window starts at the job's first event.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/anchor/proof"
)

// Format names and versions the bundle format. Fields are only ever added.
const Format = "rendertrust-audit-bundle/1"

// FileBytesMax bounds a bundle file: EntriesMax entries of at most 256 KiB,
// base64-encoded, would be far more; real bundles are kilobytes.
const FileBytesMax = 256 << 20

// EntriesMax bounds the entries of one bundle; narrow a larger selection
// with a window.
const EntriesMax = 10000

// Body is a bundle's content, the part the seal covers.
type Body struct {
	Format      string               `json:"format"`
	Alg         string               `json:"alg"`
	Subject     Subject              `json:"subject"`
	ExportedAt  time.Time            `json:"exported_at"`
	LogHead     uint64               `json:"log_head"` // the log's head at export
	Latest      Anchored             `json:"latest_anchor"`
	Entries     []*proof.Inclusion   `json:"entries"`
	Consistency []*proof.Consistency `json:"consistency"`
	// Unanchored counts the selected entries left out because no anchor
	// covered them yet.
	Unanchored int `json:"unanchored"`
}

// Subject says what a bundle is about: a job (its lifecycle and its money
// in its owner's account) or a user's account, within an optional window.
type Subject struct {
	Job    string  `json:"job,omitempty"`
	Owner  string  `json:"owner,omitempty"` // the job's owner
	User   string  `json:"user,omitempty"`
	Window *Window `json:"window,omitempty"`
}

// Window bounds the entries of a bundle by position or by recorded time;
// zero fields are unbounded.
type Window struct {
	FromPosition uint64    `json:"from_position,omitempty"`
	ToPosition   uint64    `json:"to_position,omitempty"`
	FromTime     time.Time `json:"from_time,omitzero"`
	ToTime       time.Time `json:"to_time,omitzero"`
}

// contains reports whether an entry at position, recorded at, is inside w
// (a nil window contains everything).
func (w *Window) contains(position uint64, at time.Time) bool {
	if w == nil {
		return true
	}
	return position >= w.FromPosition && (w.ToPosition == 0 || position <= w.ToPosition) &&
		!at.Before(w.FromTime) && (w.ToTime.IsZero() || !at.After(w.ToTime))
}

// Anchored is an anchored root: the tree size, its root and the anchor.
type Anchored struct {
	TreeSize uint64       `json:"tree_size"`
	Root     proof.Hash   `json:"root"`
	Anchor   proof.Anchor `json:"anchor"`
}

// Encode returns the bundle file of body: the framing, the seal and the
// indented body. It fails only if body cannot be encoded.
func Encode(body *Body) ([]byte, error) {
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return frame(b, seal(b)), nil
}

// frame returns the file bytes of a body and its seal. Its layout is part
// of the format: verification requires the file to be exactly this.
func frame(body []byte, sealHex string) []byte {
	out := make([]byte, 0, len(body)+96)
	out = append(out, `{"sha256":"`...)
	out = append(out, sealHex...)
	out = append(out, `","body":`...)
	out = append(out, body...)
	return append(out, "}\n"...)
}

func seal(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// unframe splits a bundle file into its body's exact bytes and its seal,
// and checks the framing byte for byte. It returns what is wrong, for
// people.
func unframe(file []byte) (body []byte, sealHex string, problem string) {
	var f struct {
		SHA256 *string          `json:"sha256"`
		Body   *json.RawMessage `json:"body"`
	}
	dec := json.NewDecoder(bytes.NewReader(file))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, "", "not a bundle file: " + jsonProblem(err)
	}
	if f.SHA256 == nil || f.Body == nil {
		return nil, "", `not a bundle file: it needs "sha256" and "body"`
	}
	want := frame(*f.Body, *f.SHA256)
	if !bytes.Equal(file, want) {
		return nil, "", fmt.Sprintf("the file's framing was changed at byte offset %d (a bundle is exactly {\"sha256\":…,\"body\":…} and a newline)", firstDiff(file, want))
	}
	return *f.Body, *f.SHA256, ""
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// jsonProblem describes a JSON decoding error with its byte offset.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte offset %d: %v", e.Offset, e)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q at byte offset %d: %v", e.Field, e.Offset, e)
	}
	return err.Error()
}
