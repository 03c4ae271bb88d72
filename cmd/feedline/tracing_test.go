package main

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// One upload is one connected trace: the API's span for the request, a
// span per batch in ingest, normalise, index, analytics and fan-out, and
// the calls to the embedded index and the Parquet files beneath them, all
// in the upload's trace or linked to it. A post is one trace from the API
// through fan-out and analytics the same way.
func TestUploadAndPostAreEachOneTraceAcrossEveryStage(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { c.Tracing = tp })

	key := ts.addPartner("acme")
	bob := ts.shopper("bob")
	bob.follow("shop", "acme")
	bob.page("", 1)
	ts.setMapping("acme", key, customMapping)
	if st := ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full"); st.Counts.Accepted != 5 {
		t.Fatalf("upload accepted %d, want 5", st.Counts.Accepted)
	}
	upload := spanNamed(t, exp, "POST /v1/partners/:partner/uploads")
	want := []string{"ingest", "normalise", "index", "analytics", "fanout-catalog", "embedsearch apply", "parquet write"}
	waitTrace(t, exp, upload, want)

	postID := bob.post("hello from bob")
	if postID == "" {
		t.Fatal("the post has no id")
	}
	post := spanNamed(t, exp, "POST /v1/posts")
	if post.TraceID() == upload.TraceID() {
		t.Fatal("the post continued the upload's trace")
	}
	waitTrace(t, exp, post, []string{"fanout", "analytics-social", "parquet write"})

	// Reads are not traced; each stage span of the upload's trace continues
	// it (shares its id) or links to it.
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer && s.Name != "POST /v1/partners" && s.Name != "PUT /v1/follows/:kind/:id" &&
			s.Name != "PUT /v1/partners/:partner/mapping" && s.Name != "POST /v1/partners/:partner/uploads" && s.Name != "POST /v1/posts" {
			t.Errorf("server span %q: only writes are traced", s.Name)
		}
	}
	for _, s := range traceOf(exp.GetSpans(), upload) {
		if s.SpanContext.TraceID() != upload.TraceID() && !slices.ContainsFunc(s.Links, func(l sdktrace.Link) bool { return l.SpanContext.TraceID() == upload.TraceID() }) {
			t.Errorf("span %s is neither in the upload's trace nor linked to it", s.Name)
		}
	}
	if r := ts.do(http.MethodGet, "/metrics", "", nil, ""); r.Status != http.StatusOK {
		t.Fatalf("metrics: %d", r.Status)
	}
}

// spanNamed is the span context of the only span called name.
func spanNamed(t *testing.T, exp *tracetest.InMemoryExporter, name string) trace.SpanContext {
	t.Helper()
	var found []trace.SpanContext
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			found = append(found, s.SpanContext)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	return found[0]
}

// traceOf is every span in root's trace or linked to it.
func traceOf(spans tracetest.SpanStubs, root trace.SpanContext) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.SpanContext.TraceID() == root.TraceID() ||
			slices.ContainsFunc(s.Links, func(l sdktrace.Link) bool { return l.SpanContext.TraceID() == root.TraceID() }) {
			out = append(out, s)
		}
	}
	return out
}

// waitTrace waits until root's trace holds a span of each name.
func waitTrace(t *testing.T, exp *tracetest.InMemoryExporter, root trace.SpanContext, names []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !hasAll(traceOf(exp.GetSpans(), root), names) {
		if time.Now().After(deadline) {
			t.Fatalf("trace %s holds %v, want %v", root.TraceID(), spanNames(traceOf(exp.GetSpans(), root)), names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAll(spans tracetest.SpanStubs, names []string) bool {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name] = true
	}
	for _, n := range names {
		if !have[n] {
			return false
		}
	}
	return true
}

// spanNames lists names for a failure message.
func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// A post's fan-out writes to the feed store inside the post's trace: on
// Redis (and a Redis Cluster) each command or pipeline is a child span.
func TestPostTraceReachesTheFeedStore(t *testing.T) {
	eachFeedBackend(t, func(t *testing.T, tune func(*serveConfig)) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { tune(c); c.Tracing = tp })
		redisBacked := ts.sys.cfg.RedisURL != ""
		bob := ts.shopper("bob")
		bob.follow("user", "alice")
		bob.page("", 1)
		id := ts.shopper("alice").post("traced to the store")
		eventually(t, "the post in bob's feed", func() bool { return slices.Contains(bob.feedIDs(), id) })
		post := spanNamed(t, exp, "POST /v1/posts")
		waitTrace(t, exp, post, []string{"fanout"})
		var redisSpans int
		for _, s := range traceOf(exp.GetSpans(), post) {
			if strings.HasPrefix(s.Name, "redis ") {
				redisSpans++
				if s.SpanKind != trace.SpanKindClient || !s.Parent.IsValid() {
					t.Errorf("span %s: kind %v parent %v, want a client span under a stage's", s.Name, s.SpanKind, s.Parent)
				}
			}
		}
		if redisBacked && redisSpans == 0 {
			t.Errorf("no redis span in the post's trace: %v", spanNames(traceOf(exp.GetSpans(), post)))
		}
		if !redisBacked && redisSpans > 0 {
			t.Errorf("%d redis spans without Redis", redisSpans)
		}
	})
}
