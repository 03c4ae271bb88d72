package elasticsearch

import (
	"os"
	"strconv"
	"testing"
	"time"

	"feedline/schemas"
)

// BenchmarkLiveSuggest completes prefixes on the real node of
// FEEDLINE_TEST_ES_URL over FEEDLINE_BENCH_SUGGEST_PRODUCTS generated
// products (default 200,000), loaded under a fresh alias and removed after.
func BenchmarkLiveSuggest(b *testing.B) {
	addr := liveURL(b)
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("FEEDLINE_BENCH_SUGGEST_PRODUCTS")); err == nil && v > 0 {
		n = v
	}
	cfg := liveConfig(addr)
	cfg.Refresh = "false"
	ix, err := Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer dropLive(b, ix)
	ps := benchProducts(n)
	start := time.Now()
	for from := 0; from < n; from += 4000 {
		changes := make([]schemas.ProductChange, 0, 4000)
		for i := from; i < min(from+4000, n); i++ {
			changes = append(changes, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: ps[i].ID, Version: 1, Product: &ps[i]})
		}
		if _, err := ix.Apply(b.Context(), changes); err != nil {
			b.Fatal(err)
		}
	}
	if err := ix.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed %d products in %v", n, time.Since(start).Round(time.Millisecond))
	// The node caches the answers of searches without hits, so a prefix
	// asked again costs little: each op here asks one not asked before.
	var fresh []string
	for _, a := range "abcdefghijklmnopqrstuvwxyz" {
		for _, c := range "abcdefghijklmnopqrstuvwxyz" {
			fresh = append(fresh, string(a)+string(c))
		}
	}
	b.Run("fresh-two-letter-prefix", func(b *testing.B) {
		if b.N > len(fresh) {
			b.Skipf("only %d distinct prefixes: run with -benchtime %dx or less", len(fresh), len(fresh))
		}
		for i := range b.N {
			if _, err := ix.Suggest(b.Context(), schemas.SuggestRequest{Prefix: fresh[i]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, prefix := range []string{"s", "so", "sony", "헤", "무선", "노이즈"} {
		b.Run("q="+prefix, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Suggest(b.Context(), schemas.SuggestRequest{Prefix: prefix}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
