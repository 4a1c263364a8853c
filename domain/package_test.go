package domain

import (
	"errors"
	"testing"
)

func TestLookupPackage(t *testing.T) {
	tests := []struct {
		id      string
		credits Credits
		cents   int64
		wantErr error
	}{
		{"credits_100", 100, 1000, nil},
		{"credits_500", 500, 4000, nil},
		{"credits_1000", 1000, 7000, nil},
		{"credits_42", 0, 0, ErrUnknownPackage},
		{"", 0, 0, ErrUnknownPackage},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := LookupPackage(tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if p.Credits != tt.credits || p.AmountCents != tt.cents {
				t.Errorf("got %d credits for %d cents, want %d for %d", p.Credits, p.AmountCents, tt.credits, tt.cents)
			}
			if err == nil && p.Currency != "usd" {
				t.Errorf("currency = %q, want usd", p.Currency)
			}
		})
	}
	if got := len(Packages()); got != 3 {
		t.Errorf("len(Packages()) = %d, want 3", got)
	}
}
