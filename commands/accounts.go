package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
)

// FulfilPurchase credits a paid checkout to the user's account, once per
// purchase id and once per checkout session however often it is called.
// It returns the log position reached, and the domain's purchase errors
// (domain.ErrUnknownPackage, domain.ErrInvalidPurchase,
// domain.ErrIdempotencyConflict).
func (s *Service) FulfilPurchase(ctx context.Context, a Actor, user domain.UserID, p domain.Purchase) (uint64, error) {
	now := s.now()
	return s.accountCommand(ctx, a, user, "purchase/"+p.PurchaseID, func(acc *domain.Account) ([]domain.Event, error) {
		return acc.Purchase(p, now)
	})
}

// Grant gives the user credits from the platform, once per grant id. An
// empty grantID is derived from the actor's idempotency key (a retried
// request grants once), or fresh without one.
func (s *Service) Grant(ctx context.Context, a Actor, user domain.UserID, grantID string, amount domain.Credits, reason string) (uint64, error) {
	if grantID == "" {
		grantID = a.newID("grant", "admin")
	}
	now := s.now()
	return s.accountCommand(ctx, a, user, "grant/"+grantID, func(acc *domain.Account) ([]domain.Event, error) {
		return acc.Grant(grantID, amount, reason, now)
	})
}

// Refund gives back all or part of a charged job (amount 0: all that is not
// refunded yet), once per refund id — a retry of an amount-0 refund too. An
// empty refundID is derived from the actor's idempotency key (a retried
// request refunds once), or fresh without one. The refunds of a job never
// exceed its charge, also under concurrent requests
// (each decides on the account's latest version). It returns
// domain.ErrJobNotFound for a job of another user, domain.ErrNotDeducted and
// domain.ErrRefundExceedsDeduction.
func (s *Service) Refund(ctx context.Context, a Actor, job domain.JobID, amount domain.Credits, refundID, reason string) (uint64, error) {
	j, err := s.Job(ctx, job)
	if err != nil {
		return 0, err
	}
	if !j.Exists() {
		return 0, fmt.Errorf("%w: %s", domain.ErrJobNotFound, job)
	}
	if refundID == "" {
		refundID = a.newID("refund", string(job))
	}
	now := s.now()
	return s.accountCommand(ctx, a, j.Owner(), "refund/"+refundID, func(acc *domain.Account) ([]domain.Event, error) {
		if amount == 0 {
			return acc.RefundRest(job, refundID, reason, now)
		}
		return acc.Refund(job, amount, refundID, reason, now)
	})
}

// settle deducts or releases a job's hold as its ending event (whose id is
// causation) calls for. Settling twice is a no-op.
func (s *Service) settle(ctx context.Context, st domain.Settlement, causation string) (uint64, error) {
	now := s.now()
	a := Actor{ID: "system:settlement", CausationID: causation}
	pos, err := s.accountCommand(ctx, a, st.Owner, "settle/"+string(st.Job), func(acc *domain.Account) ([]domain.Event, error) {
		if h, ok := acc.JobHold(st.Job); ok && h.State != domain.HoldStateOpen {
			return nil, nil
		}
		if st.Action == domain.SettleDeduct {
			return acc.Deduct(st.Job, now)
		}
		return acc.Release(st.Job, st.Reason, now)
	})
	if errors.Is(err, domain.ErrNoOpenHold) {
		return 0, nil // no hold was ever made (the submission crashed before it)
	}
	return pos, err
}

// releaseOrphan releases a hold whose job never appeared; causation is the
// id of the hold's event.
func (s *Service) releaseOrphan(ctx context.Context, user domain.UserID, job domain.JobID, causation string) (uint64, error) {
	now := s.now()
	return s.accountCommand(ctx, Actor{ID: "system:orphan-holds", CausationID: causation}, user, "settle/"+string(job), func(acc *domain.Account) ([]domain.Event, error) {
		if h, ok := acc.JobHold(job); !ok || h.State != domain.HoldStateOpen {
			return nil, nil
		}
		return acc.Release(job, "orphaned: the job was never created", now)
	})
}

func (s *Service) accountCommand(ctx context.Context, a Actor, user domain.UserID, key string, decide decision[*domain.Account]) (uint64, error) {
	if !domain.ValidID(string(user)) {
		return 0, fmt.Errorf("%w: user id", domain.ErrInvalidID)
	}
	res, err := s.accounts.update(ctx, domain.AccountStream(user), string(user), a.cause(key), decide)
	return res.LastPosition, err
}
