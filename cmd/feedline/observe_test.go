package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// TestReadyzCoversEveryStage: /readyz waits for the consumer of every
// stage the process runs, the several of analytics and fan-out included,
// and names the one that is not bound.
func TestReadyzCoversEveryStage(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	eventually(t, "readyz to say ready", func() bool { return ts.do(http.MethodGet, "/readyz", "", nil, "").Status == http.StatusOK })
	want := []string{"analytics", "analytics-search", "analytics-social", "fanout", "fanout-catalog", "index", "ingest", "normalise"}
	got := slices.Sorted(slices.Values(ts.sys.stages))
	if !slices.Equal(got, want) {
		t.Fatalf("readiness covers stages %v, want %v", got, want)
	}
	for _, st := range want {
		bound := ts.sys.runner.Bound()
		if !bound[st] {
			t.Errorf("ready while stage %s is not bound", st)
		}
		bound[st] = false
		if u := unbound(ts.sys.stages, bound); u != st {
			t.Errorf("with %s not bound, readiness names %q", st, u)
		}
	}
}

// dashboardMetrics are the metric names the Grafana dashboard's queries
// name. up is left out: Prometheus makes it per scrape; no target serves it.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "dashboards", "feedline-pipeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc)
	var names []string
	for _, e := range exprs {
		for _, m := range regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`).FindAllStringSubmatch(e, -1) {
			if m[1] != "up" {
				names = append(names, m[1])
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// samples reads a Prometheus text exposition into series -> value, a
// series spelled as the exposition does: name{label="value",…}.
func samples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestDashboardMetricsAreRecorded runs an upload and a search through the
// whole system and finds a sample on /metrics for every metric the Grafana
// dashboard plots; the work done shows as items by outcome and messages out.
func TestDashboardMetricsAreRecorded(t *testing.T) {
	t.Parallel()
	names := dashboardMetrics(t)
	for _, must := range []string{"feedline_stage_items_total", "feedline_stage_messages_out_total", "feedline_stage_messages_failed_total"} {
		if !slices.Contains(names, must) {
			t.Fatalf("the dashboard's queries name %v, not %s: is the file the dashboard?", names, must)
		}
	}
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("metered")
	ts.setMapping("metered", key, customMapping)
	if st := ts.uploadOK("metered", key, delimited(testCatalog, ","), ""); st.State != schemas.StateDone {
		t.Fatalf("upload ended %s: %s", st.State, st.Error)
	}
	ts.search(url.Values{"q": {"kettle"}})

	want := map[string]float64{
		`feedline_stage_items_total{outcome="read",stage="ingest"}`:              7,
		`feedline_stage_items_total{outcome="accepted",stage="normalise"}`:       5,
		`feedline_stage_items_total{outcome="rejected",stage="normalise"}`:       2,
		`feedline_stage_items_total{outcome="indexed",stage="index"}`:            5,
		`feedline_stage_items_total{outcome="written",stage="analytics-search"}`: 1,
	}
	var got map[string]float64
	eventually(t, "the upload's and the search's work counted", func() bool {
		r := ts.do(http.MethodGet, "/metrics", "", nil, "")
		got = samples(t, string(r.Body))
		for series, n := range want {
			if got[series] < n {
				return false
			}
		}
		return true
	})
	for _, series := range []string{`feedline_stage_messages_out_total{stage="ingest"}`, `feedline_stage_messages_out_total{stage="normalise"}`} {
		if got[series] < 1 {
			t.Errorf("%s = %v: the stage published its batches", series, got[series])
		}
	}
	for _, name := range names {
		found := false
		for series := range got {
			if series == name || strings.HasPrefix(series, name+"{") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the dashboard plots %s, which /metrics has no sample of", name)
		}
	}
}

// TestFeedReadsBeforeAStopReachAnalytics: the feed reads the API gathers
// for a second are published when the process stops cleanly, not lost
// with the timer.
func TestFeedReadsBeforeAStopReachAnalytics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startTestSystem(t, dir)
	bob := ts.shopper("bob")
	bob.page("", 20)
	start := time.Now()
	ts.stop()
	t.Logf("stopped %s after the read", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var reads []schemas.FeedEventRow
	if _, err := bus.Replay(ctx, topology.StreamAnalytics, schemas.SubjectFeedRead, func(m *pipeline.Message) error {
		var rows []schemas.FeedEventRow
		if err := json.Unmarshal(m.Data, &rows); err != nil {
			return err
		}
		reads = append(reads, rows...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 1 || reads[0].UserID != "bob" || reads[0].Kind != schemas.FeedEventFeedRead {
		t.Errorf("feed reads in the analytics stream after a stop: %+v, want bob's one", reads)
	}
}
