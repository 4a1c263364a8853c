package domain

import (
	"fmt"
	"time"
)

// Purchase credits the user with a paid checkout and returns one
// CreditsPurchased. A repeat of an applied purchase returns no events.
// It returns ErrInvalidID for a bad purchase, package or session id,
// ErrUnknownPackage, ErrInvalidPurchase when the credits, currency, price or
// provider do not fit the package, ErrIdempotencyConflict when the purchase id
// or checkout session was used with other details, and ErrInvalidAmount when
// the balance would exceed its limit.
func (a *Account) Purchase(p Purchase, now time.Time) ([]Event, error) {
	if prev, ok := a.purchases[p.PurchaseID]; ok {
		if prev != p {
			return nil, fmt.Errorf("%w: purchase %s", ErrIdempotencyConflict, p.PurchaseID)
		}
		return nil, nil
	}
	if err := a.checkPurchase(p); err != nil {
		return nil, err
	}
	if err := a.checkCredit(p.Credits); err != nil {
		return nil, err
	}
	return []Event{CreditsPurchased{
		UserID:            a.user,
		PurchaseID:        p.PurchaseID,
		PackageID:         p.PackageID,
		Credits:           p.Credits,
		AmountCents:       p.AmountCents,
		Currency:          p.Currency,
		Provider:          p.Provider,
		CheckoutSessionID: p.CheckoutSessionID,
		Postings:          post(p.Provider.Account(), UserAccount(a.user), p.Credits),
		At:                stamp(now),
	}}, nil
}

// checkPurchase validates a new purchase against its package and against
// earlier purchases of the same checkout session.
func (a *Account) checkPurchase(p Purchase) error {
	if err := a.checkUser(); err != nil {
		return err
	}
	for _, id := range [...][2]string{
		{"purchase id", p.PurchaseID}, {"checkout session id", p.CheckoutSessionID},
	} {
		if err := checkID(id[0], id[1]); err != nil {
			return err
		}
	}
	pkg, err := LookupPackage(p.PackageID)
	if err != nil {
		return err
	}
	switch {
	case p.Credits != pkg.Credits:
		return fmt.Errorf("%w: %d credits, package %s has %d",
			ErrInvalidPurchase, p.Credits, pkg.ID, pkg.Credits)
	case p.Currency != pkg.Currency:
		return fmt.Errorf("%w: currency %q, package %s is in %s",
			ErrInvalidPurchase, truncate(p.Currency, 10), pkg.ID, pkg.Currency)
	case p.AmountCents < 0 || p.AmountCents > amountCentsMax:
		return fmt.Errorf("%w: price of %d cents", ErrInvalidPurchase, p.AmountCents)
	case !p.Provider.Valid():
		return fmt.Errorf("%w: provider %q", ErrInvalidPurchase, truncate(string(p.Provider), 20))
	}
	if prev, ok := a.sessions[p.CheckoutSessionID]; ok {
		return fmt.Errorf("%w: checkout session %s already credited by purchase %s",
			ErrIdempotencyConflict, p.CheckoutSessionID, prev)
	}
	return nil
}

// Grant gives the user amount credits from the platform and returns one
// CreditsGranted. A repeat of an applied grant returns no events. It returns
// ErrInvalidID, ErrInvalidAmount (amount not in 1..creditsMax, or balance
// over its limit), ErrInvalidReason for an empty reason, and
// ErrIdempotencyConflict when grantID was used with other details.
func (a *Account) Grant(grantID string, amount Credits, reason string, now time.Time) ([]Event, error) {
	clean := cleanText(reason, reasonBytesMax)
	if prev, ok := a.grants[grantID]; ok {
		if prev != (grantRecord{Amount: amount, Reason: clean}) {
			return nil, fmt.Errorf("%w: grant %s", ErrIdempotencyConflict, grantID)
		}
		return nil, nil
	}
	if err := a.checkUser(); err != nil {
		return nil, err
	}
	if err := checkID("grant id", grantID); err != nil {
		return nil, err
	}
	clean, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	if err := a.checkCredit(amount); err != nil {
		return nil, err
	}
	return []Event{CreditsGranted{
		UserID:   a.user,
		GrantID:  grantID,
		Amount:   amount,
		Reason:   clean,
		Postings: post(AccountPromotions, UserAccount(a.user), amount),
		At:       stamp(now),
	}}, nil
}

// Hold sets cost credits aside for job and returns one CreditsHeld. A cost of
// 0 is held like any other (the event has no postings). It returns
// ErrInvalidID, ErrInvalidAmount for a cost outside 0..creditsMax,
// ErrHoldExists if job already has a hold (in any state), and
// ErrInsufficientCredits if cost exceeds Available.
func (a *Account) Hold(job JobID, cost Credits, now time.Time) ([]Event, error) {
	if err := a.checkUser(); err != nil {
		return nil, err
	}
	if err := checkID("job id", string(job)); err != nil {
		return nil, err
	}
	if cost < 0 || cost > creditsMax {
		return nil, fmt.Errorf("%w: hold of %d", ErrInvalidAmount, cost)
	}
	if h, ok := a.holds.get(job); ok {
		return nil, fmt.Errorf("%w: job %s hold is %s", ErrHoldExists, job, h.State)
	}
	if avail := a.Available(); cost > avail {
		return nil, fmt.Errorf("%w: job costs %d, available %d", ErrInsufficientCredits, cost, avail)
	}
	return []Event{CreditsHeld{
		UserID:   a.user,
		JobID:    job,
		Amount:   cost,
		Postings: post(UserAccount(a.user), UserHeldAccount(a.user), cost),
		At:       stamp(now),
	}}, nil
}

