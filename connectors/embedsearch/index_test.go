package embedsearch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/registry"

	"feedline/connectors/searchtest"
	"feedline/schemas"
)

func openTemp(t *testing.T) *Index {
	t.Helper()
	ix, err := Open(filepath.Join(t.TempDir(), "products"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := ix.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ix
}

func TestContract(t *testing.T) {
	searchtest.Run(t, func(t *testing.T) schemas.ProductIndex { return openTemp(t) })
}

func TestAnalyzer(t *testing.T) {
	a := newTextAnalyzer()
	cases := map[string][]string{
		"삼성 무선 이어폰":            {"삼성", "무선", "이어", "어폰"},
		"무선이어폰":                {"무선", "선이", "이어", "어폰"},
		"폰 케이스":                {"폰", "케이", "이스"},
		"갤럭시S24 울트라":           {"갤럭", "럭시", "s24", "울트", "트라"},
		"USB-C충전기":             {"usb", "c", "충전", "전기"},
		"Wireless Earbuds":     {"wireless", "earbud"},
		"ＷＩＲＥＬＥＳＳ":             {"wireless"},
		"Running Shoes, boxes": {"running", "shoe", "box"},
		"bus glass":            {"bus", "glass"},
	}
	for in, want := range cases {
		if got := terms(a, in); !slices.Equal(got, want) {
			t.Errorf("analyse(%q) = %q, want %q", in, got, want)
		}
	}
}

// Without Hangul, the text analyser bigrams exactly as bleve's cjk analyzer.
func TestAnalyzerMatchesBleveCJK(t *testing.T) {
	cache := registry.NewCache()
	stock, err := cache.AnalyzerNamed(cjk.AnalyzerName)
	if err != nil {
		t.Fatal(err)
	}
	ours := newTextAnalyzer()
	for _, in := range []string{
		"東京タワー", "我爱北京天安门", "中 文", "日本語のテキスト", "ｶﾀｶﾅ", "abc 中文 def", "一", "中文abc中文",
	} {
		if got, want := terms(ours, in), terms(stock, in); !slices.Equal(got, want) {
			t.Errorf("%q: %q, bleve cjk %q", in, got, want)
		}
	}
}

func terms(a analysis.Analyzer, s string) []string {
	var out []string
	for _, tok := range a.Analyze([]byte(s)) {
		out = append(out, string(tok.Term))
	}
	return out
}

func sample(i int) schemas.Product {
	return schemas.Product{
		ID:           schemas.ProductID("shop", fmt.Sprintf("%05d", i)),
		Partner:      "shop",
		SKU:          fmt.Sprintf("%05d", i),
		Title:        fmt.Sprintf("무선 이어폰 model %d", i),
		Brand:        "삼성",
		Category:     []string{"전자제품", "음향기기"},
		Price:        int64(1000 + i),
		Currency:     "KRW",
		Availability: schemas.InStock,
		UpdatedAt:    time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC),
		Version:      1,
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var changes []schemas.ProductChange
	for i := range 300 {
		changes = append(changes, searchtest.Upserts(sample(i))...)
	}
	changes = append(changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: sample(5).ID, Version: 2})
	first, err := ix.Apply(t.Context(), changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix, err = Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer ix.Close()
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "이어폰", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 299 {
		t.Errorf("after reopen: %d hits, want 299", res.Total)
	}
	got, err := ix.Get(t.Context(), sample(7).ID)
	if err != nil || !reflect.DeepEqual(got, sample(7)) {
		t.Errorf("Get after reopen: %+v, %v", got, err)
	}
	// Versions and tombstones survive too: the same batch is a replay.
	again, err := ix.Apply(t.Context(), changes)
	if err != nil {
		t.Fatal(err)
	}
	if again.Indexed != first.Indexed || again.Deleted != first.Deleted || again.Stale != first.Stale {
		t.Errorf("replay after reopen: %+v, first run %+v", again, first)
	}
	if _, err := ix.Get(t.Context(), sample(5).ID); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("tombstoned product after reopen: %v", err)
	}
}

func TestOpenEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir)
	if err != nil {
		t.Fatalf("Open on an empty directory: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index_meta.json")); err != nil {
		t.Errorf("index not created in %s: %v", dir, err)
	}
}

func TestOpenRejectsOtherDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ix, err := Open(dir); err == nil {
		ix.Close()
		t.Fatal("Open accepted a directory holding no index")
	}
}

