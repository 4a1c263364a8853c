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

// seen forgets user's mark if it is still position: the read models have
// passed it.
func (w *writeMarks) seen(user domain.UserID, position uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.marks[user] == position {
		delete(w.marks, user)
	}
}

// wroteForUser answers a creator's write without waiting for the read
// models: the creator's next read waits instead (readOwnWrites).
func (s *Server) wroteForUser(c echo.Context, position uint64) {
	if position == 0 {
		return
	}
	if !s.writes.wrote(userOf(c), position, s.projected) {
		s.waitRead(c.Request().Context(), position)
	}
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
		if pos := s.writes.mark(user); pos > 0 {
			s.waitRead(c.Request().Context(), pos)
			if !s.projected(pos) {
				return errReadModelsBehind
			}
			s.writes.seen(user, pos)
		}
		return next(c)
	}
}
