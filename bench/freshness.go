package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Freshness is accept → visible at one sink, from the system's own
// feedline_freshness_seconds histogram.
type Freshness struct {
	Sink     string
	Count    uint64
	P50, P99 float64 // seconds, interpolated within buckets as Prometheus does
}

// ScrapeMetrics reads the metric families a feedline process serves at
// base+"/metrics".
func ScrapeMetrics(ctx context.Context, base string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("read %s/metrics: %s", base, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", base, err)
	}
	return fams, nil
}

// FreshnessOf is every sink's freshness in fams that saw a write, by sink.
func FreshnessOf(fams map[string]*dto.MetricFamily) []Freshness {
	f := fams["feedline_freshness_seconds"]
	if f == nil {
		return nil
	}
	var out []Freshness
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h.GetSampleCount() == 0 {
			continue
		}
		sink := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "sink" {
				sink = l.GetValue()
			}
		}
		out = append(out, Freshness{Sink: sink, Count: h.GetSampleCount(), P50: Quantile(h, 0.5), P99: Quantile(h, 0.99)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sink < out[j].Sink })
	return out
}

// Quantile estimates the q-quantile of h as histogram_quantile does:
// linearly within the bucket it falls in; the highest finite bound when
// it falls in the +Inf bucket.
func Quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, count := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if count >= rank {
			if math.IsInf(upper, 1) {
				return lower
			}
			if count == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(count-below)
		}
		lower, below = upper, count
	}
	return lower
}
