package identity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Login rate limit. Every attempt is counted as a failure before its
// password is verified (a success gives it back), and an account has at
// most one verification in flight, so parallel guesses cannot slip past the
// count. Failures are kept per (account, address), per account and per
// address, each with its own ceiling within LoginWindow: a user who
// mistypes locks out neither the other accounts behind the same NAT nor,
// from another address, the account's owner before AccountFailuresMax.
//
// The counters are rows of the state database, so every API process of an
// installation on PostgreSQL shares them: guesses spread over processes
// meet the same ceilings.
const (
	// AccountAddressFailuresMax bounds the failures of one account from
	// one client address.
	AccountAddressFailuresMax = 5
	// AccountFailuresMax bounds the failures of one account from every
	// address together (a distributed guesser).
	AccountFailuresMax = 20
	// AddressFailuresMax bounds the failures from one address over every
	// account: much higher, since many users may share it.
	AddressFailuresMax = 100
	// LoginWindow is how long a failure counts.
	LoginWindow = time.Minute
	// LoginBusyWait is the Retry-After of an attempt refused because
	// another verification of the same account is in flight.
	LoginBusyWait = time.Second
	// loginClaimTTL bounds a verification's claim on its account: a process
	// that died mid-verification blocks the account no longer than this.
	loginClaimTTL = 30 * time.Second
	// loginPruneEvery is how many attempts pass between two deletions of
	// expired counters.
	loginPruneEvery = 1000
)

// LoginOutcome is how a verified attempt ended.
type LoginOutcome int

// The outcomes of a verified attempt.
const (
	LoginSucceeded LoginOutcome = iota // the account's failures are forgotten
	LoginFailed                        // the attempt stays counted
	LoginErred                         // not a guess (the database failed): uncounted
)

// ErrLoginRateLimited is the sentinel of a refused attempt; the error
// returned is a *LoginRateLimitedError that names the wait.
var ErrLoginRateLimited = &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed logins"}

// LoginRateLimitedError is a refused attempt and how long to wait.
type LoginRateLimitedError struct{ Wait time.Duration }

func (e *LoginRateLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins: wait %d seconds", e.RetryAfterSeconds())
}

// RetryAfterSeconds is the wait, rounded up (the Retry-After header).
func (e *LoginRateLimitedError) RetryAfterSeconds() int { return int(math.Ceil(e.Wait.Seconds())) }

// Unwrap makes errors.Is(err, ErrLoginRateLimited) hold.
func (e *LoginRateLimitedError) Unwrap() error { return ErrLoginRateLimited }

// limitedKey is one counter and its ceiling.
type limitedKey struct {
	key string
	max int
}

func loginKeys(account, address string) []limitedKey {
	return []limitedKey{
		{"account-address:" + account + "|" + address, AccountAddressFailuresMax},
		{"account:" + account, AccountFailuresMax},
		{"address:" + address, AddressFailuresMax},
	}
}

// BeginLogin admits one login attempt for account (the normalized email)
// from address, or refuses it with a *LoginRateLimitedError when a ceiling
// is reached or another attempt on the account is being verified. An
// admitted attempt is already counted as a failure; the caller must call
// finish once it knows the outcome.
func (s *Service) BeginLogin(ctx context.Context, account, address string) (finish func(context.Context, LoginOutcome), err error) {
	keys := loginKeys(account, address)
	now := s.now()
	if s.loginAttempts.Add(1)%loginPruneEvery == 0 {
		s.pruneLoginCounters(ctx, now)
	}
	var refused *LoginRateLimitedError
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		claimed, err := claimLogin(ctx, tx, account, now)
		if err != nil {
			return err
		}
		if !claimed {
			refused = &LoginRateLimitedError{Wait: LoginBusyWait}
			return refused
		}
		var wait time.Duration
		for _, k := range keys {
			w, err := countFailure(ctx, tx, k, now)
			if err != nil {
				return err
			}
			wait = max(wait, w)
		}
		if wait > 0 {
			refused = &LoginRateLimitedError{Wait: wait}
			return refused // rolls back: nothing counted, the claim released
		}
		return nil
	})
	if refused != nil {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("login limits: %w", err)
	}
	return func(ctx context.Context, o LoginOutcome) { s.finishLogin(context.WithoutCancel(ctx), account, keys, o) }, nil
}

// claimLogin takes account's verification claim unless a live one exists.
func claimLogin(ctx context.Context, tx *sqldb.Tx, account string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO login_claims (account, expires_at) VALUES (?, ?)
		ON CONFLICT (account) DO UPDATE SET expires_at = excluded.expires_at WHERE login_claims.expires_at <= ?`,
		account, now.Add(loginClaimTTL).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// countFailure counts one failure under k (starting a new window when the
// last one is over) and returns how long to wait when that passes k's
// ceiling. On PostgreSQL the row stays locked until the transaction ends,
// so concurrent attempts count one after the other.
func countFailure(ctx context.Context, tx *sqldb.Tx, k limitedKey, now time.Time) (time.Duration, error) {
	nowMs, windowStart := now.UnixMilli(), now.Add(-LoginWindow).UnixMilli()
	var count int
	var start int64
	err := tx.QueryRow(ctx, `INSERT INTO login_failures (key, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN login_failures.window_start <= ? THEN 1 ELSE login_failures.count + 1 END,
			window_start = CASE WHEN login_failures.window_start <= ? THEN excluded.window_start ELSE login_failures.window_start END
		RETURNING count, window_start`, k.key, nowMs, windowStart, windowStart).Scan(&count, &start)
	if err != nil {
		return 0, err
	}
	if count <= k.max {
		return 0, nil
	}
	return time.UnixMilli(start).Add(LoginWindow).Sub(now), nil
}

// finishLogin ends an admitted attempt: a success forgets the account's
// failures and gives the address its attempt back; an error gives every
// counter its attempt back. Its error is dropped: the claim expires after
// loginClaimTTL, and a count left standing only errs towards caution.
func (s *Service) finishLogin(ctx context.Context, account string, keys []limitedKey, o LoginOutcome) {
	s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM login_claims WHERE account = ?`, account); err != nil {
			return err
		}
		forget, uncount := []limitedKey(nil), []limitedKey(nil)
		switch o {
		case LoginSucceeded:
			forget, uncount = keys[:2], keys[2:]
		case LoginErred:
			uncount = keys
		}
		for _, k := range forget {
			if _, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE key = ?`, k.key); err != nil {
				return err
			}
		}
		for _, k := range uncount {
			if _, err := tx.Exec(ctx, `UPDATE login_failures SET count = count - 1 WHERE key = ? AND count > 0`, k.key); err != nil {
				return err
			}
		}
		return nil
	})
}

// pruneLoginCounters deletes the counters whose window is over and the
// expired claims.
func (s *Service) pruneLoginCounters(ctx context.Context, now time.Time) {
	s.db.Exec(ctx, `DELETE FROM login_failures WHERE window_start <= ?`, now.Add(-LoginWindow).UnixMilli())
	s.db.Exec(ctx, `DELETE FROM login_claims WHERE expires_at <= ?`, now.UnixMilli())
}

// IsLoginRateLimited reports whether err is a refused login attempt.
func IsLoginRateLimited(err error) bool { return errors.Is(err, ErrLoginRateLimited) }
