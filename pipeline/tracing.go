package pipeline

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys the runtime itself sets on every message: the W3C trace
// context of the write the message descends from, and when that write was
// accepted. Both travel from a delivery's context to what its handler
// publishes, so they survive every stage without the stages knowing them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	HeaderAccepted    = "Feedline-Accepted" // RFC 3339 with nanoseconds, UTC
)

// tracerName names the runtime's spans' instrumentation scope.
const tracerName = "feedline/pipeline"

// maxBatchLinks bounds the links of one batch span (the SDK keeps 128).
const maxBatchLinks = 128

type acceptedKey struct{}

// WithAccepted is ctx carrying the time the write it serves was accepted;
// what is published with it is stamped with that time.
func WithAccepted(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, acceptedKey{}, at)
}

// AcceptedFrom is the acceptance time ctx carries.
func AcceptedFrom(ctx context.Context) (time.Time, bool) {
	at, ok := ctx.Value(acceptedKey{}).(time.Time)
	return at, ok
}

// Accepted is when the write m descends from was accepted, from its metadata.
func (m *Message) Accepted() (time.Time, bool) {
	return parseAccepted(m.Metadata.Get(HeaderAccepted))
}

func parseAccepted(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	return at, err == nil
}

// TraceContext is the span context m's metadata carries; not valid when
// it carries none.
func (m *Message) TraceContext() trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), metadataCarrier(m.Metadata))
	return trace.SpanContextFromContext(ctx)
}

// stamp adds to h the trace context of ctx's span and the acceptance time
// ctx carries (or now: a message published outside any delivery starts the
// clock). An acceptance time h already has is kept.
func stamp(ctx context.Context, h nats.Header) nats.Header {
	if h == nil {
		h = nats.Header{}
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagation.TraceContext{}.Inject(ctx, headerCarrier(h))
	}
	if h.Get(HeaderAccepted) == "" {
		at, ok := AcceptedFrom(ctx)
		if !ok {
			at = time.Now()
		}
		h.Set(HeaderAccepted, at.UTC().Format(time.RFC3339Nano))
	}
	return h
}

// headerCarrier lets the propagator write NATS headers as they are spelt,
// since NATS header keys are case-sensitive.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// metadataCarrier reads a delivered message's trace context.
type metadataCarrier Metadata

func (c metadataCarrier) Get(key string) string { return c[key] }
func (c metadataCarrier) Set(key, value string) { c[key] = value }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// startBatch opens the span of one batch of stage and puts it, with the
// batch's earliest acceptance time, in ctx. The span continues the trace of
// the batch's first traced message and links every other trace in the
// batch, so an upload's trace reaches every stage even when batches mix
// uploads. end closes it, given the handler's errors.
func (r *Runner) startBatch(ctx context.Context, stage string, msgs []*Message) (context.Context, func(errs []error)) {
	var first time.Time
	for _, m := range msgs {
		if at, ok := m.Accepted(); ok && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if !first.IsZero() {
		ctx = WithAccepted(ctx, first)
	}
	if r.tracing == nil {
		return ctx, func([]error) {}
	}
	var parent trace.SpanContext
	var links []trace.Link
	seen := map[trace.TraceID]bool{}
	for _, m := range msgs {
		sc := m.TraceContext()
		if !sc.IsValid() || seen[sc.TraceID()] {
			continue
		}
		seen[sc.TraceID()] = true
		if !parent.IsValid() {
			parent = sc
			continue
		}
		if len(links) < maxBatchLinks {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	ctx, span := r.tracing.Tracer(tracerName).Start(ctx, stage,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("feedline.stage", stage),
			attribute.String("messaging.system", "nats"),
			attribute.Int("messaging.batch.message_count", len(msgs)),
			attribute.Int("feedline.batch.traces", len(seen)),
		))
	return ctx, func(errs []error) {
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		if failed > 0 {
			span.SetAttributes(attribute.Int("feedline.batch.failed", failed))
			span.SetStatus(codes.Error, strconv.Itoa(failed)+" of the batch's messages failed")
		}
		span.End()
	}
}

// messageContext is ctx for handling m on its own. When m belongs to
// another trace than the batch's span, a span of m's own trace, linked to
// the batch's, takes the handler's calls, so what it publishes for m
// continues m's trace rather than the batch's first. end closes that span.
func messageContext(ctx context.Context, m *Message) (_ context.Context, end func()) {
	batch := trace.SpanFromContext(ctx)
	if !batch.IsRecording() {
		return ctx, func() {}
	}
	sc := m.TraceContext()
	if !sc.IsValid() || sc.TraceID() == batch.SpanContext().TraceID() {
		return ctx, func() {}
	}
	name := "message"
	if t := tallyOf(ctx); t != nil {
		name = t.stage
	}
	ctx, span := batch.TracerProvider().Tracer(tracerName).Start(trace.ContextWithRemoteSpanContext(ctx, sc), name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: batch.SpanContext()}),
		trace.WithAttributes(attribute.String("feedline.stage", name), attribute.Int64("messaging.message.sequence", int64(m.Sequence))))
	return ctx, func() { span.End() }
}
