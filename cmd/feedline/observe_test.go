package main

import (
	"net/http"
	"slices"
	"testing"
)

// TestReadyzCoversEveryStage: /readyz waits for the consumer of every
// stage the process runs, the several of analytics and fan-out included,
// and names the one that is not bound.
func TestReadyzCoversEveryStage(t *testing.T) {
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
