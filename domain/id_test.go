package domain

import (
	"strings"
	"testing"
	"time"
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

// TestCleanTextControlCharacters: text that reaches an event holds no
// control character (PostgreSQL refuses NUL in text; a terminal obeys
// escape sequences): each becomes a space.
func TestCleanTextControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"a\x00b":              "a b",
		"red \x1b[31mtext":    "red  [31mtext",
		"line\r\nnext\tcol":   "line  next col",
		"c1 \u0085\u009b end": "c1    end",
		"\x00\x07":            "",
	} {
		if got := cleanText(in, 100); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
	ev, err := NewNode("n1").Enroll(Enrollment{Name: "gpu\x00box", Capabilities: Capabilities{JobTypes: []JobType{JobEcho}, Slots: 1}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := ev[0].(NodeEnrolled).Name; got != "gpu box" {
		t.Errorf("enrolled name %q, want %q", got, "gpu box")
	}
}
