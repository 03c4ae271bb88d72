package decode

import (
	"bytes"
	"io"
	"testing"
)

const benchRows = 20_000

func benchmarkDecode(b *testing.B, generate func(io.Writer, int, int64) error) {
	var buf bytes.Buffer
	if err := generate(&buf, benchRows, 1); err != nil {
		b.Fatal(err)
	}
	file := buf.Bytes()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	rows, dir := 0, b.TempDir()
	for b.Loop() {
		d, err := Open(bytes.NewReader(file), Options{TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkCSV(b *testing.B)     { benchmarkDecode(b, GenerateCSV) }
func BenchmarkNDJSON(b *testing.B)  { benchmarkDecode(b, GenerateNDJSON) }
func BenchmarkParquet(b *testing.B) { benchmarkDecode(b, GenerateParquet) }

func BenchmarkGenerateCSV(b *testing.B) {
	for b.Loop() {
		if err := GenerateCSV(io.Discard, benchRows, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
