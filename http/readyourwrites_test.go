package http

import (
	"context"
	"errors"
	"log/slog"
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

// sharedMarks is a WriteMarks shared by the test's servers, as the
// write_marks table is by API processes; err makes every call fail.
type sharedMarks struct {
	mu    sync.Mutex
	marks map[domain.UserID]uint64
	err   error
}

var _ WriteMarks = (*sharedMarks)(nil)

func (m *sharedMarks) Wrote(_ context.Context, user domain.UserID, position uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.marks[user] = max(m.marks[user], position)
	return nil
}

func (m *sharedMarks) Mark(_ context.Context, user domain.UserID) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.marks[user], m.err
}

func newSharedServer(r *fakeRunner, marks *sharedMarks) *Server {
	return &Server{Config: Config{Runner: r, WriteMarks: marks}, echo: echo.New(), log: slog.New(slog.DiscardHandler), writes: newWriteMarks()}
}

// TestReadOwnWritesShared: 1. a creator's write through process A answers
// without waiting; 2. the creator's read through process B, which took no
// write, waits for it and answers 503 while the read models are behind;
// 3. once they pass it, the read through B runs; 4. a later write through
// B, the read models behind again, makes A's read wait for B's position.
func TestReadOwnWritesShared(t *testing.T) {
	r := &fakeRunner{applied: 10}
	marks := &sharedMarks{marks: map[domain.UserID]uint64{}}
	a, b := newSharedServer(r, marks), newSharedServer(r, marks)
	ran := 0
	read := func(echo.Context) error { ran++; return nil }

	a.requestAs("alice", http.MethodPost, func(c echo.Context) error { a.wroteForUser(c, 42); return nil })
	if got := r.asked(); len(got) != 0 {
		t.Fatalf("step 1: the write waited for %v", got)
	}
	if err := b.requestAs("alice", http.MethodGet, read); domain.ErrorCode(err) != domain.CodeUnavailable || ran != 0 {
		t.Fatalf("step 2: read through B behind A's write: %v (ran %d), want unavailable", err, ran)
	}
	if got := r.asked(); len(got) != 1 || got[0] != 42 {
		t.Fatalf("step 2: B's read waited for %v, want [42]", got)
	}
	r.set(42)
	if err := b.requestAs("alice", http.MethodGet, read); err != nil || ran != 1 {
		t.Fatalf("step 3: read through B once projected: %v (ran %d)", err, ran)
	}
	b.requestAs("alice", http.MethodPost, func(c echo.Context) error { b.wroteForUser(c, 60); return nil })
	if err := a.requestAs("alice", http.MethodGet, read); domain.ErrorCode(err) != domain.CodeUnavailable || ran != 1 {
		t.Fatalf("step 4: read through A behind B's write: %v (ran %d), want unavailable", err, ran)
	}
}

// TestReadOwnWritesSharedFails: a write whose shared mark cannot be written
// waits for the read models itself; a read whose shared mark cannot be
// read answers 503 rather than risk not showing the creator's write.
func TestReadOwnWritesSharedFails(t *testing.T) {
	r := &fakeRunner{applied: 10}
	marks := &sharedMarks{marks: map[domain.UserID]uint64{}, err: errors.New("database away")}
	s := newSharedServer(r, marks)
	ran := 0
	s.requestAs("alice", http.MethodPost, func(c echo.Context) error { s.wroteForUser(c, 42); return nil })
	if got := r.asked(); len(got) != 1 || got[0] != 42 {
		t.Fatalf("the write with no shared mark waited for %v, want [42]", got)
	}
	if err := s.requestAs("bob", http.MethodGet, func(echo.Context) error { ran++; return nil }); domain.ErrorCode(err) != domain.CodeUnavailable || ran != 0 {
		t.Fatalf("read with the shared mark unreadable: %v (ran %d), want unavailable", err, ran)
	}
}
