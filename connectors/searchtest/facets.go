package searchtest

import (
	"reflect"
	"testing"

	"feedline/schemas"
)

// Availability and partner facets, and price statistics:
//   - Facets "availability" and "partner" count like "brand": over the
//     hits facets_basis names, count descending, then value ascending.
//   - PriceStats span the effective prices of those hits that are in the
//     request's Currency (any letter case), whether or not the search
//     compares prices; nil without a Currency or when none is in it.

func testMoreFacets(t *testing.T, open Open) {
	cat := walkCatalog(250)
	ix := load(t, open, cat...)
	for _, r := range []schemas.SearchRequest{
		{},
		{Availability: []schemas.Availability{schemas.InStock, schemas.Preorder}},
		{Categories: []string{"Top1"}, MaxPrice: ptr[int64](1500), Currency: "KRW"},
		{Brands: []string{"Brand01", "Brand02"}, Partners: []string{"shop1"}},
	} {
		keep := matching(cat, r)
		r.Limit = 3
		res := find(t, ix, r)
		for name, values := range map[string]func(schemas.Product) []string{
			"availability": func(p schemas.Product) []string { return []string{string(p.Availability)} },
			"partner":      func(p schemas.Product) []string { return []string{p.Partner} },
		} {
			want := facetCounts(cat, keep, values)
			if got := res.Facets[name]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s facet\n got %v\nwant %v", describe(r), name, got, want)
			}
		}
		if res.NextCursor != "" {
			r.Cursor = res.NextCursor
			if next := find(t, ix, r); !reflect.DeepEqual(next.Facets, res.Facets) {
				t.Errorf("%s: second page facets differ from the first", describe(r))
			}
		}
	}
}

// wantStats is what PriceStats over the products of keep must say.
func wantStats(ps []schemas.Product, keep []string, currency string) *schemas.PriceStats {
	var s schemas.PriceStats
	for _, p := range ps {
		for _, id := range keep {
			if p.ID == id && p.Currency == currency {
				s.Add(p.EffectivePrice())
			}
		}
	}
	if s.Count == 0 {
		return nil
	}
	s.Currency = currency
	return &s
}

func testPriceStats(t *testing.T, open Open) {
	cat := currencyCatalog()
	ix := load(t, open, cat...)
	for _, c := range []struct {
		r    schemas.SearchRequest
		want *schemas.PriceStats
	}{
		{schemas.SearchRequest{Currency: "KRW"}, &schemas.PriceStats{Currency: "KRW", Min: 900, Max: 50000, Count: 4}},
		{schemas.SearchRequest{Currency: "usd"}, &schemas.PriceStats{Currency: "USD", Min: 1200, Max: 1800, Count: 3}},
		{schemas.SearchRequest{Currency: "KRW", Brands: []string{"Brew"}}, &schemas.PriceStats{Currency: "KRW", Min: 2000, Max: 50000, Count: 2}},
		{schemas.SearchRequest{Currency: "KRW", MaxPrice: ptr[int64](1500)}, &schemas.PriceStats{Currency: "KRW", Min: 900, Max: 1500, Count: 2}},
		{schemas.SearchRequest{Currency: "USD", Text: "kettle", Sort: schemas.SortPriceDesc}, &schemas.PriceStats{Currency: "USD", Min: 1200, Max: 1800, Count: 3}},
		{schemas.SearchRequest{Currency: "JPY"}, nil},
		{schemas.SearchRequest{}, nil},
	} {
		res := find(t, ix, c.r)
		if !reflect.DeepEqual(res.PriceStats, c.want) {
			t.Errorf("%s: price stats %+v, want %+v", describe(c.r), res.PriceStats, c.want)
		}
		keep := matching(cat, c.r)
		if c.want != nil && !reflect.DeepEqual(wantStats(cat, keep, c.want.Currency), c.want) {
			t.Fatalf("fixture: %s: the catalog gives %+v", describe(c.r), wantStats(cat, keep, c.want.Currency))
		}
		// Later pages state the same statistics.
		c.r.Limit = 2
		if first := find(t, ix, c.r); first.NextCursor != "" {
			c.r.Cursor = first.NextCursor
			if next := find(t, ix, c.r); !reflect.DeepEqual(next.PriceStats, c.want) {
				t.Errorf("%s: second page price stats %+v, want %+v", describe(c.r), next.PriceStats, c.want)
			}
		}
	}
}
