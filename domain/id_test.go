package domain

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"0190f5c4-7b1e-7cc2-9a6e-3f1c2b7d9e10", true},
		{"cs_test_a1B2", true},
		{"credits_100", true},
		{"", false},
		{"a:b", false},
		{"a b", false},
		{"ü", false},
		{strings.Repeat("a", idBytesMax), true},
		{strings.Repeat("a", idBytesMax+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%.20q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	tests := []struct{ got, want string }{
		{AccountStream("u1"), "account-u1"},
		{JobStream("j1"), "job-j1"},
		{NodeStream("n1"), "node-n1"},
		{string(UserAccount("u1")), "user:u1"},
		{string(UserHeldAccount("u1")), "user:u1:held"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	got := cleanText("  h\xffé"+strings.Repeat("é", 100)+"  ", 11)
	if !utf8.ValidString(got) || len(got) > 11 {
		t.Errorf("cleanText = %q (%d bytes), want valid UTF-8 of at most 11 bytes", got, len(got))
	}
	if got, want := cleanText("  a  ", 10), "a"; got != want {
		t.Errorf("cleanText = %q, want %q", got, want)
	}
}
