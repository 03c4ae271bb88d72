package embedsearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	index "github.com/blevesearch/bleve_index_api"

	"feedline/connectors/searchtest"
	"feedline/schemas"
)

func partnerProduct(partner string, i int) schemas.Product {
	sku := fmt.Sprintf("SKU-%06d", i)
	sale := int64(9000 + i*7)
	p := schemas.Product{
		ID:           schemas.ProductID(partner, sku),
		Partner:      partner,
		SKU:          sku,
		Title:        fmt.Sprintf("[브랜드%d] 무선 블루투스 이어폰 Wireless Earbuds %d세대", i%17, i%5),
		Description:  fmt.Sprintf("정품, 1년 무상 A/S. Battery %d hours.", 10+i%30),
		Brand:        fmt.Sprintf("브랜드%d", i%17),
		Category:     []string{"디지털", "음향기기", fmt.Sprintf("이어폰 %d", i%4)},
		Price:        int64(12000 + i*13),
		Currency:     "KRW",
		Availability: schemas.InStock,
		URL:          "https://" + partner + ".example.com/products/" + sku + "?utm_source=feed",
		ImageURLs:    []string{"https://img." + partner + ".example.com/p/" + sku + "/main.jpg"},
		GTIN:         fmt.Sprintf("880%010d", i*7919),
		UpdatedAt:    time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC),
		Version:      uint64(i + 1),
	}
	if i%3 == 0 {
		p.SalePrice = &sale
	}
	return p
}

func partnerCatalog(partner string, from, n int) []schemas.Product {
	ps := make([]schemas.Product, n)
	for i := range ps {
		ps[i] = partnerProduct(partner, from+i)
	}
	return ps
}

// storedSource is the stored product of id as the index keeps it.
func storedSource(t *testing.T, ix *Index, id string) []byte {
	t.Helper()
	d, err := ix.bleve.Document(id)
	if err != nil || d == nil {
		t.Fatalf("document %s: %v", id, err)
	}
	var src []byte
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldSource {
			src = append([]byte(nil), f.Value()...)
		}
	})
	return src
}

func checkProducts(t *testing.T, ix *Index, want []schemas.Product) {
	t.Helper()
	for _, p := range want {
		got, err := ix.Get(t.Context(), p.ID)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Fatalf("Get %s = %+v, %v; want %+v", p.ID, got, err, p)
		}
	}
}

func TestStoredProductsAreCompressedPerPartner(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ix.Close() }()

	// A partner seen in a small batch before any dictionary exists: plain.
	small := partnerCatalog("small", 0, 40)
	apply(t, ix, searchtest.Upserts(small...))
	if src := storedSource(t, ix, small[0].ID); src[0] != '{' {
		t.Fatalf("a product stored before any dictionary starts with %#x, want plain JSON", src[0])
	}

	// A partner's large batch trains its dictionary and is stored with it.
	big := partnerCatalog("big", 0, 800)
	apply(t, ix, searchtest.Upserts(big...))
	var stored, plain int
	for _, p := range big {
		src := storedSource(t, ix, p.ID)
		if src[0] != sourceDictFormat {
			t.Fatalf("%s is stored as %q…, want the dictionary format", p.ID, src[:min(len(src), 8)])
		}
		js, _ := json.Marshal(&p)
		stored, plain = stored+len(src), plain+len(js)
	}
	if stored*2 > plain {
		t.Errorf("a large batch's products take %d bytes stored, %d as JSON: want at most half", stored, plain)
	}
	// The small partner's later products share the first dictionary.
	more := partnerCatalog("small", 40, 10)
	apply(t, ix, searchtest.Upserts(more...))
	if src := storedSource(t, ix, more[0].ID); src[0] != sourceDictFormat {
		t.Errorf("a small batch after a dictionary exists is stored as %q…", src[:min(len(src), 8)])
	}
	all := append(append(append([]schemas.Product(nil), small...), big...), more...)
	checkProducts(t, ix, all)

	// The dictionaries are read back at open.
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if ix, err = Open(dir); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	checkProducts(t, ix, all)
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "이어폰", Partners: []string{"big"}, Limit: 3})
	if err != nil || res.Total != uint64(len(big)) || len(res.Hits) != 3 {
		t.Fatalf("search after reopen: %d hits, %v", res.Total, err)
	}
	for _, h := range res.Hits {
		if h.Partner != "big" || h.URL == "" {
			t.Errorf("a hit after reopen: %+v", h)
		}
	}
}

func TestAMissingDictionaryAsksForARebuild(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, ix, searchtest.Upserts(partnerCatalog("big", 0, 300)...))
	if err := ix.bleve.DeleteInternal(sourceDictKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if ix, err := Open(dir); !errors.Is(err, ErrIncompatible) {
		if err == nil {
			_ = ix.Close()
		}
		t.Errorf("Open without a dictionary its products need: %v, want ErrIncompatible", err)
	}
}

func TestPriceFilterOnTheIntegerEncoding(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	prices := []int64{0, 1, 15, 16, 255, 256, 99_999, 100_000, 1 << 40, 1<<62 + 3}
	var ps []schemas.Product
	for i, price := range prices {
		p := partnerProduct("shop", i)
		p.Price, p.SalePrice = price, nil
		ps = append(ps, p)
	}
	apply(t, ix, searchtest.Upserts(ps...))
	for _, tc := range []struct{ lo, hi int64 }{{0, 0}, {1, 16}, {16, 256}, {100, 100_000}, {1 << 39, 1 << 41}, {1 << 62, 1<<62 + 3}, {2, 14}} {
		var want int
		for _, price := range prices {
			if price >= tc.lo && price <= tc.hi {
				want++
			}
		}
		lo, hi := tc.lo, tc.hi
		res, err := ix.Search(t.Context(), schemas.SearchRequest{MinPrice: &lo, MaxPrice: &hi, Limit: 20})
		if err != nil || int(res.Total) != want {
			t.Errorf("prices %d..%d: %d hits, %v; want %d", lo, hi, res.Total, err, want)
		}
	}
}

func apply(t *testing.T, ix *Index, changes []schemas.ProductChange) {
	t.Helper()
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
}
