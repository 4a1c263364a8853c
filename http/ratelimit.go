package http

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Login rate limit: after loginFailuresMax failures within loginWindow, an
// account or a client address is refused until the window has passed.
const (
	loginFailuresMax = 5
	loginWindow      = time.Minute
	// loginKeysMax bounds the tracked accounts and addresses; past it the
	// expired entries are dropped, then the oldest.
	loginKeysMax = 100_000
)

// loginLimiter counts failed logins per account and per client address.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	failures map[string]failureWindow
}

type failureWindow struct {
	start time.Time
	count int
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, failures: map[string]failureWindow{}}
}

// rateLimitedError is the 429 answer; it carries the wait.
type rateLimitedError struct{ wait time.Duration }

func (e rateLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins: wait %d seconds", e.RetryAfterSeconds())
}
func (e rateLimitedError) RetryAfterSeconds() int { return int(math.Ceil(e.wait.Seconds())) }
func (e rateLimitedError) Unwrap() error          { return errRateLimited }

var errRateLimited = &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed logins"}

// check refuses when any key has too many recent failures.
func (l *loginLimiter) check(keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		w, ok := l.failures[k]
		if ok && w.count >= loginFailuresMax && now.Sub(w.start) < loginWindow {
			wait = max(wait, loginWindow-now.Sub(w.start))
		}
	}
	if wait > 0 {
		return rateLimitedError{wait: wait}
	}
	return nil
}

// fail records a failed login for each key.
func (l *loginLimiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.failures) >= loginKeysMax {
		l.prune(now)
	}
	for _, k := range keys {
		w := l.failures[k]
		if now.Sub(w.start) >= loginWindow {
			w = failureWindow{start: now}
		}
		w.count++
		l.failures[k] = w
	}
}

// succeed forgets an account's failures.
func (l *loginLimiter) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
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
