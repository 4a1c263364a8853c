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

// dropInvalidRequestID removes a client's X-Request-Id unless it is a valid
// id (1 to 128 bytes of [A-Za-z0-9._-]), so that the server makes one: the
// request id goes into the immutable log as the events' correlation id.
func dropInvalidRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !domain.ValidID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	routes   map[string]bool // registered route templates: the only route labels
}

// routeUnmatched labels the requests that matched no route; methodOther
// those with a method outside metricMethods. Labels come from a fixed set:
// a client must not be able to grow the metrics (and /metrics) at will.
const (
	routeUnmatched = "unmatched"
	methodOther    = "other"
)

// metricMethods are the methods that label metrics as themselves.
var metricMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// knowRoutes records the route templates that may label metrics.
func (m *metrics) knowRoutes(routes []*echo.Route) {
	m.routes = map[string]bool{}
	for _, r := range routes {
		m.routes[r.Path] = true
	}
}

// labels returns the route and method labels of a request.
func (m *metrics) labels(c echo.Context) (route, method string) {
	route, method = c.Path(), c.Request().Method
	if !m.routes[route] {
		route = routeUnmatched
	}
	if !metricMethods[method] {
		method = methodOther
	}
	return route, method
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
		status := c.Response().Status
		route, method := s.metrics.labels(c)
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
		level := s.log.Debug
		if status >= 500 {
			level = s.log.Warn
		}
		level("http", "request_id", requestID(c), "method", method, "route", route,
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
	if s.Roles != nil {
		return plain(c, http.StatusOK, "ok\n"+s.Roles())
	}
	return plain(c, http.StatusOK, "ok")
}
