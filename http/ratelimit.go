package http

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Login rate limit. Every attempt is counted as a failure before its
// password is verified (a success gives it back), and an account has at
// most one verification in flight, so parallel guesses cannot slip past the
// count. Failures are kept per (account, address), per account and per
// address, each with its own ceiling within loginWindow: a user who mistypes
// locks out neither the other accounts behind the same NAT nor, from
// another address, the account's owner before accountFailuresMax.
const (
	// accountAddressFailuresMax bounds the failures of one account from
	// one client address.
	accountAddressFailuresMax = 5
	// accountFailuresMax bounds the failures of one account from every
	// address together (a distributed guesser).
	accountFailuresMax = 20
	// addressFailuresMax bounds the failures from one address over every
	// account: much higher, since many users may share it.
	addressFailuresMax = 100
	loginWindow        = time.Minute
	// loginBusyWait is the Retry-After of an attempt refused because
	// another verification of the same account is in flight.
	loginBusyWait = time.Second
	// loginKeysMax bounds the tracked keys; past it the expired entries
	// are dropped, then arbitrary ones.
	loginKeysMax = 100_000
)

// loginLimiter counts failed logins and the verifications in flight.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	failures map[string]failureWindow
	inFlight map[string]bool // accounts being verified
}

type failureWindow struct {
	start time.Time
	count int
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, failures: map[string]failureWindow{}, inFlight: map[string]bool{}}
}

// rateLimitedError is the 429 answer; it carries the wait.
type rateLimitedError struct{ wait time.Duration }

func (e rateLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins: wait %d seconds", e.RetryAfterSeconds())
}
func (e rateLimitedError) RetryAfterSeconds() int { return int(math.Ceil(e.wait.Seconds())) }
func (e rateLimitedError) Unwrap() error          { return errRateLimited }

var errRateLimited = &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed logins"}

// loginOutcome is how a verified attempt ended.
type loginOutcome int

const (
	loginSucceeded loginOutcome = iota // the account's failures are forgotten
	loginFailed                        // the attempt stays counted
	loginErred                         // not a guess (the database failed): uncounted
)

// limitedKey is one counter and its ceiling.
type limitedKey struct {
	key string
	max int
}

func loginKeys(account, address string) []limitedKey {
	return []limitedKey{
		{"account-address:" + account + "|" + address, accountAddressFailuresMax},
		{"account:" + account, accountFailuresMax},
		{"address:" + address, addressFailuresMax},
	}
}

// begin admits one login attempt for account from address, or refuses it
// with a rateLimitedError when a ceiling is reached or another attempt on
// the account is being verified. An admitted attempt is already counted as
// a failure; the caller must call the returned finish once it knows the
// outcome.
func (l *loginLimiter) begin(account, address string) (finish func(loginOutcome), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	keys := loginKeys(account, address)
	var wait time.Duration
	for _, k := range keys {
		if w, ok := l.failures[k.key]; ok && w.count >= k.max && now.Sub(w.start) < loginWindow {
			wait = max(wait, loginWindow-now.Sub(w.start))
		}
	}
	if wait > 0 {
		return nil, rateLimitedError{wait: wait}
	}
	if l.inFlight[account] {
		return nil, rateLimitedError{wait: loginBusyWait}
	}
	l.inFlight[account] = true
	if len(l.failures) >= loginKeysMax {
		l.prune(now)
	}
	for _, k := range keys {
		w := l.failures[k.key]
		if now.Sub(w.start) >= loginWindow {
			w = failureWindow{start: now}
		}
		w.count++
		l.failures[k.key] = w
	}
	return func(o loginOutcome) { l.finish(account, keys, o) }, nil
}

// finish ends an admitted attempt: a success forgets the account's
// failures and gives the address its attempt back; an error gives every
// counter its attempt back.
func (l *loginLimiter) finish(account string, keys []limitedKey, o loginOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inFlight, account)
	switch o {
	case loginSucceeded:
		delete(l.failures, keys[0].key)
		delete(l.failures, keys[1].key)
		l.uncount(keys[2].key)
	case loginErred:
		for _, k := range keys {
			l.uncount(k.key)
		}
	}
}

func (l *loginLimiter) uncount(key string) {
	if w, ok := l.failures[key]; ok && w.count > 0 {
		w.count--
		l.failures[key] = w
	}
}

func (l *loginLimiter) prune(now time.Time) {
	for k, w := range l.failures {
		if now.Sub(w.start) >= loginWindow {
			delete(l.failures, k)
		}
	}
	for k := range l.failures { // still full: drop arbitrary entries
		if len(l.failures) < loginKeysMax {
			break
		}
		delete(l.failures, k)
	}
}
