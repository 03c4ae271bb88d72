package parquetsink

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"feedline/schemas"
)

// BenchmarkWriteProductChanges writes batches of 10,000 product changes of
// one day, each Write one durable file, and reports rows/s and file bytes
// per row for the default codec and for snappy.
func BenchmarkWriteProductChanges(b *testing.B) {
	const batchRows = 10_000
	for _, bc := range []struct {
		name  string
		codec compress.Codec
	}{
		{"zstd", &parquet.Zstd},
		{"snappy", &parquet.Snappy},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(dir, WithCompression(bc.codec))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := schemas.AnalyticsBatch{ProductChanges: benchProductChanges(batchRows)}
			ctx := context.Background()
			start := time.Now()
			writes := 0
			for b.Loop() {
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
				writes++
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(writes*batchRows)/elapsed.Seconds(), "rows/s")
			paths, err := tableFiles(dir, schemas.TableProductChanges)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(dirBytes(b, paths))/float64(writes*batchRows), "file-B/row")
		})
	}
}

func dirBytes(b *testing.B, paths []string) int64 {
	var n int64
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

// benchProductChanges varies ids, titles and prices the way a real feed
// does, so file sizes are not flattered by repetition.
func benchProductChanges(n int) []schemas.ProductChangeRow {
	colours := []string{"schwarz", "weiß", "rot", "blau", "grün", "grau", "beige"}
	rows := productChanges(n, day1)
	for i := range rows {
		h := uint64(i) * 0x9E3779B97F4A7C15
		rows[i].EventID = ulid.Make().String()
		rows[i].ProductID = fmt.Sprintf("acme:%016x", h)
		rows[i].SKU = fmt.Sprintf("%016x", h)
		rows[i].Title = fmt.Sprintf("Modell %d %s, Größe %d", h%100_000, colours[h%7], 36+h%12)
		rows[i].Brand = fmt.Sprintf("Marke %d", h%200)
		rows[i].Price = int64(h % 100_000)
		rows[i].Version = uint64(i)
	}
	return rows
}
