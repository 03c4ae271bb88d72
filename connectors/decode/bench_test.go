package decode

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/transform"

	"feedline/schemas"
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
		d, err := Open(bytes.NewReader(file), schemas.DecoderOptions{TempDir: dir})
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

// streamRows is how many generated rows the streaming benchmarks decode:
// 6,000,000 rows are about 2 GiB of CSV. FEEDLINE_BENCH_STREAM_ROWS changes it.
func streamRows(b *testing.B) int {
	if s := os.Getenv("FEEDLINE_BENCH_STREAM_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 6_000_000
}

// peakHeap samples the live heap until stop is closed and returns its peak.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// benchmarkStream decodes a generated CSV of streamRows rows that is
// written (and packed, when pack is set) by another goroutine as it is
// read: no file exists, on disk or in memory. It reports the unpacked
// bytes a second and the peak heap.
func benchmarkStream(b *testing.B, pack func(io.Writer) io.WriteCloser) {
	rows := streamRows(b)
	for b.Loop() {
		pr, pw := io.Pipe()
		packed := &countingWriter{w: pw}
		plain := &countingWriter{}
		go func() {
			var dst io.WriteCloser = nopCloser{packed}
			if pack != nil {
				dst = pack(packed)
			}
			plain.w = dst
			err := GenerateCSV(plain, rows, 1)
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
			pw.CloseWithError(err)
		}()
		runtime.GC()
		stop := make(chan struct{})
		peak := peakHeap(stop)
		d, err := Open(pr, schemas.DecoderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			var re *schemas.RowError
			if err != nil && !errors.As(err, &re) {
				b.Fatal(err)
			}
			n++
		}
		close(stop)
		_ = d.Close()
		if n != rows {
			b.Fatalf("decoded %d rows of %d", n, rows)
		}
		b.SetBytes(plain.n)
		b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(plain.n)/(1<<20), "unpacked-MiB")
		b.ReportMetric(float64(packed.n)/(1<<20), "packed-MiB")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// BenchmarkStreamCSV is the baseline of BenchmarkStreamGzip: the same rows,
// generated as they are read, not packed.
func BenchmarkStreamCSV(b *testing.B) { benchmarkStream(b, nil) }

// BenchmarkStreamGzip decodes about 2 GiB of CSV packed with gzip as it is
// generated and packed: memory stays that of a few buffers.
func BenchmarkStreamGzip(b *testing.B) {
	benchmarkStream(b, func(w io.Writer) io.WriteCloser {
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		return zw
	})
}

func BenchmarkMerchantXML(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>x</title>`)
	for i := range benchRows {
		fmt.Fprintf(&buf, "<item><g:id>P%d</g:id><title>Trail item %d 무선</title><link>https://shop.example/p/%d</link><g:price>%d.00 USD</g:price>"+
			"<g:availability>in stock</g:availability><g:brand>TrailCo</g:brand><g:gtin>4006381333931</g:gtin><g:product_type>Outdoor &gt; Camping</g:product_type>"+
			"<g:image_link>https://img.example/%d.jpg</g:image_link><g:additional_image_link>https://img.example/%d-b.jpg</g:additional_image_link>"+
			"<g:shipping><g:country>US</g:country><g:price>4.95 USD</g:price></g:shipping></item>\n", i, i, i, i%500+1, i, i)
	}
	buf.WriteString("</channel></rss>")
	file := buf.Bytes()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		d, err := Open(bytes.NewReader(file), schemas.DecoderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := d.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		_ = d.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVEUCKR decodes the CSV of BenchmarkCSV written in EUC-KR.
func BenchmarkCSVEUCKR(b *testing.B) {
	benchmarkDecode(b, func(w io.Writer, rows int, seed int64) error {
		enc := transform.NewWriter(w, korean.EUCKR.NewEncoder())
		if err := GenerateCSV(enc, rows, seed); err != nil {
			return err
		}
		return enc.Close()
	})
}

// BenchmarkCSVGzip decodes the CSV of BenchmarkCSV packed with gzip.
func BenchmarkCSVGzip(b *testing.B) {
	benchmarkDecode(b, func(w io.Writer, rows int, seed int64) error {
		zw := gzip.NewWriter(w)
		if err := GenerateCSV(zw, rows, seed); err != nil {
			return err
		}
		return zw.Close()
	})
}
