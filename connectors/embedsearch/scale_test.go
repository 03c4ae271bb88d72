package embedsearch

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"feedline/schemas"
)

func lamp(sku string, version uint64) schemas.ProductChange {
	p := schemas.Product{ID: schemas.ProductID("shop", sku), Partner: "shop", SKU: sku, Title: "Lamp " + sku, Brand: "Lumo",
		Price: 1000, Currency: "KRW", Availability: schemas.InStock, Version: version}
	return schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: version, Product: &p}
}

// TestCachedAnswersFollowChanges: a repeated search may come from the
// cache, but never from before a change was applied, and what a caller
// does to an answer does not reach the next one.
func TestCachedAnswersFollowChanges(t *testing.T) {
	ix := openTemp(t)
	ctx := t.Context()
	if _, err := ix.Apply(ctx, []schemas.ProductChange{lamp("a", 1)}); err != nil {
		t.Fatal(err)
	}
	r := schemas.SearchRequest{Text: "lamp"}
	first, err := ix.Search(ctx, r)
	if err != nil || first.Total != 1 {
		t.Fatalf("first search: %v, total %d", err, first.Total)
	}
	first.Hits[0].Title = "changed by the caller"
	first.Facets["brand"][0].Count = 99
	again, err := ix.Search(ctx, r)
	if err != nil || again.Hits[0].Title != "Lamp a" || again.Facets["brand"][0].Count != 1 {
		t.Fatalf("repeated search: %v, %+v", err, again)
	}
	for i, c := range []schemas.ProductChange{lamp("b", 1), {Kind: schemas.ChangeDelete, ID: schemas.ProductID("shop", "a"), Version: 2}} {
		if _, err := ix.Apply(ctx, []schemas.ProductChange{c}); err != nil {
			t.Fatal(err)
		}
		res, err := ix.Search(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint64{2, 1}[i]; res.Total != want {
			t.Errorf("after change %d: total %d, want %d", i, res.Total, want)
		}
	}
}

// TestCachedAnswersKeepCurrenciesApart: the same price search in another
// currency is another search for the answer cache, while a search that
// compares no prices is one answer whichever currency it names.
func TestCachedAnswersKeepCurrenciesApart(t *testing.T) {
	ix := openTemp(t)
	ctx := t.Context()
	usd := lamp("u", 1)
	usd.Product.Currency = "USD"
	if _, err := ix.Apply(ctx, []schemas.ProductChange{lamp("k", 1), usd}); err != nil {
		t.Fatal(err)
	}
	lo := int64(1000)
	for range 2 { // the second round answers from the cache
		for _, cur := range []string{"KRW", "USD", "KRW"} {
			res, err := ix.Search(ctx, schemas.SearchRequest{Text: "lamp", MinPrice: &lo, Currency: cur})
			if err != nil || len(res.Hits) != 1 || res.Hits[0].Currency != cur {
				t.Fatalf("lamps from %d in %s: %v %+v", lo, cur, err, res.Hits)
			}
		}
	}
	plain := schemas.SearchRequest{Text: "lamp", Currency: "KRW"}
	p1, _ := ix.plan(plain)
	plain.Currency = "USD"
	p2, _ := ix.plan(plain)
	if keyOf(p1, plain) != keyOf(p2, plain) {
		t.Error("a search without prices is cached apart per currency named")
	}
}

// TestWarmingOnOpen: an index reopened over existing products answers
// while it warms, and closing it at once does not wait for the warming to
// read everything.
func TestWarmingOnOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	changes := make([]schemas.ProductChange, 300)
	for i := range changes {
		changes[i] = lamp(fmt.Sprintf("s%03d", i), 1)
	}
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ix, err = Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "lamp"})
		if err != nil || res.Total != 300 {
			t.Errorf("search while warming: %v, total %d", err, res.Total)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSegmentCacheFollowsUpdates: ids and facet values read through the
// segment cache stay right while products are rewritten and deleted over
// many batches (new segments, merges, deleted documents in old ones).
func TestSegmentCacheFollowsUpdates(t *testing.T) {
	ix := openTemp(t)
	ctx := t.Context()
	brand := map[string]string{}
	put := func(sku, b string, v uint64) schemas.ProductChange {
		c := lamp(sku, v)
		c.Product.Brand = b
		brand[c.ID] = b
		return c
	}
	for round := range 6 {
		var changes []schemas.ProductChange
		for i := range 400 {
			sku := fmt.Sprintf("s%04d", (round*250+i)%1200)
			id := schemas.ProductID("shop", sku)
			switch v := uint64(round + 1); {
			case i%9 == 0:
				changes = append(changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: id, Version: v})
				delete(brand, id)
			default:
				changes = append(changes, put(sku, fmt.Sprintf("B%d", (i+round)%4), v))
			}
		}
		if _, err := ix.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		var ids []string
		for id, b := range brand {
			want[b]++
			ids = append(ids, id)
		}
		slices.Sort(ids)
		// Relevance without text orders by id: every id comes through the cache.
		var got []string
		r := schemas.SearchRequest{Sort: schemas.SortRelevance, Limit: schemas.SearchMaxLimit}
		for {
			res, err := ix.Search(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if r.Cursor == "" {
				for _, f := range res.Facets["brand"] {
					if want[f.Value] != f.Count {
						t.Errorf("round %d: brand %s counted %d, want %d", round, f.Value, f.Count, want[f.Value])
					}
				}
			}
			for _, h := range res.Hits {
				got = append(got, h.ID)
				if h.Brand != brand[h.ID] {
					t.Errorf("round %d: %s has brand %q, want %q", round, h.ID, h.Brand, brand[h.ID])
				}
			}
			if res.NextCursor == "" {
				break
			}
			r.Cursor = res.NextCursor
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("round %d: %d hits in order differ from the %d products", round, len(got), len(ids))
		}
	}
}

// TestConcurrentSameSearch: searches for the same thing at once, one of
// them cancelled, each get the whole answer or their own cancellation.
func TestConcurrentSameSearch(t *testing.T) {
	ix := openTemp(t)
	changes := make([]schemas.ProductChange, 500)
	for i := range changes {
		changes[i] = lamp(fmt.Sprintf("s%03d", i), 1)
	}
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ctx := t.Context()
			if i == 0 {
				ctx = cancelled
			}
			res, err := ix.Search(ctx, schemas.SearchRequest{Text: "lamp", Limit: 7})
			switch {
			case i == 0 && err == nil && res.Total != 500:
				t.Errorf("cancelled search answered total %d", res.Total)
			case i != 0 && (err != nil || res.Total != 500 || len(res.Hits) != 7):
				t.Errorf("search %d: %v, total %d, %d hits", i, err, res.Total, len(res.Hits))
			}
		})
	}
	wg.Wait()
}
