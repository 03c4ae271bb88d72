package embedsearch

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"feedline/schemas"
)

// BenchmarkSuggest completes prefixes of one to four characters, Korean and
// English, over a catalog of FEEDLINE_BENCH_SUGGEST_PRODUCTS products
// (default 200,000). Besides the generated titles, each product has a model
// name drawn from 100,000 made-up words by a Zipf law, so the table holds a
// long tail of rare terms as a real catalog's titles do. It reports the
// table's size and memory, and how long a reopened index takes to count it.
func BenchmarkSuggest(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("FEEDLINE_BENCH_SUGGEST_PRODUCTS")); err == nil && v > 0 {
		n = v
	}
	dir := filepath.Join(b.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	g := catalogGen{rng: rand.New(rand.NewPCG(7, 8))}
	words := rand.NewZipf(rand.New(rand.NewPCG(9, 10)), 1.1, 4, 99_999)
	start := time.Now()
	const batch = 4000
	for from := 0; from < n; from += batch {
		changes := g.batch(fmt.Sprintf("shop%d", from/batch%5), from, min(batch, n-from), 1)
		for _, c := range changes {
			c.Product.Title += " " + madeUpWord(words.Uint64())
		}
		if _, err := ix.Apply(b.Context(), changes); err != nil {
			b.Fatal(err)
		}
	}
	if err := ix.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed %d products in %v", n, time.Since(start).Round(time.Millisecond))
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}
	terms, bytes := tableFootprint(ix.suggest) // with nothing else running
	start = time.Now()
	if ix, err = Open(dir); err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	<-ix.suggestCounted
	counted := time.Since(start)
	// Measured once opening's warming and merging are over.
	<-ix.warmed
	for last := uint64(0); ix.Segments() != last; time.Sleep(2 * time.Second) {
		last = ix.Segments()
	}
	b.Logf("%d suggestion terms, %d bytes in the table (%.0f a term); counted on open in %v",
		terms, bytes, float64(bytes)/float64(terms), counted.Round(time.Millisecond))

	for _, prefix := range []string{"s", "so", "son", "sony", "헤", "헤드", "무선", "k", "kq", "kqa", "zzzz"} {
		b.Run("q="+prefix, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Suggest(b.Context(), schemas.SuggestRequest{Prefix: prefix}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(terms), "terms")
			b.ReportMetric(float64(bytes)/float64(terms), "table-B/term")
			b.ReportMetric(counted.Seconds(), "open-count-s")
		})
	}
}

// madeUpWord spells n in letters only (no digit, so a title word).
func madeUpWord(n uint64) string {
	b := []byte{'k', 'q'}
	for {
		b = append(b, byte('a'+n%26))
		n /= 26
		if n == 0 {
			return string(b)
		}
	}
}

// tableFootprint is how many terms t holds and what a table of them weighs
// on the heap, measured by building a copy.
func tableFootprint(t *suggestTable) (int, uint64) {
	t.mu.RLock()
	counts := make(map[string]int32, len(t.entries))
	for term, e := range t.entries {
		counts[term] = e.count
	}
	t.mu.RUnlock()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	cp := newSuggestTable()
	cp.counted = true
	cp.add(counts)
	cp.top("a", 1) // sorts it in
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(cp)
	// The terms' strings are shared with counts; a table owns its own.
	var strs uint64
	for term := range counts {
		strs += uint64(len(term))
	}
	if after.HeapAlloc < before.HeapAlloc {
		return len(counts), strs // freed more than it took: no figure
	}
	return len(counts), after.HeapAlloc - before.HeapAlloc + strs
}
