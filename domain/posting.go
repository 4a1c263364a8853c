package domain

import "fmt"

// Credits is an amount of credits. Money is always an integer; there are no
// floats anywhere in it.
type Credits int64

// Limits on amounts. They keep every sum far from int64 overflow, and every
// number in an event below 2^53, where canonical JSON (RFC 8785, which encodes
// numbers as IEEE doubles) would start to lose digits.
const (
	creditsMax     Credits = 1 << 40 // one purchase, grant, hold, refund or price
	balanceMax     Credits = 1 << 50 // an account's balance
	amountCentsMax int64   = 1 << 40 // what one purchase paid
)

// AccountRef names a ledger account, e.g. "user:{id}" or "platform:revenue".
type AccountRef string

// The platform's own ledger accounts. Their names are part of the event log
// and never change.
const (
	// AccountRevenue receives deducted credits and pays refunds.
	AccountRevenue AccountRef = "platform:revenue"
	// AccountPromotions pays granted credits.
	AccountPromotions AccountRef = "platform:promotions"
	// AccountStripe is the outside world for credits bought through Stripe.
	AccountStripe AccountRef = "external:stripe"
	// AccountDevProvider is the outside world for credits "bought" through the
	// dev payment provider. It exists so dev money is never mistaken for real.
	AccountDevProvider AccountRef = "external:dev"
)

// UserAccount returns a user's spendable account, "user:{id}". Its balance is
// the user's available credits.
func UserAccount(user UserID) AccountRef { return AccountRef("user:" + string(user)) }

// UserHeldAccount returns the account that holds a user's credits for
// accepted jobs, "user:{id}:held". Its balance is the sum of open holds.
func UserHeldAccount(user UserID) AccountRef {
	return AccountRef("user:" + string(user) + ":held")
}

// Posting moves Amount credits from the Debit account to the Credit account.
// A credit increases an account's balance and a debit decreases it, so every
// posting adds Amount to one account and removes it from another: the
// postings of any event sum to zero by construction, and Balanced checks it.
// Amount is always positive; an event that moves nothing has no postings.
type Posting struct {
	Debit  AccountRef `json:"debit"`
	Credit AccountRef `json:"credit"`
	Amount Credits    `json:"amount"`
}

// post returns the postings that move amount from debit to credit: one
// posting, or none when amount is zero (a zero hold moves nothing).
func post(debit, credit AccountRef, amount Credits) []Posting {
	if amount == 0 {
		return nil
	}
	return []Posting{{Debit: debit, Credit: credit, Amount: amount}}
}

// NetBalances returns each account's net change under ps: credits minus
// debits. It never fails.
func NetBalances(ps []Posting) map[AccountRef]Credits {
	net := make(map[AccountRef]Credits, 2*len(ps))
	for _, p := range ps {
		net[p.Credit] += p.Amount
		net[p.Debit] -= p.Amount
	}
	return net
}

// SumPostings returns the sum of all accounts' net changes under ps, which is
// zero for any well-formed set of postings.
func SumPostings(ps []Posting) Credits {
	var sum Credits
	for _, n := range NetBalances(ps) {
		sum += n
	}
	return sum
}

// Balanced returns nil if ps is a well-formed double-entry set: every posting
// names two different, non-empty accounts and a positive amount no larger
// than creditsMax, and the net changes sum to zero. Otherwise it returns an
// error naming the first bad posting.
func Balanced(ps []Posting) error {
	for i, p := range ps {
		switch {
		case p.Debit == "" || p.Credit == "":
			return fmt.Errorf("posting %d: empty account", i)
		case p.Debit == p.Credit:
			return fmt.Errorf("posting %d: debit and credit are both %s", i, p.Debit)
		case p.Amount <= 0 || p.Amount > creditsMax:
			return fmt.Errorf("posting %d: amount %d out of range", i, p.Amount)
		}
	}
	if sum := SumPostings(ps); sum != 0 {
		return fmt.Errorf("postings sum to %d, want 0", sum)
	}
	return nil
}