// Deduct charges job by capturing its whole open hold and returns one
// CreditsDeducted. It returns ErrAlreadyDeducted if the hold was already
// deducted and ErrNoOpenHold if job has no hold or it was released.
func (a *Account) Deduct(job JobID, now time.Time) ([]Event, error) {
	h, err := a.openHold(job)
	if err != nil {
		return nil, err
	}
	return []Event{CreditsDeducted{
		UserID:   a.user,
		JobID:    job,
		Amount:   h.Amount,
		Postings: post(UserHeldAccount(a.user), AccountRevenue, h.Amount),
		At:       stamp(now),
	}}, nil
}

// Release gives job's whole open hold back to the user uncharged and returns
// one HoldReleased. It returns ErrInvalidReason for an empty reason,
// ErrAlreadyDeducted if the hold was deducted and ErrNoOpenHold if job has no
// hold or it was already released.
func (a *Account) Release(job JobID, reason string, now time.Time) ([]Event, error) {
	h, err := a.openHold(job)
	if err != nil {
		return nil, err
	}
	clean, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	return []Event{HoldReleased{
		UserID:   a.user,
		JobID:    job,
		Amount:   h.Amount,
		Reason:   clean,
		Postings: post(UserHeldAccount(a.user), UserAccount(a.user), h.Amount),
		At:       stamp(now),
	}}, nil
}

// openHold returns job's hold if it is open, else ErrAlreadyDeducted or
// ErrNoOpenHold.
func (a *Account) openHold(job JobID) (JobHold, error) {
	h, ok := a.holds.get(job)
	switch {
	case !ok:
		return JobHold{}, fmt.Errorf("%w: job %s has no hold", ErrNoOpenHold, truncate(string(job), 40))
	case h.State == HoldStateDeducted:
		return JobHold{}, fmt.Errorf("%w: job %s", ErrAlreadyDeducted, job)
	case h.State != HoldStateOpen:
		return JobHold{}, fmt.Errorf("%w: job %s hold was %s", ErrNoOpenHold, job, h.State)
	}
	return h, nil
}

// Refund gives amount credits of job's charge back to the user and returns one
// CreditsRefunded. A repeat of an applied refund returns no events. It
// returns ErrInvalidID, ErrInvalidAmount for an amount below 1,
// ErrInvalidReason, ErrIdempotencyConflict when refundID was used with other
// details, ErrNotDeducted if job was never charged, and ErrRefundExceedsDeduction
// if the job's refunds would exceed its charge.
func (a *Account) Refund(job JobID, amount Credits, refundID, reason string, now time.Time) ([]Event, error) {
	want := refundRecord{Job: job, Amount: amount, Reason: cleanText(reason, reasonBytesMax)}
	if prev, ok := a.refunds[refundID]; ok {
		if prev != want {
			return nil, fmt.Errorf("%w: refund %s", ErrIdempotencyConflict, refundID)
		}
		return nil, nil
	}
	if err := a.checkRefund(job, amount, refundID, reason); err != nil {
		return nil, err
	}
	return []Event{CreditsRefunded{
		UserID:   a.user,
		JobID:    job,
		RefundID: refundID,
		Amount:   amount,
		Reason:   want.Reason,
		Postings: post(AccountRevenue, UserAccount(a.user), amount),
		At:       stamp(now),
	}}, nil
}

// RefundRest refunds what is left of job's charge (charged − refunded), as
// Refund. A refund id used before is a retry of that refund, whatever
// amount it came to: it returns no events (ErrIdempotencyConflict if it
// was of another job or reason). Computing "the rest" again on a retry made
// it 0 and refused the retry as a conflict.
func (a *Account) RefundRest(job JobID, refundID, reason string, now time.Time) ([]Event, error) {
	if prev, ok := a.refunds[refundID]; ok {
		return a.Refund(job, prev.Amount, refundID, reason, now)
	}
	var rest Credits
	if h, ok := a.holds.get(job); ok {
		rest = h.Deducted() - h.Refunded
	}
	return a.Refund(job, rest, refundID, reason, now)
}

// checkRefund validates a new refund against the job's charge.
func (a *Account) checkRefund(job JobID, amount Credits, refundID, reason string) error {
	if err := checkID("refund id", refundID); err != nil {
		return err
	}
	if _, err := requireReason(reason); err != nil {
		return err
	}
	if amount <= 0 || amount > creditsMax {
		return fmt.Errorf("%w: refund of %d", ErrInvalidAmount, amount)
	}
	h, ok := a.holds.get(job)
	if !ok || h.State != HoldStateDeducted {
		return fmt.Errorf("%w: job %s", ErrNotDeducted, truncate(string(job), 40))
	}
	if left := h.Deducted() - h.Refunded; amount > left {
		return fmt.Errorf("%w: job %s charged %d, refunded %d, asked %d",
			ErrRefundExceedsDeduction, job, h.Deducted(), h.Refunded, amount)
	}
	return nil
}

// checkUser returns ErrInvalidID if the account's user id is unusable.
func (a *Account) checkUser() error { return checkID("user id", string(a.user)) }

// checkCredit returns ErrInvalidAmount unless amount is in 1..creditsMax and
// adding it keeps the balance within balanceMax.
func (a *Account) checkCredit(amount Credits) error {
	if amount <= 0 || amount > creditsMax {
		return fmt.Errorf("%w: %d credits", ErrInvalidAmount, amount)
	}
	if a.Balance() > balanceMax-amount {
		return fmt.Errorf("%w: balance would exceed %d", ErrInvalidAmount, balanceMax)
	}
	return nil
}
