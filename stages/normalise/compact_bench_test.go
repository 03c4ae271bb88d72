package normalise

import (
	"context"
	"testing"
	"time"

	"feedline/topology"
)

// BenchmarkCompaction measures the product log of a 100,000-product
// partner after its first upload and ten daily full re-uploads, each
// changing 5 % of the prices, dropping 0.1 % and adding 50 products, in
// batches of 1,000 rows as ingest cuts them: its size as written, and
// after one compaction pass, with the pass's time. The log's size is the
// same every run; run it once: -benchtime=1x.
func BenchmarkCompaction(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		bus := connectTestBus(b, ctx)
		pl := newPartnerLog(bus, 100_000)
		pl.batch, pl.changed, pl.goneMille, pl.added = 1000, 5, 1, 50
		for seq := uint64(1); seq <= 11; seq++ {
			pl.upload(b, ctx, seq, seq == 1, true)
		}
		last, err := bus.LastSequence(ctx, topology.StreamProducts)
		if err != nil {
			b.Fatal(err)
		}
		reader(b, ctx, bus, "index", last)
		w := compactor(b, ctx, bus, &logBuffer{})
		msgs, bytes := streamSize(b, ctx, bus)
		b.StartTimer()
		res, err := w.Compact(ctx, Compaction{})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		caughtUpWith(b, ctx, w)
		after, afterBytes := streamSize(b, ctx, bus)
		b.ReportMetric(float64(msgs), "log-msgs")
		b.ReportMetric(float64(bytes)/1e6, "log-MB")
		b.ReportMetric(float64(after), "compacted-msgs")
		b.ReportMetric(float64(afterBytes)/1e6, "compacted-MB")
		b.Logf("%+v", res)
		cancel()
		b.StartTimer()
	}
}
