package http

import (
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rendertrust/rendertrust/domain"
)

func newRequestID() string { return uuid.Must(uuid.NewV7()).String() }

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rendertrust_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rendertrust_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// accessLog logs every request as one structured line and records metrics.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status, route := c.Response().Status, c.Path()
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(route, c.Request().Method).Observe(elapsed.Seconds())
		level := s.log.Debug
		if status >= 500 {
			level = s.log.Warn
		}
		level("http", "request_id", requestID(c), "method", c.Request().Method, "route", route,
			"status", status, "bytes", c.Response().Size, "duration_ms", float64(elapsed.Microseconds())/1000,
			"remote", c.RealIP())
		return nil
	}
}

// requireJSON refuses a request body that is not application/json (415).
func requireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength == 0 {
			return next(c)
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if err != nil || mt != echo.MIMEApplicationJSON {
			return errorf(codeUnsupportedMediaType, "Content-Type must be application/json")
		}
		return next(c)
	}
}

// plain answers a health check with one line of text.
func plain(c echo.Context, status int, text string) error { return c.String(status, text+"\n") }

func (s *Server) healthz(c echo.Context) error { return plain(c, http.StatusOK, "ok") }

func (s *Server) readyz(c echo.Context) error {
	if s.Ready != nil {
		if err := s.Ready(c.Request().Context()); err != nil {
			return errorf(domain.CodeUnavailable, "not ready: %v", domain.ErrorMessage(err))
		}
	}
	return plain(c, http.StatusOK, "ok")
}
