package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"feedline/connectors/clickhouse"
	"feedline/connectors/embedsearch"
	"feedline/connectors/parquetsink"
	"feedline/pipeline"
	"feedline/schemas"
)

// openTracing builds the tracer provider the standard OTEL_* variables ask
// for (OTEL_TRACES_EXPORTER=otlp|console, OTEL_EXPORTER_OTLP_ENDPOINT …)
// and makes it the process's global one. Tracing is off unless an exporter
// is named: nil then, and nothing is traced.
func openTracing(ctx context.Context) (trace.TracerProvider, func(context.Context) error, error) {
	exporter := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	if exporter == "" || exporter == "none" || strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: %w", exporter, err)
	}
	info := readBuildInfo()
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "feedline"), attribute.String("service.version", info.Version)),
		resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("tracing resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, tp.Shutdown, nil
}

// sinkOf names the sink a stage makes writes visible in, for
// feedline_freshness_seconds; "" for a stage that is no sink.
func sinkOf(stage string) string {
	switch {
	case stage == "index":
		return pipeline.SinkSearch
	case stage == "analytics" || strings.HasPrefix(stage, "analytics-"):
		return pipeline.SinkAnalytics
	case stage == "fanout" || strings.HasPrefix(stage, "fanout-"):
		return pipeline.SinkFeed
	}
	return ""
}

// withFreshness adds the freshness middleware to a sink's stage, innermost,
// so it sees exactly what the handler settled.
func withFreshness(st pipeline.Stage, m *pipeline.Metrics) pipeline.Stage {
	if sink := sinkOf(st.Name); sink != "" {
		st.Middleware = append(slices.Clip(st.Middleware), pipeline.RecordFreshness(m, sink))
	}
	return st
}

// tracerOf is tp's tracer for calls to outside systems.
func tracerOf(tp trace.TracerProvider) trace.Tracer { return tp.Tracer("feedline/backends") }

// call starts the child span of one call to system.
func call(ctx context.Context, tr trace.Tracer, system, op string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.String("db.system.name", system), attribute.String("db.operation.name", op))
	return tr.Start(ctx, system+" "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

func endCall(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// tracedEmbedIndex is the embedded index with a span per write and search;
// every other method (lookups, flush) is the index's own.
type tracedEmbedIndex struct {
	*embedsearch.Index
	tr trace.Tracer
}

func (t tracedEmbedIndex) Apply(ctx context.Context, changes []schemas.ProductChange) (_ schemas.ApplyResult, err error) {
	ctx, span := call(ctx, t.tr, "embedsearch", "apply", attribute.Int("feedline.changes", len(changes)))
	defer func() { endCall(span, err) }()
	return t.Index.Apply(ctx, changes)
}

func (t tracedEmbedIndex) Search(ctx context.Context, r schemas.SearchRequest) (_ schemas.SearchResult, err error) {
	ctx, span := call(ctx, t.tr, "embedsearch", "search")
	defer func() { endCall(span, err) }()
	return t.Index.Search(ctx, r)
}

// tracedTransport gives every Elasticsearch request a span.
type tracedTransport struct {
	next http.RoundTripper
	tr   trace.Tracer
}

func (t tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := call(req.Context(), t.tr, "elasticsearch", req.Method,
		attribute.String("url.path", req.URL.Path), attribute.String("server.address", req.URL.Host))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err == nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, resp.Status)
		}
	}
	endCall(span, err)
	return resp, err
}

func traceTransport(next http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if tp == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return tracedTransport{next: next, tr: tracerOf(tp)}
}

// tracedParquet and tracedClickHouse give every analytics write a span;
// ClickHouse's health check stays its own.
type tracedParquet struct {
	*parquetsink.Sink
	tr trace.Tracer
}

func (t tracedParquet) Write(ctx context.Context, b schemas.AnalyticsBatch) (err error) {
	ctx, span := call(ctx, t.tr, "parquet", "write")
	defer func() { endCall(span, err) }()
	return t.Sink.Write(ctx, b)
}

type tracedClickHouse struct {
	*clickhouse.Sink
	tr trace.Tracer
}

func (t tracedClickHouse) Write(ctx context.Context, b schemas.AnalyticsBatch) (err error) {
	ctx, span := call(ctx, t.tr, "clickhouse", "insert")
	defer func() { endCall(span, err) }()
	return t.Sink.Write(ctx, b)
}

// redisTracing is a go-redis hook giving every command and pipeline a span.
type redisTracing struct{ tr trace.Tracer }

func (h redisTracing) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisTracing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, span := call(ctx, h.tr, "redis", cmd.Name())
		err := next(ctx, cmd)
		if redis.HasErrorPrefix(err, "NOSCRIPT") || errors.Is(err, redis.Nil) {
			endCall(span, nil) // a miss or a script to load is an answer, not a failure
		} else {
			endCall(span, err)
		}
		return err
	}
}

func (h redisTracing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := call(ctx, h.tr, "redis", "pipeline", attribute.Int("db.operation.batch.size", len(cmds)))
		err := next(ctx, cmds)
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		endCall(span, err)
		return err
	}
}
