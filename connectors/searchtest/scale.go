package searchtest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"feedline/schemas"
)

// Totals and facets at scale, and identifier lookups:
//   - Total is exact up to schemas.SearchTotalBound (TotalRelation "eq") and
//     is the bound with "gte" beyond it; cursor pages beyond the bound still
//     reach every match once, in order.
//   - Facets count every match (FacetsBasis "all") whenever the matches are
//     within the bound; beyond it a backend may count only the first
//     schemas.SearchFacetSample hits ("top_hits") and says so. Price
//     statistics follow the same basis.
//   - A query that is one product's SKU, GTIN, MPN or model number (any
//     case) finds that product first, within the filters.

// boundCatalog is SearchTotalBound+20 lamps over three brands; exactly
// SearchTotalBound of them are in stock.
func boundCatalog() []schemas.Product {
	n := schemas.SearchTotalBound + 20
	out := make([]schemas.Product, n)
	for i := range out {
		avail := schemas.InStock
		if i%(n/20) == 0 {
			avail = schemas.OutOfStock
		}
		out[i] = spec{
			SKU: fmt.Sprintf("L%05d", i), Title: "Lamp", Brand: fmt.Sprintf("B%d", i%3),
			Category: []string{"Home", "Lighting"}, Price: int64(1000 + i%500), Availability: avail,
		}.Product()
	}
	return out
}

func testBoundedTotals(t *testing.T, open Open) {
	cat := boundCatalog()
	ix := open(t)
	for from := 0; from < len(cat); from += 2000 {
		apply(t, ix, Upserts(cat[from:min(from+2000, len(cat))]...)...)
	}
	brandOf := func(p schemas.Product) []string { return []string{p.Brand} }
	for _, tc := range []struct {
		r        schemas.SearchRequest
		total    uint64
		relation string
	}{
		{schemas.SearchRequest{}, schemas.SearchTotalBound, schemas.TotalAtLeast},
		{schemas.SearchRequest{Text: "lamp"}, schemas.SearchTotalBound, schemas.TotalAtLeast},
		{schemas.SearchRequest{Availability: []schemas.Availability{schemas.InStock}}, schemas.SearchTotalBound, schemas.TotalExact},
		{schemas.SearchRequest{Brands: []string{"B1"}}, uint64(len(matching(cat, schemas.SearchRequest{Brands: []string{"B1"}}))), schemas.TotalExact},
	} {
		tc.r.Currency = "KRW" // every lamp's: price statistics over the facets' basis
		res := find(t, ix, tc.r)
		if res.Total != tc.total || res.TotalRelation != tc.relation {
			t.Errorf("%s: total %d %q, want %d %q", describe(tc.r), res.Total, res.TotalRelation, tc.total, tc.relation)
		}
		keep := matching(cat, tc.r)
		exact := facetCounts(cat, keep, brandOf)
		switch res.FacetsBasis {
		case schemas.FacetsAllMatches:
			if got := res.Facets["brand"]; !reflect.DeepEqual(got, exact) {
				t.Errorf("%s: facets over all matches: brand\n got %v\nwant %v", describe(tc.r), got, exact)
			}
			if want := wantStats(cat, keep, "KRW"); !reflect.DeepEqual(res.PriceStats, want) {
				t.Errorf("%s: price stats over all matches %+v, want %+v", describe(tc.r), res.PriceStats, want)
			}
		case schemas.FacetsTopHits:
			if len(keep) <= schemas.SearchTotalBound {
				t.Errorf("%s: %d matches, within the bound, but facets over the top hits only", describe(tc.r), len(keep))
			}
			sum := 0
			for _, c := range res.Facets["brand"] {
				sum += c.Count
			}
			if sum != schemas.SearchFacetSample {
				t.Errorf("%s: brand facet over the top hits counts %d products, want %d: %v", describe(tc.r), sum, schemas.SearchFacetSample, res.Facets["brand"])
			}
			for _, f := range []string{"availability", "partner"} {
				sum := 0
				for _, c := range res.Facets[f] {
					sum += c.Count
				}
				if sum != schemas.SearchFacetSample {
					t.Errorf("%s: %s facet over the top hits counts %d products, want %d", describe(tc.r), f, sum, schemas.SearchFacetSample)
				}
			}
			if res.PriceStats == nil || res.PriceStats.Count != schemas.SearchFacetSample {
				t.Errorf("%s: price stats over the top hits %+v, want %d prices", describe(tc.r), res.PriceStats, schemas.SearchFacetSample)
			}
		default:
			t.Errorf("%s: facets basis %q", describe(tc.r), res.FacetsBasis)
		}
	}

	// Cursor pages past the bound reach every match once, in order.
	r := schemas.SearchRequest{Text: "lamp", Sort: schemas.SortPriceAsc, Limit: schemas.SearchMaxLimit}
	got := walk(t, ix, r)
	want := sortedIDs(cat, matching(cat, r), priceAsc)
	if !slices.Equal(got, want) {
		t.Errorf("%s: walk of %d hits differs from the %d matches in order (first difference at %d)", describe(r), len(got), len(want), firstDifference(got, want))
	}
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testIdentifierFirst(t *testing.T, open Open) {
	owner := spec{SKU: "AB-1234", Title: "Desk lamp", Brand: "Lumo", Price: 5000,
		Attributes: map[string]string{"mpn": "MPN-77X", "model_number": "LX2000"}}.Product()
	owner.GTIN = "8801234567893"
	cat := []schemas.Product{
		owner,
		// Their titles name the identifiers, so the text search finds them too.
		spec{SKU: "c1", Title: "Cable for AB-1234 and LX2000 lamps", Brand: "Lumo", Price: 900}.Product(),
		spec{SKU: "c2", Title: "AB 1234 LX2000 MPN-77X 8801234567893 spare shade", Brand: "Other", Price: 1200}.Product(),
		spec{SKU: "c3", Title: "Floor lamp", Brand: "Lumo", Price: 8000}.Product(),
	}
	ix := load(t, open, cat...)
	for _, q := range []string{"AB-1234", "ab-1234", "8801234567893", "mpn-77x", "LX2000", " lx2000 "} {
		res := find(t, ix, schemas.SearchRequest{Text: q})
		if len(res.Hits) == 0 || res.Hits[0].ID != owner.ID {
			t.Errorf("q=%q: hits %v, want %s first", q, ids(res.Hits), owner.ID)
		}
	}
	// Filters still hold.
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "LX2000", Brands: []string{"Other"}}); slices.Contains(got, owner.ID) {
		t.Errorf("q=LX2000 brand=Other: %v holds %s, whose brand is Lumo", got, owner.ID)
	}
	// A part of an identifier is no identifier.
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "LX200"}); slices.Contains(got, owner.ID) {
		t.Errorf("q=LX200: %v holds %s, whose model number is LX2000", got, owner.ID)
	}
}
