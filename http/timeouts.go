package http

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Connection limits against slow clients (slowloris): a request's head
// must arrive within readHeaderTimeout, a whole request (head and body)
// within Config.ReadTimeout (default readTimeout) except for result
// uploads, which must instead keep up uploadMinBytesPerSecond after
// uploadGrace; an idle keep-alive connection is closed after idleTimeout.
const (
	readHeaderTimeout       = 10 * time.Second
	readTimeout             = 30 * time.Second
	idleTimeout             = 2 * time.Minute
	uploadGrace             = 30 * time.Second
	uploadMinBytesPerSecond = 64 << 10
)

// newHTTPServer returns the net/http server of the API with its timeouts.
func (s *Server) newHTTPServer() *http.Server {
	rt := s.ReadTimeout
	if rt == 0 {
		rt = readTimeout
	}
	return &http.Server{Handler: s.echo, ReadHeaderTimeout: min(readHeaderTimeout, rt), ReadTimeout: rt, IdleTimeout: idleTimeout}
}

// uploadDeadline lifts the server's read timeout from an upload and holds
// it to a minimum rate instead: after uploadGrace, its body must have
// arrived at uploadMinBytesPerSecond on average, or the read fails.
func uploadDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return minRate(uploadGrace, uploadMinBytesPerSecond)(next)
}

// minRate holds a request body to rate bytes a second on average after
// grace, instead of the server's read timeout.
func minRate(grace time.Duration, rate int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rc := http.NewResponseController(c.Response().Writer)
			r := &minRateReader{body: c.Request().Body, rc: rc, start: time.Now(), grace: grace, rate: rate}
			if err := r.extend(); err != nil {
				return next(c) // not a deadline-capable connection (a test recorder): the server's limits hold
			}
			c.Request().Body = r
			return next(c)
		}
	}
}

// minRateReader moves the connection's read deadline as bytes arrive.
type minRateReader struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64 // bytes a second
	read  int64
}

func (r *minRateReader) extend() error {
	due := r.start.Add(r.grace + time.Duration(r.read*int64(time.Second)/r.rate))
	return r.rc.SetReadDeadline(due)
}

func (r *minRateReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.read += int64(n)
	if n > 0 {
		r.extend()
	}
	return n, err
}

func (r *minRateReader) Close() error { return r.body.Close() }
