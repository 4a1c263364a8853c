package domain

import "time"

// Provider is the payment provider a purchase came through.
type Provider string

// The payment providers. Dev purchases are free and marked as such in every
// event, posting and read model.
const (
	ProviderStripe Provider = "stripe"
	ProviderDev    Provider = "dev"
)

// Valid reports whether p is ProviderStripe or ProviderDev.
func (p Provider) Valid() bool { return p == ProviderStripe || p == ProviderDev }

// Account returns the outside-world ledger account money from p comes from:
// AccountStripe or AccountDevProvider, and "" for an invalid provider.
func (p Provider) Account() AccountRef {
	switch p {
	case ProviderStripe:
		return AccountStripe
	case ProviderDev:
		return AccountDevProvider
	}
	return ""
}

// CreditsPurchased records a paid checkout: the user bought a package.
// Postings: provider account → user:{id}.
type CreditsPurchased struct {
	UserID            UserID    `json:"user_id"`
	PurchaseID        string    `json:"purchase_id"`
	PackageID         string    `json:"package_id"`
	Credits           Credits   `json:"credits"`
	AmountCents       int64     `json:"amount_cents"`
	Currency          string    `json:"currency"`
	Provider          Provider  `json:"provider"`
	CheckoutSessionID string    `json:"checkout_session_id"`
	Postings          []Posting `json:"postings"`
	At                time.Time `json:"at"`
}

// CreditsGranted records credits given by the platform (promotion, support).
// Postings: platform:promotions → user:{id}.
type CreditsGranted struct {
	UserID   UserID    `json:"user_id"`
	GrantID  string    `json:"grant_id"`
	Amount   Credits   `json:"amount"`
	Reason   string    `json:"reason"`
	Postings []Posting `json:"postings"`
	At       time.Time `json:"at"`
}

// CreditsHeld records a hold of a job's cost when the job was accepted.
// Postings: user:{id} → user:{id}:held (none for a zero-cost job).
type CreditsHeld struct {
	UserID   UserID    `json:"user_id"`
	JobID    JobID     `json:"job_id"`
	Amount   Credits   `json:"amount"`
	Postings []Posting `json:"postings"`
	At       time.Time `json:"at"`
}

// CreditsDeducted records the charge of a completed job: it captures the
// job's whole hold. Postings: user:{id}:held → platform:revenue.
type CreditsDeducted struct {
	UserID   UserID    `json:"user_id"`
	JobID    JobID     `json:"job_id"`
	Amount   Credits   `json:"amount"`
	Postings []Posting `json:"postings"`
	At       time.Time `json:"at"`
}

// HoldReleased records that a job's hold went back to the user uncharged
// (cancelled, failed after the last retry, or orphaned).
// Postings: user:{id}:held → user:{id}.
type HoldReleased struct {
	UserID   UserID    `json:"user_id"`
	JobID    JobID     `json:"job_id"`
	Amount   Credits   `json:"amount"`
	Reason   string    `json:"reason"`
	Postings []Posting `json:"postings"`
	At       time.Time `json:"at"`
}

// CreditsRefunded records credits given back for a charged job.
// Postings: platform:revenue → user:{id}.
type CreditsRefunded struct {
	UserID   UserID    `json:"user_id"`
	JobID    JobID     `json:"job_id"`
	RefundID string    `json:"refund_id"`
	Amount   Credits   `json:"amount"`
	Reason   string    `json:"reason"`
	Postings []Posting `json:"postings"`
	At       time.Time `json:"at"`
}

// EventType returns EventCreditsPurchased.
func (CreditsPurchased) EventType() string { return EventCreditsPurchased }

// EventType returns EventCreditsGranted.
func (CreditsGranted) EventType() string { return EventCreditsGranted }

// EventType returns EventCreditsHeld.
func (CreditsHeld) EventType() string { return EventCreditsHeld }

// EventType returns EventCreditsDeducted.
func (CreditsDeducted) EventType() string { return EventCreditsDeducted }

// EventType returns EventHoldReleased.
func (HoldReleased) EventType() string { return EventHoldReleased }

// EventType returns EventCreditsRefunded.
func (CreditsRefunded) EventType() string { return EventCreditsRefunded }
