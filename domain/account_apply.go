package domain

// Apply folds one event into the account and increments its version. It is
// pure and never fails: the deciding methods validated the event before it
// was recorded. It panics on an event that is not an account event.
func (a *Account) Apply(e Event) {
	switch e := e.(type) {
	case CreditsPurchased:
		a.purchased += e.Credits
		a.purchases[e.PurchaseID] = Purchase{
			PurchaseID:        e.PurchaseID,
			PackageID:         e.PackageID,
			Credits:           e.Credits,
			AmountCents:       e.AmountCents,
			Currency:          e.Currency,
			Provider:          e.Provider,
			CheckoutSessionID: e.CheckoutSessionID,
		}
		a.sessions[e.CheckoutSessionID] = e.PurchaseID
	case CreditsGranted:
		a.granted += e.Amount
		a.grants[e.GrantID] = grantRecord{Amount: e.Amount, Reason: e.Reason}
	case CreditsHeld:
		a.held += e.Amount
		a.holds.set(e.JobID, JobHold{Amount: e.Amount, State: HoldStateOpen})
	case CreditsDeducted:
		a.held -= e.Amount
		a.deducted += e.Amount
		a.setHoldState(e.JobID, HoldStateDeducted)
	case HoldReleased:
		a.held -= e.Amount
		a.setHoldState(e.JobID, HoldStateReleased)
	case CreditsRefunded:
		a.refunded += e.Amount
		h, _ := a.holds.get(e.JobID)
		h.Refunded += e.Amount
		a.holds.set(e.JobID, h)
		a.refunds[e.RefundID] = refundRecord{Job: e.JobID, Amount: e.Amount, Reason: e.Reason}
	default:
		unknownEvent("account", e)
	}
	a.version++
}

// setHoldState moves job's hold to state.
func (a *Account) setHoldState(job JobID, state HoldState) {
	h, _ := a.holds.get(job)
	h.State = state
	a.holds.set(job, h)
}
