package blobstore

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLocalLinks: a stored result downloads with its link until the link
// expires, and never once any part of the link is altered.
func TestLocalLinks(t *testing.T) {
	l, err := OpenLocal(t.TempDir(), []byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	const sum = "8ab0ba45cb84bde0e6a7d5e1063f5d2d2b5a1bd6c3b0c4a7e32a0e0e7c1eab48"
	if _, _, err := l.Put("job-1.x", strings.NewReader("result"), 100, sum); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("wrong claimed hash: %v, want ErrHashMismatch", err)
	}
	if _, _, err := l.Put("job-1.x", strings.NewReader(strings.Repeat("x", 101)), 100, ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v, want ErrTooLarge", err)
	}
	if _, _, err := l.Put("job-1.x", strings.NewReader("result"), 100, ""); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	q := l.Link("job-1.x", now.Add(time.Hour))
	exp, sig := q.Get("expires"), q.Get("signature")
	cases := []struct {
		name, blob, expires, sig string
		at                       time.Time
		ok                       bool
	}{
		{"Valid", "job-1.x", exp, sig, now, true},
		{"ValidAtTheLastSecond", "job-1.x", exp, sig, now.Add(time.Hour), true},
		{"Expired", "job-1.x", exp, sig, now.Add(time.Hour + time.Second), false},
		{"OtherBlob", "job-2.x", exp, sig, now, false},
		{"LaterExpiry", "job-1.x", exp + "0", sig, now, false},
		{"AlteredSignature", "job-1.x", exp, "0" + sig[1:], now, false},
		{"NoSignature", "job-1.x", exp, "", now, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Check(tc.blob, tc.expires, tc.sig, tc.at)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	f, _, err := l.Open("job-1.x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); !bytes.Equal(b, []byte("result")) {
		t.Fatalf("stored %q", b)
	}
}

// TestLocalDelete: a deleted blob is gone; deleting a missing one is not an
// error; a bad name is refused.
func TestLocalDelete(t *testing.T) {
	l, err := OpenLocal(t.TempDir(), []byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Put("job-1.x", strings.NewReader("result"), 100, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(t.Context(), "job-1.x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Open("job-1.x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after delete: %v, want ErrNotFound", err)
	}
	if err := l.Delete(t.Context(), "job-1.x"); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	if err := l.Delete(t.Context(), "../escape"); err == nil {
		t.Fatal("a bad name was accepted")
	}
}
