package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Two chained stages on the embedded server: a write's trace and its
// acceptance time reach the second stage through the NATS headers alone,
// and each batch's span continues the trace, or links it when the batch
// mixes writes.
func TestTraceAndAcceptanceTimeTravelThroughStages(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	r := quietRunner(b, WithTracing(tp))

	var mu sync.Mutex
	seen := map[string]*Message{}
	first := Stage{Name: "first", Stream: streamRaw, BatchSize: 16, Linger: 300 * time.Millisecond,
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			_, err := r.pub.Publish(ctx, Outgoing{Subject: "catalog.product.acme", MsgID: "p-" + string(m.Data), Data: m.Data})
			return err
		})}
	second := Stage{Name: "second", Stream: streamProducts, BatchSize: 1,
		Middleware: []Middleware{RecordFreshness(r.metrics, SinkSearch)},
		Handle: PerMessage(func(_ context.Context, m *Message) error {
			mu.Lock()
			seen[string(m.Data)] = m
			mu.Unlock()
			return nil
		})}
	defer runStage(t, r, first)()
	defer runStage(t, r, second)()

	accepted := time.Now().Add(-time.Minute).UTC()
	var writes []trace.SpanContext
	for _, id := range []string{"a", "b"} {
		ctx, span := tp.Tracer("test").Start(context.Background(), "POST "+id)
		ctx = WithAccepted(ctx, accepted)
		if _, err := r.pub.Publish(ctx, Outgoing{Subject: "catalog.raw.acme", MsgID: "r-" + id, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
		span.End()
		writes = append(writes, span.SpanContext())
	}
	waitFor(t, "both writes at the second stage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	})

	for i, id := range []string{"a", "b"} {
		m := seen[id]
		if at, ok := m.Accepted(); !ok || !at.Equal(accepted) {
			t.Errorf("%s: accepted %v %v, want %v carried from the write", id, at, ok, accepted)
		}
		if sc := m.TraceContext(); sc.TraceID() != writes[i].TraceID() && !linked(exp.GetSpans(), writes[i].TraceID()) {
			t.Errorf("%s: trace %s reached the second stage, the write was %s and no span links it", id, sc.TraceID(), writes[i].TraceID())
		}
	}
	waitFor(t, "the second stage's spans", func() bool { return len(spansNamed(exp.GetSpans(), "second")) == 2 })
	for i, w := range writes {
		var stages []string
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == w.TraceID() || hasLink(s, w.TraceID()) {
				stages = append(stages, s.Name)
			}
		}
		if !contains(stages, "first") || !contains(stages, "second") {
			t.Errorf("write %d: spans of its trace %v, want first and second", i, stages)
		}
	}
	for _, s := range spansNamed(exp.GetSpans(), "second") {
		if s.SpanKind != trace.SpanKindConsumer || !s.Parent.IsValid() {
			t.Errorf("span %s: kind %v, parent %v; want a consumer span continuing a trace", s.Name, s.SpanKind, s.Parent)
		}
	}
	if n := testutil.CollectAndCount(r.metrics.Freshness); n != 1 {
		t.Errorf("freshness series: %d, want the search sink's", n)
	}
	if got := histogramCount(t, r.metrics, "feedline_freshness_seconds"); got != 2 {
		t.Errorf("freshness observations: %d, want 2", got)
	}
}

// Without a tracer provider nothing is traced, and acceptance times still travel.
func TestUntracedRunnerStampsAcceptanceTime(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	got := make(chan *Message, 1)
	defer runStage(t, r, Stage{Name: "only", Stream: streamRaw, Handle: PerMessage(func(ctx context.Context, m *Message) error {
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("an untraced runner put a span in the handler's context")
		}
		got <- m
		return nil
	})})()
	before := time.Now()
	publish(t, b, "catalog.raw.acme", "x1", "x")
	m := <-got
	if at, ok := m.Accepted(); !ok || at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("accepted %v %v: a message published outside any delivery is stamped when published", at, ok)
	}
	if m.Metadata.Get(HeaderTraceparent) != "" {
		t.Errorf("untraced publish carries %q", m.Metadata.Get(HeaderTraceparent))
	}
}

func histogramCount(t *testing.T, m *Metrics, name string) uint64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, s := range f.GetMetric() {
				n += s.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func spansNamed(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func hasLink(s tracetest.SpanStub, id trace.TraceID) bool {
	for _, l := range s.Links {
		if l.SpanContext.TraceID() == id {
			return true
		}
	}
	return false
}

func linked(spans tracetest.SpanStubs, id trace.TraceID) bool {
	for _, s := range spans {
		if hasLink(s, id) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
