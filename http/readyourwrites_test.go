package http

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

// fakeRunner is a projection runner whose applied position the test sets.
type fakeRunner struct {
	mu      sync.Mutex
	applied uint64
	waited  []uint64 // positions WaitFor was asked for with a live context
}

func (f *fakeRunner) WaitFor(ctx context.Context, position uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() == nil {
		f.waited = append(f.waited, position)
	}
	if f.applied >= position {
		return nil
	}
	return errors.New("not yet")
}

func (f *fakeRunner) set(applied uint64) { f.mu.Lock(); f.applied = applied; f.mu.Unlock() }

func (f *fakeRunner) asked() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.waited...)
}

// request runs h behind readOwnWrites as user and returns its error.
func (s *Server) requestAs(user domain.UserID, method string, h echo.HandlerFunc) error {
	c := s.echo.NewContext(httptest.NewRequest(method, "/", nil), httptest.NewRecorder())
	c.Set(ctxUser, user)
	return s.readOwnWrites(h)(c)
}

// TestReadOwnWritesBehind: a creator's read while the read models are still
// behind the creator's own write after the wait answers 503 unavailable
// without running the handler (which would answer without the write, e.g.
// 404 for the job just submitted); once they pass it, the read runs.
func TestReadOwnWritesBehind(t *testing.T) {
	r := &fakeRunner{applied: 10}
	s := &Server{Config: Config{Runner: r}, echo: echo.New(), writes: newWriteMarks()}
	ran := 0
	read := func(echo.Context) error { ran++; return nil }
	s.requestAs("alice", http.MethodPost, func(c echo.Context) error { s.wroteForUser(c, 42); return nil })
	if err := s.requestAs("alice", http.MethodGet, read); domain.ErrorCode(err) != domain.CodeUnavailable || ran != 0 {
		t.Fatalf("read behind the creator's write: %v (handler ran %d times), want unavailable and no answer from the read models", err, ran)
	}
	if err := s.requestAs("bob", http.MethodGet, read); err != nil || ran != 1 {
		t.Fatalf("another creator's read: %v (ran %d)", err, ran)
	}
	r.set(42)
	if err := s.requestAs("alice", http.MethodGet, read); err != nil || ran != 2 {
		t.Fatalf("read once the read models passed the write: %v (ran %d)", err, ran)
	}
}

// TestReadOwnWrites: 1. a creator's write answers without waiting and
// leaves a mark; 2. the creator's next read waits for that position, and
// another creator's read does not; 3. once the read models pass it, the
// mark is forgotten and reads wait for nothing; 4. a write never lowers a
// mark.
func TestReadOwnWrites(t *testing.T) {
	r := &fakeRunner{applied: 10}
	s := &Server{Config: Config{Runner: r}, echo: echo.New(), writes: newWriteMarks()}
	noop := func(echo.Context) error { return nil }

	s.requestAs("alice", http.MethodPost, func(c echo.Context) error { s.wroteForUser(c, 42); return nil })
	if got := r.asked(); len(got) != 0 {
		t.Fatalf("step 1: the write waited for %v", got)
	}
	s.requestAs("bob", http.MethodGet, noop)
	if got := r.asked(); len(got) != 0 {
		t.Fatalf("step 2: another creator's read waited for %v", got)
	}
	s.requestAs("alice", http.MethodGet, noop)
	if got := r.asked(); len(got) != 1 || got[0] != 42 {
		t.Fatalf("step 2: the creator's read waited for %v, want [42]", got)
	}
	r.set(42)
	s.requestAs("alice", http.MethodGet, noop)
	s.requestAs("alice", http.MethodGet, noop)
	if got := r.asked(); len(got) != 2 {
		t.Fatalf("step 3: reads waited for %v, want [42 42] (the mark forgotten once passed)", got)
	}
	s.requestAs("alice", http.MethodPost, func(c echo.Context) error { s.wroteForUser(c, 50); return nil })
	s.requestAs("alice", http.MethodPost, func(c echo.Context) error { s.wroteForUser(c, 45); return nil })
	if got := s.writes.mark("alice"); got != 50 {
		t.Fatalf("step 4: mark %d after writes at 50 and 45, want 50", got)
	}
}

// TestWriteMarksFull: with writeMarksMax creators marked, marks the read
// models passed make room; when none has, the write must wait itself.
func TestWriteMarksFull(t *testing.T) {
	w := newWriteMarks()
	for i := range writeMarksMax {
		w.marks[domain.UserID(strconv.Itoa(i))] = uint64(100 + i%2)
	}
	if w.wrote("new", 200, func(p uint64) bool { return false }) {
		t.Fatal("a mark was taken with no room and nothing projected")
	}
	if !w.wrote("new", 200, func(p uint64) bool { return p <= 100 }) {
		t.Fatal("no room made although half the marks were projected")
	}
	if len(w.marks) != writeMarksMax/2+1 {
		t.Fatalf("%d marks kept, want %d", len(w.marks), writeMarksMax/2+1)
	}
}
