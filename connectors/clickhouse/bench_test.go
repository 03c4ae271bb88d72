package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"feedline/schemas"
)

// BenchmarkWriteProductChanges measures rows/s into a real server, in the
// batch sizes the analytics stage sends, one writer and four at once.
func BenchmarkWriteProductChanges(b *testing.B) {
	for _, size := range []int{5_000, 10_000} {
		for _, writers := range []int{1, 4} {
			b.Run(fmt.Sprintf("batch=%d/writers=%d", size, writers), func(b *testing.B) {
				s, _ := openSink(b)
				batches := make([]schemas.AnalyticsBatch, 8)
				for i := range batches {
					batches[i] = schemas.AnalyticsBatch{ProductChanges: productChangeRows(i, size)}
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var (
					wg   sync.WaitGroup
					next = make(chan int)
				)
				for range writers {
					wg.Go(func() {
						for i := range next {
							if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for i := range b.N {
					next <- i
				}
				close(next)
				wg.Wait()
				b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "rows/s")
			})
		}
	}
}

// productChangeRows makes rows shaped like a partner upload: distinct
// products, realistic text lengths, a few partners and categories.
func productChangeRows(batch, n int) []schemas.ProductChangeRow {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	categories := []string{"Shoes > Hiking", "Shoes > Running", "Books > Fiction", "Home > Kitchen > Knives", ""}
	rows := make([]schemas.ProductChangeRow, n)
	for i := range rows {
		partner := fmt.Sprintf("partner-%d", i%7)
		sku := fmt.Sprintf("SKU-%d-%08d", batch, i)
		id := partner + ":" + sku
		rows[i] = schemas.ProductChangeRow{
			EventID: id + "@1", ProductID: id, Partner: partner, SKU: sku, UploadID: fmt.Sprintf("01JNC8Q0ZK3V7M4G5X2B9D1R%02d", batch),
			Kind: "upsert", Version: 1, Title: "Lightweight waterproof trail running shoe, men's, size " + fmt.Sprint(38+i%10),
			Brand: "Brand " + fmt.Sprint(i%50), Category: categories[i%len(categories)], Price: int64(1000 + i%9000),
			SalePrice: int64(i % 3 * 500), Currency: "EUR", Availability: "in_stock", ChangedAt: at.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return rows
}
