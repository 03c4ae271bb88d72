package api

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPMetrics are the request series, labelled by the route's pattern (not
// the path, whose ids are unbounded) and the status answered.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the request series on reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_http_requests_total", Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "feedline_http_request_seconds", Help: "Time to answer an HTTP request, by method and route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// unmatchedRoute labels requests no route took (404s, probes of any path).
const unmatchedRoute = "unmatched"

// observe records each request's metrics and gives every write (upload,
// post, follow …) a trace, continuing the caller's traceparent if it sent
// one; what the handler publishes carries that trace down the pipeline.
func (s *server) observe(c *fiber.Ctx) error {
	if s.cfg.HTTPMetrics == nil && s.cfg.Tracing == nil {
		return c.Next()
	}
	start := time.Now()
	var span trace.Span
	if s.cfg.Tracing != nil && isWrite(c.Method()) {
		ctx := propagation.TraceContext{}.Extract(c.UserContext(), requestCarrier{c})
		ctx, span = s.cfg.Tracing.Tracer("feedline/api").Start(ctx, c.Method(),
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Method())))
		c.SetUserContext(ctx)
	}
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		// accessLog answers errors itself; one reaching here is answered 500.
		status = fiber.StatusInternalServerError
		if fe, ok := err.(*fiber.Error); ok {
			status = fe.Code
		}
	}
	route := routeOf(c)
	if m := s.cfg.HTTPMetrics; m != nil {
		m.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(c.Method(), route).Observe(time.Since(start).Seconds())
	}
	if span != nil {
		span.SetName(c.Method() + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(status))
		}
		span.End()
	}
	return err
}

// routeOf is the pattern of the route that answered c.
func routeOf(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Path == "" || r.Method == "USE" || r.Path == "/" {
		return unmatchedRoute
	}
	return r.Path
}

func isWrite(method string) bool {
	switch method {
	case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete:
		return true
	}
	return false
}

// requestCarrier reads a trace context from the request's headers.
type requestCarrier struct{ c *fiber.Ctx }

func (r requestCarrier) Get(key string) string { return r.c.Get(key) }
func (r requestCarrier) Set(string, string)    {}
func (r requestCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }

var _ propagation.TextMapCarrier = requestCarrier{}
