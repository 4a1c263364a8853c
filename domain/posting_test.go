package domain

import "testing"

func TestBalanced(t *testing.T) {
	u := UserAccount("u1")
	tests := []struct {
		name string
		ps   []Posting
		ok   bool
	}{
		{"none", nil, true},
		{"one", []Posting{{Debit: AccountStripe, Credit: u, Amount: 100}}, true},
		{"zero amount", []Posting{{Debit: AccountStripe, Credit: u}}, false},
		{"negative amount", []Posting{{Debit: AccountStripe, Credit: u, Amount: -1}}, false},
		{"same account", []Posting{{Debit: u, Credit: u, Amount: 1}}, false},
		{"empty account", []Posting{{Debit: "", Credit: u, Amount: 1}}, false},
		{"too large", []Posting{{Debit: AccountStripe, Credit: u, Amount: creditsMax + 1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Balanced(tt.ps)
			if (err == nil) != tt.ok {
				t.Errorf("Balanced() = %v, want ok=%v", err, tt.ok)
			}
			if got := SumPostings(tt.ps); got != 0 {
				t.Errorf("SumPostings() = %d, want 0", got)
			}
		})
	}
}

func TestNetBalances(t *testing.T) {
	ps := []Posting{
		{Debit: AccountStripe, Credit: UserAccount("u"), Amount: 100},
		{Debit: UserAccount("u"), Credit: UserHeldAccount("u"), Amount: 10},
	}
	got := NetBalances(ps)
	want := map[AccountRef]Credits{AccountStripe: -100, "user:u": 90, "user:u:held": 10}
	for acct, w := range want {
		if got[acct] != w {
			t.Errorf("net[%s] = %d, want %d", acct, got[acct], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d accounts, want %d", len(got), len(want))
	}
}
