package api

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"feedline/pipeline"
	"feedline/topology"
)

// Requests are counted by route pattern and status, never by raw path,
// and each write gets a server span named by its route that continues a
// caller's traceparent.
func TestRequestMetricsByRouteAndWriteTraces(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	m := NewHTTPMetrics(reg)
	e := newEnv(t, func(c *Config) { c.HTTPMetrics, c.Tracing = m, tp })

	key := e.createPartner(t, "acme")
	for _, id := range []string{"01aaa", "01bbb"} {
		if r := e.send(t, request(http.MethodGet, "/v1/uploads/"+id, key, nil)); r.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown upload: %d %s", r.StatusCode, r.body)
		}
	}
	e.send(t, request(http.MethodGet, "/no/such/path", "", nil))
	e.send(t, request(http.MethodGet, "/healthz", "", nil))
	caller := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := request(http.MethodPost, "/v1/partners", testAdminKey, jsonBody(map[string]string{"id": "beta"}))
	req.Header.Set("traceparent", caller)
	if r := e.send(t, req); r.StatusCode != http.StatusCreated {
		t.Fatalf("create partner: %d %s", r.StatusCode, r.body)
	}

	for _, tc := range []struct {
		method, route, status string
		want                  float64
	}{
		{"GET", "/v1/uploads/:id", "404", 2},
		{"POST", "/v1/partners", "201", 2},
		{"GET", unmatchedRoute, "404", 1},
		{"GET", "/healthz", "200", 1},
	} {
		got := testutil.ToFloat64(m.requests.WithLabelValues(tc.method, tc.route, tc.status))
		if got != tc.want {
			t.Errorf("%s %s %s: %v requests, want %v", tc.method, tc.route, tc.status, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 4 {
		t.Errorf("%d request series, want 4 (one per route and status)", n)
	}

	var writes []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		writes = append(writes, s)
		if s.Name != "POST /v1/partners" || s.SpanKind != trace.SpanKindServer {
			t.Errorf("span %q kind %v: only writes are traced, named by route", s.Name, s.SpanKind)
		}
	}
	if len(writes) != 2 {
		t.Fatalf("%d write spans, want 2", len(writes))
	}
	if got := writes[1].SpanContext.TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("write with a traceparent started trace %s, want the caller's", got)
	}
}

// TestAScheduledFetchIsTraced: a fetch nobody requested starts a trace of
// its own, and the upload it makes carries that trace down the pipeline.
func TestAScheduledFetchIsTraced(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	e, v := sourcesEnv(t, func(c *Config) { c.Tracing = tp })
	key := e.partnerWithMapping(t, "acme")
	srv := newFeedServer(t, fetchFeed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.app.RunSources(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	e.putSource(t, v, "acme", key, map[string]any{"url": srv.URL + "/feed.csv", "every": "1h", "mode": "full"}, 200)
	var fetch tracetest.SpanStub
	waitFor(t, func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "fetch source" {
				fetch = s
				return true
			}
		}
		return false
	})
	if !slices.Contains(fetch.Attributes, attribute.String("feedline.partner", "acme")) {
		t.Errorf("fetch span attributes %v, want the partner", fetch.Attributes)
	}
	var traced []string
	if _, _, err := e.bus.ReplayFrom(ctx, topology.StreamUploads, "", 1, func(m *pipeline.Message) error {
		traced = append(traced, m.TraceContext().TraceID().String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(traced) != 1 || traced[0] != fetch.SpanContext.TraceID().String() {
		t.Errorf("the fetched upload's event carries traces %v, want the fetch's %s", traced, fetch.SpanContext.TraceID())
	}
}
