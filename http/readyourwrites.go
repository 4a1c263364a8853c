package http

import (
	"context"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

// writeMarksMax bounds the users whose last write the API remembers; when
// it is reached, marks the read models have passed are forgotten, and a
// write that still finds no room waits for the read models itself.
const writeMarksMax = 100_000

// writeMarks is read-your-writes without making a creator's writes wait: a
// submission or cancel answers from the command's own result and leaves the
// log position it reached here; that creator's next read waits (bounded)
// until the read models pass it. Writes whose effect others read (a node's
// report, an admin's grant) still wait before answering.
type writeMarks struct {
	mu    sync.Mutex
	marks map[domain.UserID]uint64
}

func newWriteMarks() *writeMarks { return &writeMarks{marks: map[domain.UserID]uint64{}} }

// wrote records that user's write reached position. It reports false when
// no room is left, so the caller must wait itself.
func (w *writeMarks) wrote(user domain.UserID, position uint64, projected func(uint64) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.marks[user]; !ok && len(w.marks) >= writeMarksMax {
		for u, p := range w.marks {
			if projected(p) {
				delete(w.marks, u)
			}
		}
		if len(w.marks) >= writeMarksMax {
			return false
		}
	}
	w.marks[user] = max(w.marks[user], position)
	return true
}

// mark returns the position user's reads must wait for (0: none).
func (w *writeMarks) mark(user domain.UserID) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.marks[user]
}

// seen forgets user's mark if it is not past position: the read models
// have passed position (a later write's higher mark stays).
func (w *writeMarks) seen(user domain.UserID, position uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.marks[user] <= position {
		delete(w.marks, user)
	}
}

// WriteMarks shares each creator's last write position with the other API
// processes of an installation (cluster.WriteMarks on PostgreSQL), so a
// read through any of them waits for the creator's own writes. Without it
// (one process) the marks live in this process alone.
type WriteMarks interface {
	// Wrote records that user's write reached position; a mark never
	// goes down.
	Wrote(ctx context.Context, user domain.UserID, position uint64) error
	// Mark returns user's last write position (0: none).
	Mark(ctx context.Context, user domain.UserID) (uint64, error)
}

// wroteForUser answers a creator's write without waiting for the read
// models: the creator's next read, here or (with WriteMarks) in another
// process, waits instead (readOwnWrites). When the mark cannot be kept,
// the write waits itself.
func (s *Server) wroteForUser(c echo.Context, position uint64) {
	if position == 0 {
		return
	}
	ctx, user := c.Request().Context(), userOf(c)
	kept := s.writes.wrote(user, position, s.projected)
	if s.WriteMarks != nil {
		if err := s.WriteMarks.Wrote(ctx, user, position); err != nil {
			s.log.Warn("read-your-writes: the shared mark was not written; waiting for the read models", "err", err)
			kept = false
		}
	}
	if !kept {
		s.waitRead(ctx, position)
	}
}

// markOf returns the position user's reads must wait for: the later of
// this process's mark and the shared one.
func (s *Server) markOf(ctx context.Context, user domain.UserID) (uint64, error) {
	pos := s.writes.mark(user)
	if s.WriteMarks == nil {
		return pos, nil
	}
	shared, err := s.WriteMarks.Mark(ctx, user)
	return max(pos, shared), err
}

// projected reports, without waiting, whether the read models show the
// log up to position.
func (s *Server) projected(position uint64) bool {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Runner.WaitFor(done, position) == nil
}

// errReadModelsBehind answers a creator's read when the read models are
// still behind the creator's own last write after the wait: an answer
// without it (a 404 for the job just submitted) would be wrong, so the
// client is told to try again.
var errReadModelsBehind = &domain.Error{Code: domain.CodeUnavailable, Message: "busy: your last change is not visible yet, try again shortly"}

// readOwnWrites makes a creator's read wait (bounded) until the read models
// show the creator's own last write, and answers 503 if they still do not.
func (s *Server) readOwnWrites(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method != http.MethodGet {
			return next(c)
		}
		user := userOf(c)
		pos, err := s.markOf(c.Request().Context(), user)
		if err != nil {
			s.log.Warn("read-your-writes: the shared mark was not read", "err", err)
			return errReadModelsBehind // the read models may not show the creator's write
		}
		if pos > 0 {
			s.waitRead(c.Request().Context(), pos)
			if !s.projected(pos) {
				return errReadModelsBehind
			}
			s.writes.seen(user, pos)
		}
		return next(c)
	}
}
