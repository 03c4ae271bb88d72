package bench

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Quantile agrees with histogram_quantile's interpolation on observed values.
func TestQuantileInterpolatesWithinBuckets(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{1, 2, 4}})
	for _, v := range []float64{0.5, 1.5, 1.5, 3, 10} {
		h.Observe(v)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, want float64 }{
		{0.2, 1},    // rank 1: the end of the first bucket
		{0.5, 1.75}, // rank 2.5: three quarters into (1, 2]
		{0.99, 4},   // in +Inf: the highest finite bound
	} {
		if got := Quantile(m.GetHistogram(), tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(Quantile(&dto.Histogram{}, 0.5)) {
		t.Error("an empty histogram has no quantile")
	}
}
