// Package blobstore keeps job results: a directory under the data dir by
// default, with download links signed by HMAC-SHA256 that expire, so a link
// works without a token until then and not at all once any part of it
// changes.
package blobstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

var (
	// ErrTooLarge is returned by Put when the content exceeds its limit.
	ErrTooLarge = errors.New("blob exceeds its size limit")
	// ErrNotFound is returned by Open for a blob never stored.
	ErrNotFound = errors.New("blob not found")
	// ErrBadLink is returned by Check for a link that is altered or expired.
	ErrBadLink = errors.New("download link invalid or expired")
	// ErrHashMismatch is returned by Put when the content's SHA-256 is not
	// the one the uploader claimed.
	ErrHashMismatch = errors.New("content does not match its SHA-256")
)

// Local stores blobs as files in one directory.
type Local struct {
	dir string
	key []byte
}

// OpenLocal opens (creating) the blob directory dir; key signs download links.
func OpenLocal(dir string, key []byte) (*Local, error) {
	if len(key) < 16 {
		return nil, errors.New("blobstore: signing key shorter than 16 bytes")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return &Local{dir: dir, key: key}, nil
}

// Put streams r into the blob name, at most maxBytes, and returns its
// SHA-256 (hex) and size. When wantSHA256 is set the content must hash to
// it (ErrHashMismatch). The blob appears whole or not at all.
func (l *Local) Put(name string, r io.Reader, maxBytes int64, wantSHA256 string) (string, int64, error) {
	if !validName(name) {
		return "", 0, fmt.Errorf("blobstore: bad name %q", name)
	}
	tmp, err := os.CreateTemp(l.dir, ".upload-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, maxBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if n > maxBytes {
		return "", 0, ErrTooLarge
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA256 != "" && sum != wantSHA256 {
		return "", 0, ErrHashMismatch
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), l.path(name)); err != nil {
		return "", 0, err
	}
	return sum, n, nil
}

// Delete removes the blob name; a missing blob is not an error.
func (l *Local) Delete(_ context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("blobstore: bad name %q", name)
	}
	if err := os.Remove(l.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Open returns the blob's content and size, or ErrNotFound.
func (l *Local) Open(name string) (io.ReadSeekCloser, int64, error) {
	if !validName(name) {
		return nil, 0, ErrNotFound
	}
	f, err := os.Open(l.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Link returns the query that, appended to the download path of name,
// authorizes its download until expires.
func (l *Local) Link(name string, expires time.Time) url.Values {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return url.Values{"expires": {exp}, "signature": {l.sign(name, exp)}}
}

// Check verifies a download link's expiry and signature at now.
func (l *Local) Check(name, expires, signature string, now time.Time) error {
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || now.Unix() > exp {
		return ErrBadLink
	}
	want := l.sign(name, expires)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadLink
	}
	return nil
}

func (l *Local) sign(name, expires string) string {
	m := hmac.New(sha256.New, l.key)
	fmt.Fprintf(m, "%s\n%s", name, expires)
	return hex.EncodeToString(m.Sum(nil))
}

func (l *Local) path(name string) string { return filepath.Join(l.dir, name) }

// validName accepts the ids blobs are named by: 1..128 of [A-Za-z0-9._-], not starting with '.'.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// URL returns the download link of name, served by this API under base
// ("https://api.example.com"), valid until expires.
func (l *Local) URL(_ context.Context, name, base string, expires time.Time) (string, error) {
	return base + "/api/v1/results/" + url.PathEscape(name) + "?" + l.Link(name, expires).Encode(), nil
}
