package domain

import "maps"

// HoldState is where a job's hold stands.
type HoldState string

// The hold states. A hold starts open and ends deducted or released, once.
const (
	HoldStateOpen     HoldState = "open"
	HoldStateDeducted HoldState = "deducted"
	HoldStateReleased HoldState = "released"
)

// JobHold is an account's money record for one job: its hold, whether the hold
// was deducted or released, and how much of the charge was refunded.
type JobHold struct {
	Amount   Credits   // the hold, which is also the charge once deducted
	State    HoldState // open, deducted or released
	Refunded Credits   // total refunded; never more than Deducted()
}

// Deducted returns the job's charge: the hold's amount once deducted, else 0.
func (h JobHold) Deducted() Credits {
	if h.State == HoldStateDeducted {
		return h.Amount
	}
	return 0
}

// Purchase is a paid checkout to be credited. Package.Purchase builds one.
type Purchase struct {
	PurchaseID        string   // idempotency key of the purchase
	PackageID         string   // one of Packages()
	Credits           Credits  // must equal the package's credits
	AmountCents       int64    // what was paid, in the currency's minor unit
	Currency          string   // must equal the package's currency
	Provider          Provider // stripe or dev
	CheckoutSessionID string   // the provider's checkout session
}

// grantRecord and refundRecord remember what an id was used for, so a retry
// with the same id is recognized and a reuse with other details refused.
type (
	grantRecord struct {
		Amount Credits
		Reason string
	}
	refundRecord struct {
		Job    JobID
		Amount Credits
		Reason string
	}
)

// Account is the aggregate of one user's credits, folded from the
// account-{user} stream.
//
// Invariants, kept by the deciding methods: balance = purchases + grants +
// refunds − deductions; available = balance − open holds ≥ 0; a job has at
// most one hold, is charged at most once and only by deducting its hold; a
// job's refunds never exceed its charge.
//
// Idempotency: a purchase, grant or refund whose id was already applied with
// the same details returns no events and a nil error; the same id with other
// details returns ErrIdempotencyConflict. Hold, Deduct and Release are state
// transitions and return an error when repeated (ErrHoldExists,
// ErrAlreadyDeducted, ErrNoOpenHold), which a retrying reactor can treat as
// done.
//
// Zero-cost jobs (echo) get a hold of 0 like any other job, so every job has
// the same money lifecycle; those events carry no postings.
type Account struct {
	user    UserID
	version uint64

	purchased, granted, refunded, deducted, held Credits

	purchases map[string]Purchase // by purchase id
	sessions  map[string]string   // checkout session id → purchase id
	grants    map[string]grantRecord
	refunds   map[string]refundRecord
	// holds has a record per job ever held: copies share it (see cowMap).
	holds cowMap[JobID, JobHold]
}

// NewAccount returns the empty account of user, at version 0.
func NewAccount(user UserID) *Account {
	return &Account{
		user:      user,
		purchases: map[string]Purchase{},
		sessions:  map[string]string{},
		grants:    map[string]grantRecord{},
		refunds:   map[string]refundRecord{},
	}
}

// Snapshot returns a deep copy of a that shares nothing with it, for caching.
func (a *Account) Snapshot() *Account {
	c := *a
	c.purchases = maps.Clone(a.purchases)
	c.sessions = maps.Clone(a.sessions)
	c.grants = maps.Clone(a.grants)
	c.refunds = maps.Clone(a.refunds)
	c.holds = a.holds.clone()
	return &c
}

// User returns the account's user.
func (a *Account) User() UserID { return a.user }

// Version returns the number of events applied (0 for a new stream), which is
// the stream's version: append what the account decides next with
// expected version Exact(Version()).
func (a *Account) Version() uint64 { return a.version }

// Balance returns purchases + grants + refunds − deductions.
func (a *Account) Balance() Credits { return a.purchased + a.granted + a.refunded - a.deducted }

// Available returns the credits that can be held: Balance − Held. It is never
// negative.
func (a *Account) Available() Credits { return a.Balance() - a.held }

// Held returns the sum of open holds.
func (a *Account) Held() Credits { return a.held }

// Purchased returns the total of all purchases.
func (a *Account) Purchased() Credits { return a.purchased }

// Granted returns the total of all grants.
func (a *Account) Granted() Credits { return a.granted }

// Refunded returns the total of all refunds.
func (a *Account) Refunded() Credits { return a.refunded }

// Deducted returns the total of all deductions (charges).
func (a *Account) Deducted() Credits { return a.deducted }

// JobHold returns the money record of job, and false if job never had a hold.
func (a *Account) JobHold(job JobID) (JobHold, bool) {
	return a.holds.get(job)
}
