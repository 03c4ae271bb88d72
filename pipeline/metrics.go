package pipeline

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the per-stage Prometheus series every stage reports.
type Metrics struct {
	Registry  *prometheus.Registry
	In        *prometheus.CounterVec
	Processed *prometheus.CounterVec
	Failed    *prometheus.CounterVec
	Published *prometheus.CounterVec
	Batch     *prometheus.HistogramVec
	Pending   *prometheus.GaugeVec
	Items     *prometheus.CounterVec
	Paused    *prometheus.GaugeVec
	// Freshness is accept → visible per sink; see RecordFreshness.
	Freshness *prometheus.HistogramVec
	// Compacted is what compaction removed from a stream, in messages and
	// bytes.
	Compacted *prometheus.CounterVec
}

// NewMetrics registers the stage series, plus Go and process collectors, on
// a fresh registry (no global state: tests run many pipelines in one process).
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		In: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_stage_messages_in_total", Help: "Messages delivered to a stage.",
		}, []string{"stage"}),
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_stage_messages_processed_total", Help: "Messages a stage handled and acknowledged.",
		}, []string{"stage"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_stage_messages_failed_total", Help: "Messages a stage failed, by outcome (retry, unavailable or dead_letter).",
		}, []string{"stage", "outcome"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_stage_messages_out_total", Help: "Messages a stage published downstream.",
		}, []string{"stage"}),
		Batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "feedline_stage_batch_seconds", Help: "Time a stage spent on one fetched batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"stage"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feedline_stage_consumer_pending", Help: "Messages waiting for a stage (lag): not yet delivered plus delivered but unacknowledged.",
		}, []string{"stage"}),
		Items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_stage_items_total", Help: "Domain items (rows, products) a stage handled, by outcome.",
		}, []string{"stage", "outcome"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feedline_stage_paused", Help: "1 while a stage waits for its unavailable backend instead of fetching.",
		}, []string{"stage"}),
		Freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "feedline_freshness_seconds", Help: "Time from the API accepting a write to a sink (search, analytics, feed) making it visible.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 22),
		}, []string{"sink"}),
		Compacted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedline_compacted_total", Help: "What compaction removed from a stream, by unit (messages or bytes).",
		}, []string{"stream", "unit"}),
	}
	reg.MustRegister(m.In, m.Processed, m.Failed, m.Published, m.Batch, m.Pending, m.Items, m.Paused, m.Freshness, m.Compacted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// zero starts a stage's series at 0, so a dashboard's rates and the
// failures panel show the stage before its first message or failure.
func (m *Metrics) zero(stage string) {
	m.In.WithLabelValues(stage)
	m.Processed.WithLabelValues(stage)
	m.Published.WithLabelValues(stage)
	for _, outcome := range []string{"retry", "unavailable", "dead_letter"} {
		m.Failed.WithLabelValues(stage, outcome)
	}
	m.Paused.WithLabelValues(stage).Set(0)
}

// tally is where a stage's handlers count their work: the runner puts one in
// each batch's context, so whatever a handler publishes with that context,
// and the items it reports, count for its stage.
type tally struct {
	stage   string
	metrics *Metrics
}

type tallyKey struct{}

func tallyOf(ctx context.Context) *tally {
	t, _ := ctx.Value(tallyKey{}).(*tally)
	return t
}

// CountItems records n domain items (rows, products, feed entries) a
// stage's handler dealt with, by outcome ("read", "accepted", "indexed" …),
// as feedline_stage_items_total. ctx is the one the handler was given;
// outside a stage it counts nothing.
func CountItems(ctx context.Context, outcome string, n int64) {
	if t := tallyOf(ctx); t != nil && n > 0 {
		t.metrics.Items.WithLabelValues(t.stage, outcome).Add(float64(n))
	}
}

// published counts a message JetStream stored for the stage handling ctx.
func (t *tally) published() {
	if t != nil {
		t.metrics.Published.WithLabelValues(t.stage).Inc()
	}
}