func TestApplyRejectsMalformedChanges(t *testing.T) {
	ix := openTemp(t)
	p := sample(1)
	for name, c := range map[string]schemas.ProductChange{
		"no id":         {Kind: schemas.ChangeUpsert, Version: 1, Product: &p},
		"no product":    {Kind: schemas.ChangeUpsert, ID: p.ID, Version: 1},
		"other product": {Kind: schemas.ChangeUpsert, ID: "shop:other", Version: 1, Product: &p},
		"unknown kind":  {Kind: "merge", ID: p.ID, Version: 1},
	} {
		good := searchtest.Upserts(sample(2))
		if _, err := ix.Apply(t.Context(), append(good, c)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Nothing of a rejected call is applied.
	if _, err := ix.Get(t.Context(), sample(2).ID); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("product from a rejected call: %v", err)
	}
}

func TestUnknownSort(t *testing.T) {
	ix := openTemp(t)
	if _, err := ix.Search(t.Context(), schemas.SearchRequest{Sort: "cheapest"}); err == nil {
		t.Error("unknown sort accepted")
	}
}

// Relevance ties (same text, same field lengths) are ordered by id.
func TestRelevanceTiesByID(t *testing.T) {
	ix := openTemp(t)
	var changes []schemas.ProductChange
	for _, i := range []int{9, 3, 7, 1, 5} {
		changes = append(changes, searchtest.Upserts(sample(i))...)
	}
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "무선"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range res.Hits {
		got = append(got, h.ID)
	}
	want := []string{sample(1).ID, sample(3).ID, sample(5).ID, sample(7).ID, sample(9).ID}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Searches and Gets run while batches are applied; every search sees a
// consistent catalog of whole products.
func TestConcurrentSearchDuringApply(t *testing.T) {
	ix := openTemp(t)
	const batches, size = 10, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "이어폰", Sort: schemas.SortPriceAsc})
				if err != nil {
					errs <- err
					return
				}
				if res.Total%size != 0 {
					errs <- fmt.Errorf("search saw a partial batch: %d hits", res.Total)
					return
				}
				for _, h := range res.Hits {
					if h.Title == "" {
						errs <- fmt.Errorf("hit %s has no title", h.ID)
						return
					}
				}
			}
		})
	}
	for b := range batches {
		var changes []schemas.ProductChange
		for i := range size {
			changes = append(changes, searchtest.Upserts(sample(b*size+i))...)
		}
		if _, err := ix.Apply(t.Context(), changes); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFlush(t *testing.T) {
	ix := openTemp(t)
	if _, err := ix.Apply(t.Context(), searchtest.Upserts(sample(1))); err != nil {
		t.Fatal(err)
	}
	if err := ix.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// Concurrent calls carrying different versions of the same products end with
// the highest version of each, whatever order the calls run in.
func TestConcurrentApplySameProducts(t *testing.T) {
	ix := openTemp(t)
	const products, versions = 50, 8
	var wg sync.WaitGroup
	for v := 1; v <= versions; v++ {
		wg.Go(func() {
			var changes []schemas.ProductChange
			for i := range products {
				p := sample(i)
				p.Title = fmt.Sprintf("무선 이어폰 v%d", v)
				p.Version = uint64(v)
				changes = append(changes, searchtest.Upserts(p)...)
			}
			if _, err := ix.Apply(t.Context(), changes); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range products {
		p, err := ix.Get(t.Context(), sample(i).ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("무선 이어폰 v%d", versions); p.Title != want || p.Version != versions {
			t.Errorf("%s: %q version %d, want %q", p.ID, p.Title, p.Version, want)
		}
	}
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: fmt.Sprintf("v%d", versions)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != products {
		t.Errorf("search finds %d products at the last version, want %d", res.Total, products)
	}
}

func TestApplyAfterClose(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "products"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Apply(t.Context(), searchtest.Upserts(sample(1))); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
}

func TestOpenRejectsOtherLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.setInternal(t.Context(), schemaKey, []byte("feedline-products-0")); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if ix, err := Open(dir); !errors.Is(err, ErrIncompatible) {
		if err == nil {
			ix.Close()
		}
		t.Errorf("Open of another layout: %v, want ErrIncompatible", err)
	}
}

// Versions are the upload's sequence and the row number; rows such as
// 65481 (0xFFC9) put 0xFF bytes in them, which doc values use as a separator.
func TestVersionsWithFFBytesRoundTrip(t *testing.T) {
	ix := openTemp(t)
	ctx := context.Background()
	var first []schemas.ProductChange
	for row := uint64(0xFF00); row < 0xFF00+300; row++ {
		p := schemas.Product{ID: fmt.Sprintf("acme:%d", row), Partner: "acme", Title: "Kettle", Price: 1000, Currency: "KRW", Availability: schemas.InStock}
		first = append(first, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: 1<<32 | row, Product: &p})
	}
	if res, err := ix.Apply(ctx, first); err != nil || res.Indexed != 300 {
		t.Fatalf("first apply: %+v %v", res, err)
	}
	// Replaying is "already applied"; an older version is stale; a newer one wins.
	if res, err := ix.Apply(ctx, first); err != nil || res.Indexed != 300 || res.Stale != 0 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	older := first[0]
	older.Version = 1<<32 | 0xFE
	if res, err := ix.Apply(ctx, []schemas.ProductChange{older}); err != nil || res.Stale != 1 {
		t.Fatalf("older version: %+v %v", res, err)
	}
	newer := first[1]
	np := *newer.Product
	np.Price, np.Version = 900, 2<<32|0xFFFF
	newer.Product, newer.Version = &np, 2<<32|0xFFFF
	if res, err := ix.Apply(ctx, []schemas.ProductChange{newer}); err != nil || res.Indexed != 1 || res.Stale != 0 {
		t.Fatalf("newer version: %+v %v", res, err)
	}
	got, err := ix.Get(ctx, newer.ID)
	if err != nil || got.Price != 900 || got.Version != 2<<32|0xFFFF {
		t.Errorf("after newer: %+v %v", got, err)
	}
}

func TestProductsReadsManyAndSkipsMissingAndTombstones(t *testing.T) {
	ix := openTemp(t)
	a, b := sample(1), sample(2)
	changes := searchtest.Upserts(a, b)
	changes = append(changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: b.ID, Version: b.Version + 1})
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Products(t.Context(), []string{a.ID, b.ID, "nobody:x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[a.ID].Title != a.Title {
		t.Errorf("Products %+v", got)
	}
	if got, err := ix.Products(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v %v", got, err)
	}
}
