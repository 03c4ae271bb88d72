// Package searchtest is the behavioural contract of schemas.ProductIndex,
// run against every search backend: each backend's tests call Run with a
// function that opens a fresh, empty index.
//
// What the contract holds a backend to:
//   - Text is analysed into terms: lowercase, fullwidth forms folded, CJK and
//     Hangul as overlapping bigrams, English plurals stemmed ("earbuds" and
//     "earbud" meet). Every term must match in one of title, brand or
//     description (fields may differ per term); a query of more than three
//     terms needs three quarters of them. A title match outranks a
//     description match.
//   - Filters: brand exact, category by any path prefix of
//     Product.CategoryPaths, partner, availability, effective price with
//     inclusive bounds. Values of one filter are OR'ed, filters AND'ed.
//   - A price filter or sort compares in the request's Currency: products in
//     other currencies are left out of it (minor units of two currencies do
//     not compare), and cursors of one currency do not continue another.
//     Without a price filter or sort the currency changes nothing.
//   - Sorts break ties by id ascending; relevance is the default with text,
//     newest without.
//   - Facets "brand" and "category" (every category path value) cover the
//     whole filtered result: count descending, then value ascending, top 20.
//   - Cursors continue only the search that issued them (Limit may change);
//     anything else is schemas.ErrBadCursor. Limit defaults to 20, caps at 100.
//   - Totals are exact up to schemas.SearchTotalBound, a lower bound beyond;
//     an exact identifier in the text finds its product first (scale.go).
//   - Apply keeps the highest version per product, deletes included, and a
//     replayed call reports the same counts.
//   - A change is visible to Search and Get once Apply returns.
//   - Text forgives typos, completes the last word and applies synonyms;
//     hits say where they matched (forgive.go).
//   - Facets "availability" and "partner" and the price statistics are
//     in facets.go; suggestions, for a backend that offers them, in
//     suggest.go.
package searchtest

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"feedline/schemas"
)

// Open returns a new, empty index; it registers its own cleanup with t.
type Open func(t *testing.T) schemas.ProductIndex

// Run runs the contract as subtests of t.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(*testing.T, Open)
	}{
		{"KoreanText", testKoreanText},
		{"EnglishText", testEnglishText},
		{"AllQueryTermsAcrossFields", testAllQueryTermsAcrossFields},
		{"TitleOutranksDescription", testTitleOutranksDescription},
		{"EachFilter", testEachFilter},
		{"CombinedFilters", testCombinedFilters},
		{"PriceBoundsInclusive", testPriceBoundsInclusive},
		{"PriceCurrency", testPriceCurrency},
		{"Facets", testFacets},
		{"Sorts", testSorts},
		{"DefaultSort", testDefaultSort},
		{"Limit", testLimit},
		{"CursorWalk", testCursorWalk},
		{"BadCursor", testBadCursor},
		{"Get", testGet},
		{"StaleVersion", testStaleVersion},
		{"Tombstone", testTombstone},
		{"SameProductTwiceInOneCall", testSameProductTwice},
		{"ReplayIsIdempotent", testReplay},
		{"EmptyResult", testEmptyResult},
		{"BoundedTotals", testBoundedTotals},
		{"IdentifierFirst", testIdentifierFirst},
		{"Typos", testTypos},
		{"Prefix", testPrefix},
		{"Synonyms", testSynonyms},
		{"Highlights", testHighlights},
		{"MoreFacets", testMoreFacets},
		{"PriceStats", testPriceStats},
		{"Suggestions", testSuggestions},
		{"SuggestionLimit", testSuggestionLimit},
		{"SuggestionsFollowChanges", testSuggestionsFollowChanges},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// base is the UpdatedAt of generated products; whole seconds so every
// backend's date precision keeps it.
var base = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// spec describes a test product; SKU and partner make its id.
type spec struct {
	Partner, SKU, Title, Brand, Description string
	Category                                []string
	Price                                   int64
	Sale                                    *int64
	Currency                                string // default KRW
	Availability                            schemas.Availability
	Updated                                 time.Time
	Attributes                              map[string]string
}

// Product returns the canonical product p describes.
func (p spec) Product() schemas.Product {
	partner := cmp.Or(p.Partner, "shop1")
	avail := cmp.Or(p.Availability, schemas.InStock)
	updated := p.Updated
	if updated.IsZero() {
		updated = base
	}
	return schemas.Product{
		ID:           schemas.ProductID(partner, p.SKU),
		Partner:      partner,
		SKU:          p.SKU,
		Title:        p.Title,
		Description:  p.Description,
		Brand:        p.Brand,
		Category:     p.Category,
		Price:        p.Price,
		SalePrice:    p.Sale,
		Currency:     cmp.Or(p.Currency, "KRW"),
		Availability: avail,
		URL:          "https://shop.example/" + p.SKU,
		Attributes:   p.Attributes,
		UpdatedAt:    updated,
		Version:      1,
	}
}

func ptr[T any](v T) *T { return &v }

// Upserts wraps products as upsert changes at each product's Version.
func Upserts(ps ...schemas.Product) []schemas.ProductChange {
	out := make([]schemas.ProductChange, len(ps))
	for i := range ps {
		p := ps[i]
		out[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: p.Version, Product: &p}
	}
	return out
}

func upsertAt(p schemas.Product, v uint64) schemas.ProductChange {
	p.Version = v
	return schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: v, Product: &p}
}

func deleteAt(id string, v uint64) schemas.ProductChange {
	return schemas.ProductChange{Kind: schemas.ChangeDelete, ID: id, Version: v}
}

func apply(t *testing.T, ix schemas.ProductIndex, changes ...schemas.ProductChange) schemas.ApplyResult {
	t.Helper()
	res, err := ix.Apply(t.Context(), changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// StaleAt names exactly the stale changes; callers compare the counts.
	if int64(len(res.StaleAt)) != res.Stale {
		t.Errorf("Apply reported %d stale changes but listed %v", res.Stale, res.StaleAt)
	}
	for _, i := range res.StaleAt {
		if i < 0 || i >= len(changes) {
			t.Errorf("StaleAt %d is outside the %d changes", i, len(changes))
		}
	}
	res.StaleAt = nil
	return res
}

// sameCounts compares the counts of two results.
func sameCounts(a, b schemas.ApplyResult) bool {
	return a.Indexed == b.Indexed && a.Deleted == b.Deleted && a.Stale == b.Stale
}

func load(t *testing.T, open Open, ps ...schemas.Product) schemas.ProductIndex {
	t.Helper()
	ix := open(t)
	apply(t, ix, Upserts(ps...)...)
	return ix
}

func find(t *testing.T, ix schemas.ProductIndex, r schemas.SearchRequest) schemas.SearchResult {
	t.Helper()
	res, err := ix.Search(t.Context(), r)
	if err != nil {
		t.Fatalf("Search(%+v): %v", r, err)
	}
	return res
}

func ids(ps []schemas.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// hitIDs searches with a page big enough for these small catalogs.
func hitIDs(t *testing.T, ix schemas.ProductIndex, r schemas.SearchRequest) []string {
	t.Helper()
	r.Limit = 100
	return ids(find(t, ix, r).Hits)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// textCatalog mixes Korean and English titles, brands and descriptions.
func textCatalog() []schemas.Product {
	return []schemas.Product{
		spec{SKU: "ko-1", Title: "삼성 무선 이어폰", Brand: "삼성", Description: "노이즈 캔슬링 지원", Category: []string{"전자제품", "음향기기"}, Price: 99000}.Product(),
		spec{SKU: "ko-2", Title: "무선이어폰 블루투스 5.3", Brand: "QCY", Description: "가벼운 착용감", Category: []string{"전자제품", "음향기기"}, Price: 25000}.Product(),
		spec{SKU: "ko-3", Title: "유선 헤드폰", Brand: "소니", Description: "스튜디오 모니터링", Category: []string{"전자제품", "음향기기"}, Price: 150000}.Product(),
		spec{SKU: "en-1", Title: "Wireless Earbuds Pro", Brand: "Sony", Description: "Active noise cancelling", Category: []string{"Electronics", "Audio"}, Price: 199000}.Product(),
		spec{SKU: "en-2", Title: "Leather Case", Brand: "Caseology", Description: "Fits most wireless earbuds", Category: []string{"Accessories"}, Price: 19000}.Product(),
		spec{SKU: "en-3", Title: "Running Shoes", Brand: "Nike", Description: "Lightweight trainers", Category: []string{"Sports", "Shoes"}, Price: 129000}.Product(),
	}
}

func idOf(sku string) string { return schemas.ProductID("shop1", sku) }

func testKoreanText(t *testing.T, open Open) {
	ix := load(t, open, textCatalog()...)
	cases := []struct {
		q          string
		want, not  []string
		wantReason string
	}{
		{"무선", []string{"ko-1", "ko-2"}, []string{"ko-3"}, "word and bigram inside a run-together word"},
		{"이어폰", []string{"ko-1", "ko-2"}, []string{"ko-3", "en-1"}, "bigrams of a compound"},
		{"무선이어폰", []string{"ko-1", "ko-2"}, []string{"ko-3"}, "run-together query finds the spaced title"},
		{"삼성", []string{"ko-1"}, []string{"ko-2"}, "brand"},
		{"헤드폰", []string{"ko-3"}, []string{"ko-1"}, "title"},
		{"착용감", []string{"ko-2"}, nil, "description"},
	}
	for _, c := range cases {
		got := hitIDs(t, ix, schemas.SearchRequest{Text: c.q})
		for _, sku := range c.want {
			if !slices.Contains(got, idOf(sku)) {
				t.Errorf("%q (%s): %s missing from %v", c.q, c.wantReason, sku, got)
			}
		}
		for _, sku := range c.not {
			if slices.Contains(got, idOf(sku)) {
				t.Errorf("%q (%s): %s should not match, got %v", c.q, c.wantReason, sku, got)
			}
		}
	}
}

func testEnglishText(t *testing.T, open Open) {
	ix := load(t, open, textCatalog()...)
	wireless := hitIDs(t, ix, schemas.SearchRequest{Text: "wireless"})
	if !sameSet(wireless, []string{idOf("en-1"), idOf("en-2")}) {
		t.Errorf("wireless: got %v", wireless)
	}
	for _, q := range []string{"WIRELESS", "Wireless", "ＷＩＲＥＬＥＳＳ"} {
		if got := hitIDs(t, ix, schemas.SearchRequest{Text: q}); !sameSet(got, wireless) {
			t.Errorf("%q: got %v, want the same as wireless %v", q, got, wireless)
		}
	}
	for _, q := range []string{"earbud", "earbuds", "Earbuds"} {
		got := hitIDs(t, ix, schemas.SearchRequest{Text: q})
		if !slices.Contains(got, idOf("en-1")) {
			t.Errorf("%q: Wireless Earbuds Pro missing from %v", q, got)
		}
		if slices.Contains(got, idOf("en-3")) {
			t.Errorf("%q: shoes matched: %v", q, got)
		}
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "shoe"}); !slices.Equal(got, []string{idOf("en-3")}) {
		t.Errorf("shoe: got %v", got)
	}
}

func testAllQueryTermsAcrossFields(t *testing.T, open Open) {
	ix := load(t, open, textCatalog()...)
	// Sony is only the brand, earbuds only the title: both must match, each
	// in any field.
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "sony earbuds"}); !slices.Equal(got, []string{idOf("en-1")}) {
		t.Errorf("sony earbuds: got %v", got)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "sony shoes"}); len(got) != 0 {
		t.Errorf("sony shoes: got %v, want nothing", got)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "삼성 이어폰"}); !slices.Equal(got, []string{idOf("ko-1")}) {
		t.Errorf("삼성 이어폰: got %v", got)
	}
}

func testTitleOutranksDescription(t *testing.T, open Open) {
	ix := load(t, open,
		spec{SKU: "a", Title: "Phone case", Description: "Charges any wireless speaker"}.Product(),
		spec{SKU: "b", Title: "Wireless speaker", Description: "Loud and clear"}.Product(),
		spec{SKU: "c", Title: "Desk lamp", Description: "Wireless charging base"}.Product(),
	)
	got := ids(find(t, ix, schemas.SearchRequest{Text: "wireless"}).Hits)
	if len(got) != 3 || got[0] != idOf("b") {
		t.Errorf("wireless: got %v, want the title match %s first of three", got, idOf("b"))
	}
	got = ids(find(t, ix, schemas.SearchRequest{Text: "wireless speaker"}).Hits)
	if len(got) == 0 || got[0] != idOf("b") {
		t.Errorf("wireless speaker: got %v, want %s first", got, idOf("b"))
	}
}

// filterCatalog has every filterable attribute varied.
func filterCatalog() []schemas.Product {
	return []schemas.Product{
		spec{Partner: "shop1", SKU: "1", Title: "Earbuds one", Brand: "Sony", Category: []string{"Electronics", "Audio", "Earbuds"}, Price: 1000, Availability: schemas.InStock}.Product(),
		spec{Partner: "shop1", SKU: "2", Title: "Headphones two", Brand: "Sony", Category: []string{"Electronics", "Audio", "Headphones"}, Price: 2000, Sale: ptr[int64](1500), Availability: schemas.OutOfStock}.Product(),
		spec{Partner: "shop2", SKU: "3", Title: "Earbuds three", Brand: "Apple", Category: []string{"Electronics", "Audio", "Earbuds"}, Price: 3000, Availability: schemas.Preorder}.Product(),
		spec{Partner: "shop2", SKU: "4", Title: "Laptop four", Brand: "Apple", Category: []string{"Electronics", "Computers"}, Price: 4000, Sale: ptr[int64](3500), Availability: schemas.InStock}.Product(),
		spec{Partner: "shop3", SKU: "5", Title: "Sneakers five", Brand: "Nike", Category: []string{"Sports", "Shoes"}, Price: 5000, Availability: schemas.Backorder}.Product(),
		spec{Partner: "shop3", SKU: "6", Title: "Earbuds six", Brand: "samsung", Category: []string{"Electronics", "Audio", "Earbuds"}, Price: 6000, Availability: schemas.InStock}.Product(),
	}
}

// matching filters the catalog the way a search with r's filters must.
func matching(ps []schemas.Product, r schemas.SearchRequest) []string {
	var out []string
	for _, p := range ps {
		if len(r.Brands) > 0 && !slices.Contains(r.Brands, p.Brand) {
			continue
		}
		if len(r.Categories) > 0 && !slices.ContainsFunc(p.CategoryPaths(), func(c string) bool { return slices.Contains(r.Categories, c) }) {
			continue
		}
		if len(r.Partners) > 0 && !slices.Contains(r.Partners, p.Partner) {
			continue
		}
		if len(r.Availability) > 0 && !slices.Contains(r.Availability, p.Availability) {
			continue
		}
		if c := r.Canonical().Currency; c != "" && p.Currency != c {
			continue
		}
		if r.MinPrice != nil && p.EffectivePrice() < *r.MinPrice {
			continue
		}
		if r.MaxPrice != nil && p.EffectivePrice() > *r.MaxPrice {
			continue
		}
		out = append(out, p.ID)
	}
	return out
}

func checkFilter(t *testing.T, ix schemas.ProductIndex, cat []schemas.Product, r schemas.SearchRequest, wantN int) {
	t.Helper()
	want := matching(cat, r)
	if len(want) != wantN {
		t.Fatalf("fixture: %+v matches %d products, test expects %d", r, len(want), wantN)
	}
	res := find(t, ix, r)
	if got := ids(res.Hits); !sameSet(got, want) {
		t.Errorf("%+v: got %v, want %v", describe(r), got, want)
	}
	if res.Total != uint64(len(want)) {
		t.Errorf("%+v: Total %d, want %d", describe(r), res.Total, len(want))
	}
}

func describe(r schemas.SearchRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "q=%q brand=%v category=%v partner=%v availability=%v", r.Text, r.Brands, r.Categories, r.Partners, r.Availability)
	if r.MinPrice != nil {
		fmt.Fprintf(&b, " min=%d", *r.MinPrice)
	}
	if r.MaxPrice != nil {
		fmt.Fprintf(&b, " max=%d", *r.MaxPrice)
	}
	if r.Currency != "" {
		fmt.Fprintf(&b, " currency=%s", r.Currency)
	}
	return b.String()
}

func testEachFilter(t *testing.T, open Open) {
	cat := filterCatalog()
	ix := load(t, open, cat...)
	cases := []struct {
		r schemas.SearchRequest
		n int
	}{
		{schemas.SearchRequest{Brands: []string{"Sony"}}, 2},
		{schemas.SearchRequest{Brands: []string{"Sony", "Nike"}}, 3},
		{schemas.SearchRequest{Brands: []string{"samsung"}}, 1},
		{schemas.SearchRequest{Brands: []string{"Unknown"}}, 0},
		{schemas.SearchRequest{Categories: []string{"Electronics"}}, 5},
		{schemas.SearchRequest{Categories: []string{"Electronics > Audio"}}, 4},
		{schemas.SearchRequest{Categories: []string{"Electronics > Audio > Earbuds"}}, 3},
		{schemas.SearchRequest{Categories: []string{"Audio"}}, 0}, // a level name alone is not a path
		{schemas.SearchRequest{Categories: []string{"Electronics > Computers", "Sports"}}, 2},
		{schemas.SearchRequest{Partners: []string{"shop2"}}, 2},
		{schemas.SearchRequest{Partners: []string{"shop1", "shop3"}}, 4},
		{schemas.SearchRequest{Availability: []schemas.Availability{schemas.InStock}}, 3},
		{schemas.SearchRequest{Availability: []schemas.Availability{schemas.Preorder, schemas.Backorder}}, 2},
		{schemas.SearchRequest{MinPrice: ptr[int64](3500)}, 3},
		{schemas.SearchRequest{MaxPrice: ptr[int64](1500)}, 2},
		{schemas.SearchRequest{MinPrice: ptr[int64](1600), MaxPrice: ptr[int64](3400)}, 1},
	}
	for _, c := range cases {
		checkFilter(t, ix, cat, c.r, c.n)
	}
}

func testCombinedFilters(t *testing.T, open Open) {
	cat := filterCatalog()
	ix := load(t, open, cat...)
	cases := []struct {
		r schemas.SearchRequest
		n int
	}{
		{schemas.SearchRequest{Brands: []string{"Sony", "Apple"}, Categories: []string{"Electronics > Audio > Earbuds"}}, 2},
		{schemas.SearchRequest{Categories: []string{"Electronics"}, Availability: []schemas.Availability{schemas.InStock}}, 3},
		{schemas.SearchRequest{Categories: []string{"Electronics"}, Availability: []schemas.Availability{schemas.InStock}, Partners: []string{"shop2", "shop3"}}, 2},
		{schemas.SearchRequest{Brands: []string{"Apple"}, MaxPrice: ptr[int64](3500), Availability: []schemas.Availability{schemas.InStock}}, 1},
		{schemas.SearchRequest{Brands: []string{"Apple"}, Partners: []string{"shop1"}}, 0},
		{schemas.SearchRequest{Brands: []string{"Sony", "Apple", "samsung"}, Categories: []string{"Electronics > Audio"}, Partners: []string{"shop1", "shop2", "shop3"}, Availability: []schemas.Availability{schemas.InStock, schemas.Preorder}, MinPrice: ptr[int64](1000), MaxPrice: ptr[int64](6000)}, 3},
	}
	for _, c := range cases {
		checkFilter(t, ix, cat, c.r, c.n)
	}
	// Text narrows the same way, and filters do not change which texts match.
	r := schemas.SearchRequest{Text: "earbuds", Brands: []string{"Sony", "samsung"}}
	if got := hitIDs(t, ix, r); !sameSet(got, []string{idOf("1"), schemas.ProductID("shop3", "6")}) {
		t.Errorf("earbuds by Sony or samsung: got %v", got)
	}
}

func testPriceBoundsInclusive(t *testing.T, open Open) {
	cat := filterCatalog()
	ix := load(t, open, cat...)
	// 1500 is product 2's sale price (its list price is 2000); 3500 is
	// product 4's sale price (list 4000).
	checkFilter(t, ix, cat, schemas.SearchRequest{MinPrice: ptr[int64](1500), MaxPrice: ptr[int64](3500)}, 3)
	checkFilter(t, ix, cat, schemas.SearchRequest{MinPrice: ptr[int64](1500), MaxPrice: ptr[int64](1500)}, 1)
	checkFilter(t, ix, cat, schemas.SearchRequest{MinPrice: ptr[int64](2000), MaxPrice: ptr[int64](2000)}, 0)
	checkFilter(t, ix, cat, schemas.SearchRequest{MinPrice: ptr[int64](1001), MaxPrice: ptr[int64](1499)}, 0)
	checkFilter(t, ix, cat, schemas.SearchRequest{MinPrice: ptr[int64](0)}, 6)
}

// currencyCatalog has KRW and USD products whose minor units overlap: 1500
// is ₩1,500 for one and $15.00 for another.
func currencyCatalog() []schemas.Product {
	return []schemas.Product{
		spec{SKU: "krw-1", Title: "Kettle one", Brand: "Acme", Price: 900}.Product(),
		spec{SKU: "krw-2", Title: "Kettle two", Brand: "Acme", Price: 1500}.Product(),
		spec{SKU: "krw-3", Title: "Kettle three", Brand: "Brew", Price: 2500, Sale: ptr[int64](2000)}.Product(),
		spec{SKU: "krw-4", Title: "Kettle four", Brand: "Brew", Price: 50000}.Product(),
		spec{Partner: "shop2", SKU: "usd-1", Title: "Kettle five", Brand: "Acme", Price: 1200, Currency: "USD"}.Product(),
		spec{Partner: "shop2", SKU: "usd-2", Title: "Kettle six", Brand: "Brew", Price: 1500, Currency: "USD"}.Product(),
		spec{Partner: "shop2", SKU: "usd-3", Title: "Kettle seven", Brand: "Brew", Price: 4000, Sale: ptr[int64](1800), Currency: "USD"}.Product(),
		spec{Partner: "shop3", SKU: "eur-1", Title: "Kettle eight", Brand: "Acme", Price: 1000, Currency: "EUR"}.Product(),
	}
}

func testPriceCurrency(t *testing.T, open Open) {
	cat := currencyCatalog()
	ix := load(t, open, cat...)
	krw := func(id string) string { return idOf(id) }
	usd := func(id string) string { return schemas.ProductID("shop2", id) }

	// A price range in a currency finds that currency's products in range only.
	for _, c := range []struct {
		r    schemas.SearchRequest
		want []string
	}{
		{schemas.SearchRequest{MinPrice: ptr[int64](1000), MaxPrice: ptr[int64](2000), Currency: "KRW"}, []string{krw("krw-2"), krw("krw-3")}},
		{schemas.SearchRequest{MinPrice: ptr[int64](1000), MaxPrice: ptr[int64](2000), Currency: "USD"}, []string{usd("usd-1"), usd("usd-2"), usd("usd-3")}},
		{schemas.SearchRequest{MaxPrice: ptr[int64](1000), Currency: "EUR"}, []string{schemas.ProductID("shop3", "eur-1")}},
		{schemas.SearchRequest{MinPrice: ptr[int64](0), Currency: "JPY"}, nil},
		{schemas.SearchRequest{MinPrice: ptr[int64](1500), Currency: "USD", Text: "kettle", Brands: []string{"Brew"}}, []string{usd("usd-2"), usd("usd-3")}},
	} {
		checkFilter(t, ix, cat, c.r, len(c.want))
		if got := hitIDs(t, ix, c.r); !sameSet(got, c.want) {
			t.Errorf("%s: got %v, want %v", describe(c.r), got, c.want)
		}
		// Facets count what the search found, not the other currencies.
		res := find(t, ix, c.r)
		brands := 0
		for _, f := range res.Facets["brand"] {
			brands += f.Count
		}
		if brands != len(c.want) {
			t.Errorf("%s: brand facet counts %d products, want %d", describe(c.r), brands, len(c.want))
		}
	}

	// A price sort in a currency orders that currency's products only.
	for _, c := range []struct {
		sort string
		key  func(a, b schemas.Product) int
	}{{schemas.SortPriceAsc, priceAsc}, {schemas.SortPriceDesc, priceDesc}} {
		for _, cur := range []string{"KRW", "USD"} {
			r := schemas.SearchRequest{Sort: c.sort, Currency: cur}
			want := sortedIDs(cat, matching(cat, r), c.key)
			if len(want) < 3 {
				t.Fatalf("fixture: %s %s keeps %d products", c.sort, cur, len(want))
			}
			if got := hitIDs(t, ix, r); !slices.Equal(got, want) {
				t.Errorf("sort %s in %s:\n got %v\nwant %v", c.sort, cur, got, want)
			}
			r.Limit = 2
			if got := walk(t, ix, r); !slices.Equal(got, want) {
				t.Errorf("sort %s in %s, pages of 2:\n got %v\nwant %v", c.sort, cur, got, want)
			}
		}
	}

	// Without a price filter or sort, every currency is found, whichever
	// the request names.
	for _, r := range []schemas.SearchRequest{{}, {Currency: "USD"}, {Text: "kettle", Currency: "KRW"}, {Sort: schemas.SortNewest, Currency: "EUR"}} {
		if got := hitIDs(t, ix, r); !sameSet(got, ids(cat)) {
			t.Errorf("%s sort %q: got %v, want every product", describe(r), r.Sort, got)
		}
	}

	// The currency is part of a price search's identity: a KRW cursor does
	// not continue the USD search, and the same search continues.
	r := schemas.SearchRequest{Sort: schemas.SortPriceAsc, Currency: "KRW", Limit: 1}
	first := find(t, ix, r)
	if first.NextCursor == "" {
		t.Fatal("no cursor on a first page of 1")
	}
	other := r
	other.Cursor, other.Currency = first.NextCursor, "USD"
	if _, err := ix.Search(t.Context(), other); !errors.Is(err, schemas.ErrBadCursor) {
		t.Errorf("KRW cursor in a USD search: %v, want ErrBadCursor", err)
	}
	same := r
	same.Cursor = first.NextCursor
	if next := find(t, ix, same); len(next.Hits) != 1 || next.Hits[0].Currency != "KRW" || next.Hits[0].ID == first.Hits[0].ID {
		t.Errorf("KRW cursor in the KRW search: %+v", next.Hits)
	}
	// A search that compares no prices keeps its cursor whatever currency it names.
	plain := schemas.SearchRequest{Sort: schemas.SortNewest, Currency: "KRW", Limit: 1}
	page := find(t, ix, plain)
	plain.Cursor, plain.Currency = page.NextCursor, "USD"
	if _, err := ix.Search(t.Context(), plain); err != nil {
		t.Errorf("newest, cursor with another currency named: %v", err)
	}
}

// walkCatalog is n products with ties in price and update time, 25 brands
// of uneven size and a three-level category tree.
func walkCatalog(n int) []schemas.Product {
	out := make([]schemas.Product, 0, n)
	for i := range n {
		brand := (i * 7) % 25
		if i%3 == 0 {
			brand = i % 4
		}
		var sale *int64
		if i%5 == 0 {
			sale = ptr(int64(900 + (i%4)*100))
		}
		title := "Wireless earbuds model"
		desc := "Compact charging case"
		if i%4 == 0 {
			title = "Charging case model"
			desc = "For wireless earbuds"
		}
		out = append(out, spec{
			Partner:      fmt.Sprintf("shop%d", i%3),
			SKU:          fmt.Sprintf("sku-%04d", i),
			Title:        title,
			Brand:        fmt.Sprintf("Brand%02d", brand),
			Description:  desc,
			Category:     []string{fmt.Sprintf("Top%d", i%3), fmt.Sprintf("Mid%d", i%5), fmt.Sprintf("Leaf%d", i%7)},
			Price:        int64(1000 + (i%10)*100),
			Sale:         sale,
			Availability: schemas.Availabilities[i%len(schemas.Availabilities)],
			Updated:      base.Add(time.Duration(i%13) * time.Minute),
		}.Product())
	}
	return out
}

// facetCounts computes what a facet over values must report: count
// descending, then value ascending, top 20.
func facetCounts(ps []schemas.Product, keep []string, values func(schemas.Product) []string) []schemas.FacetCount {
	counts := map[string]int{}
	for _, p := range ps {
		if !slices.Contains(keep, p.ID) {
			continue
		}
		for _, v := range values(p) {
			counts[v]++
		}
	}
	out := make([]schemas.FacetCount, 0, len(counts))
	for v, c := range counts {
		out = append(out, schemas.FacetCount{Value: v, Count: c})
	}
	slices.SortFunc(out, func(a, b schemas.FacetCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Value, b.Value))
	})
	if len(out) > 20 {
		out = out[:20]
	}
	return out
}

func testFacets(t *testing.T, open Open) {
	cat := walkCatalog(250)
	ix := load(t, open, cat...)
	brandOf := func(p schemas.Product) []string { return []string{p.Brand} }
	for _, r := range []schemas.SearchRequest{
		{},
		{Availability: []schemas.Availability{schemas.InStock, schemas.Preorder}},
		{Categories: []string{"Top1"}, MaxPrice: ptr[int64](1500)},
		{Brands: []string{"Brand01", "Brand02"}},
	} {
		keep := matching(cat, r)
		r.Limit = 3
		res := find(t, ix, r)
		if res.Total != uint64(len(keep)) || res.TotalRelation != schemas.TotalExact || res.FacetsBasis != schemas.FacetsAllMatches {
			t.Errorf("%s: Total %d %q, facets basis %q; want %d eq, all", describe(r), res.Total, res.TotalRelation, res.FacetsBasis, len(keep))
		}
		wantBrand := facetCounts(cat, keep, brandOf)
		if got := res.Facets["brand"]; !reflect.DeepEqual(got, wantBrand) {
			t.Errorf("%s: brand facet\n got %v\nwant %v", describe(r), got, wantBrand)
		}
		wantCat := facetCounts(cat, keep, func(p schemas.Product) []string { return p.CategoryPaths() })
		if got := res.Facets["category"]; !reflect.DeepEqual(got, wantCat) {
			t.Errorf("%s: category facet\n got %v\nwant %v", describe(r), got, wantCat)
		}
		// Facets describe the whole result, so a later page reports the same.
		if res.NextCursor != "" {
			r.Cursor = res.NextCursor
			next := find(t, ix, r)
			if !reflect.DeepEqual(next.Facets, res.Facets) || next.Total != res.Total {
				t.Errorf("%s: second page facets or total differ from the first", describe(r))
			}
		}
	}
	res := find(t, ix, schemas.SearchRequest{Limit: 1})
	if n := len(res.Facets["brand"]); n != 20 {
		t.Errorf("brand facet over 25 brands has %d values, want the top 20", n)
	}
}

// sortedIDs orders the catalog the way a sort must: key, then id ascending.
func sortedIDs(ps []schemas.Product, keep []string, key func(a, b schemas.Product) int) []string {
	var sel []schemas.Product
	for _, p := range ps {
		if slices.Contains(keep, p.ID) {
			sel = append(sel, p)
		}
	}
	slices.SortFunc(sel, func(a, b schemas.Product) int {
		return cmp.Or(key(a, b), cmp.Compare(a.ID, b.ID))
	})
	return ids(sel)
}

func priceAsc(a, b schemas.Product) int  { return cmp.Compare(a.EffectivePrice(), b.EffectivePrice()) }
func priceDesc(a, b schemas.Product) int { return cmp.Compare(b.EffectivePrice(), a.EffectivePrice()) }
func newest(a, b schemas.Product) int    { return b.UpdatedAt.Compare(a.UpdatedAt) }

func testSorts(t *testing.T, open Open) {
	cat := walkCatalog(60)
	ix := load(t, open, cat...)
	all := ids(cat)
	for _, c := range []struct {
		sort string
		key  func(a, b schemas.Product) int
	}{
		{schemas.SortPriceAsc, priceAsc},
		{schemas.SortPriceDesc, priceDesc},
		{schemas.SortNewest, newest},
	} {
		got := hitIDs(t, ix, schemas.SearchRequest{Sort: c.sort})
		if want := sortedIDs(cat, all, c.key); !slices.Equal(got, want) {
			t.Errorf("sort %s:\n got %v\nwant %v", c.sort, got, want)
		}
		// With text, the sort still orders by its key, not by relevance.
		r := schemas.SearchRequest{Sort: c.sort, Text: "charging"}
		got = hitIDs(t, ix, r)
		if want := sortedIDs(cat, all, c.key); !slices.Equal(got, want) {
			t.Errorf("sort %s with text:\n got %v\nwant %v", c.sort, got, want)
		}
	}
}

func testDefaultSort(t *testing.T, open Open) {
	ix := load(t, open,
		spec{SKU: "old-title", Title: "Wireless speaker", Updated: base}.Product(),
		spec{SKU: "new-desc", Title: "Desk lamp", Description: "Works with a wireless speaker", Updated: base.Add(time.Hour)}.Product(),
		spec{SKU: "newest", Title: "Garden hose", Updated: base.Add(2 * time.Hour)}.Product(),
	)
	if got := ids(find(t, ix, schemas.SearchRequest{}).Hits); !slices.Equal(got, []string{idOf("newest"), idOf("new-desc"), idOf("old-title")}) {
		t.Errorf("no text: got %v, want newest first", got)
	}
	if got := ids(find(t, ix, schemas.SearchRequest{Text: "wireless speaker"}).Hits); !slices.Equal(got, []string{idOf("old-title"), idOf("new-desc")}) {
		t.Errorf("text: got %v, want relevance order", got)
	}
	byNewest := ids(find(t, ix, schemas.SearchRequest{Text: "wireless speaker", Sort: schemas.SortNewest}).Hits)
	if !slices.Equal(byNewest, []string{idOf("new-desc"), idOf("old-title")}) {
		t.Errorf("text sorted by newest: got %v", byNewest)
	}
}

func testLimit(t *testing.T, open Open) {
	ix := load(t, open, walkCatalog(130)...)
	for _, c := range []struct{ limit, want int }{{0, 20}, {-1, 20}, {5, 5}, {100, 100}, {500, 100}} {
		res := find(t, ix, schemas.SearchRequest{Limit: c.limit})
		if len(res.Hits) != c.want {
			t.Errorf("limit %d: %d hits, want %d", c.limit, len(res.Hits), c.want)
		}
		if res.NextCursor == "" {
			t.Errorf("limit %d: no cursor with 130 products", c.limit)
		}
		if res.Total != 130 {
			t.Errorf("limit %d: Total %d, want 130", c.limit, res.Total)
		}
	}
}

// walk pages through r and returns every hit in order.
func walk(t *testing.T, ix schemas.ProductIndex, r schemas.SearchRequest) []string {
	t.Helper()
	var out []string
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("%s: cursor walk does not end", describe(r))
		}
		res := find(t, ix, r)
		if len(res.Hits) > r.Limit {
			t.Fatalf("%s: page of %d hits, limit %d", describe(r), len(res.Hits), r.Limit)
		}
		out = append(out, ids(res.Hits)...)
		if res.NextCursor == "" {
			return out
		}
		if len(res.Hits) < r.Limit {
			t.Errorf("%s: short page of %d with a cursor", describe(r), len(res.Hits))
		}
		r.Cursor = res.NextCursor
	}
}

func testCursorWalk(t *testing.T, open Open) {
	cat := walkCatalog(250)
	ix := load(t, open, cat...)
	cases := []struct {
		r   schemas.SearchRequest
		key func(a, b schemas.Product) int
	}{
		{schemas.SearchRequest{Sort: schemas.SortPriceAsc}, priceAsc},
		{schemas.SearchRequest{Sort: schemas.SortPriceDesc}, priceDesc},
		{schemas.SearchRequest{Sort: schemas.SortNewest}, newest},
		{schemas.SearchRequest{}, newest},
		{schemas.SearchRequest{Sort: schemas.SortPriceAsc, Availability: []schemas.Availability{schemas.InStock}, MaxPrice: ptr[int64](1500)}, priceAsc},
		{schemas.SearchRequest{Sort: schemas.SortRelevance}, nil},
		{schemas.SearchRequest{Text: "wireless earbuds"}, nil},
		{schemas.SearchRequest{Text: "wireless", Brands: []string{"Brand00", "Brand01", "Brand02", "Brand03"}}, nil},
	}
	for _, c := range cases {
		c.r.Limit = 7
		// Every product has "wireless" and "earbuds" in its title or
		// description, so the text queries match what the filters keep.
		keep := matching(cat, c.r)
		got := walk(t, ix, c.r)
		if c.key != nil {
			if want := sortedIDs(cat, keep, c.key); !slices.Equal(got, want) {
				t.Errorf("%s sort %q: walk\n got %v\nwant %v", describe(c.r), c.r.Sort, got, want)
			}
			continue
		}
		if !sameSet(got, keep) || len(got) != len(keep) {
			t.Errorf("%s sort %q: walk returned %d hits (%d distinct), want each of %d once",
				describe(c.r), c.r.Sort, len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))), len(keep))
		}
		if c.r.Text != "" {
			checkTitleMatchesFirst(t, cat, got, c.r)
		}
	}
}

// checkTitleMatchesFirst checks that products with "wireless" in the title
// all come before those with it only in the description.
func checkTitleMatchesFirst(t *testing.T, cat []schemas.Product, got []string, r schemas.SearchRequest) {
	t.Helper()
	inTitle := map[string]bool{}
	for _, p := range cat {
		inTitle[p.ID] = strings.Contains(strings.ToLower(p.Title), "wireless")
	}
	seenDescOnly := false
	for _, id := range got {
		if !inTitle[id] {
			seenDescOnly = true
		} else if seenDescOnly {
			t.Errorf("%s: title match %s after a description-only match", describe(r), id)
			return
		}
	}
}

func testBadCursor(t *testing.T, open Open) {
	ix := load(t, open, walkCatalog(30)...)
	r := schemas.SearchRequest{Sort: schemas.SortPriceAsc, Brands: []string{"Brand00", "Brand01"}, Limit: 2}
	res := find(t, ix, r)
	if res.NextCursor == "" {
		t.Fatal("no cursor on a first page of 2")
	}
	bad := func(name string, r schemas.SearchRequest) {
		t.Helper()
		_, err := ix.Search(t.Context(), r)
		if !errors.Is(err, schemas.ErrBadCursor) {
			t.Errorf("%s: err %v, want ErrBadCursor", name, err)
		}
	}
	for _, junk := range []string{"x", "!!!", "eyJrIjoxfQ", strings.Repeat("A", 40)} {
		r2 := r
		r2.Cursor = junk
		bad("junk cursor "+junk, r2)
	}
	r2 := r
	r2.Cursor = res.NextCursor
	r2.Sort = schemas.SortPriceDesc
	bad("other sort", r2)
	r2 = r
	r2.Cursor = res.NextCursor
	r2.Brands = []string{"Brand00"}
	bad("other brand filter", r2)
	r2 = r
	r2.Cursor = res.NextCursor
	r2.Text = "wireless"
	bad("other text", r2)
	r2 = r
	r2.Cursor = res.NextCursor
	r2.MinPrice = ptr[int64](1)
	bad("other price range", r2)
	r2 = r
	r2.Cursor = res.NextCursor[:len(res.NextCursor)-2]
	bad("truncated", r2)

	// The same search continues, even with another page size or the filter
	// values listed in another order.
	r2 = r
	r2.Cursor = res.NextCursor
	r2.Limit = 5
	r2.Brands = []string{"Brand01", "Brand00"}
	if _, err := ix.Search(t.Context(), r2); err != nil {
		t.Errorf("same search, other limit and filter order: %v", err)
	}
}

func testGet(t *testing.T, open Open) {
	p := spec{
		SKU: "full", Title: "무선 이어폰 Pro", Brand: "삼성", Description: "설명 text",
		Category: []string{"전자제품", "음향기기", "이어폰"}, Price: 129000, Sale: ptr[int64](99000),
		Availability: schemas.Preorder, Updated: base.Add(90 * time.Second),
		Attributes: map[string]string{"color": "black", "색상": "검정"},
	}.Product()
	p.ImageURLs = []string{"https://img.example/1.jpg", "https://img.example/2.jpg"}
	p.GTIN = "8801234567890"
	p.Version = 7
	ix := open(t)
	apply(t, ix, Upserts(p)...)
	got, err := ix.Get(t.Context(), p.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("Get:\n got %+v\nwant %+v", got, p)
	}
	res := find(t, ix, schemas.SearchRequest{Text: "이어폰"})
	if len(res.Hits) != 1 || !reflect.DeepEqual(res.Hits[0], p) {
		t.Errorf("search hit differs from the stored product: %+v", res.Hits)
	}
	if _, err := ix.Get(t.Context(), "shop1:missing"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get missing: err %v, want ErrNotFound", err)
	}
}

func getTitle(t *testing.T, ix schemas.ProductIndex, id string) (string, bool) {
	t.Helper()
	p, err := ix.Get(t.Context(), id)
	if errors.Is(err, schemas.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return p.Title, true
}

func testStaleVersion(t *testing.T, open Open) {
	ix := open(t)
	p := spec{SKU: "s", Title: "Second title"}.Product()
	old := p
	old.Title = "First title"
	if res := apply(t, ix, upsertAt(p, 2)); !sameCounts(res, schemas.ApplyResult{Indexed: 1}) {
		t.Errorf("v2: %+v", res)
	}
	if res := apply(t, ix, upsertAt(old, 1)); !sameCounts(res, schemas.ApplyResult{Stale: 1}) {
		t.Errorf("v1 after v2: %+v, want one stale", res)
	}
	if title, _ := getTitle(t, ix, p.ID); title != "Second title" {
		t.Errorf("after stale v1: title %q", title)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "first"}); len(got) != 0 {
		t.Errorf("stale title is searchable: %v", got)
	}
	if res := apply(t, ix, upsertAt(p, 2)); !sameCounts(res, schemas.ApplyResult{Indexed: 1}) {
		t.Errorf("v2 again: %+v, want it counted as indexed", res)
	}
	newer := p
	newer.Title = "Third title"
	if res := apply(t, ix, upsertAt(newer, 3)); !sameCounts(res, schemas.ApplyResult{Indexed: 1}) {
		t.Errorf("v3: %+v", res)
	}
	if title, _ := getTitle(t, ix, p.ID); title != "Third title" {
		t.Errorf("after v3: title %q", title)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "second"}); len(got) != 0 {
		t.Errorf("replaced title is searchable: %v", got)
	}
}

func testTombstone(t *testing.T, open Open) {
	ix := open(t)
	p := spec{SKU: "t", Title: "Tombstone lamp", Brand: "Lumen"}.Product()
	apply(t, ix, upsertAt(p, 1))
	if res := apply(t, ix, deleteAt(p.ID, 3)); !sameCounts(res, schemas.ApplyResult{Deleted: 1}) {
		t.Errorf("delete v3: %+v", res)
	}
	if _, ok := getTitle(t, ix, p.ID); ok {
		t.Error("deleted product still returned by Get")
	}
	absent := func(when string) {
		t.Helper()
		for _, r := range []schemas.SearchRequest{{Text: "lamp"}, {}, {Brands: []string{"Lumen"}}} {
			if res := find(t, ix, r); len(res.Hits) != 0 || res.Total != 0 || len(res.Facets["brand"]) != 0 {
				t.Errorf("%s: %s finds %v (total %d, brand facet %v)", when, describe(r), ids(res.Hits), res.Total, res.Facets["brand"])
			}
		}
	}
	absent("after delete")
	if res := apply(t, ix, upsertAt(p, 2)); !sameCounts(res, schemas.ApplyResult{Stale: 1}) {
		t.Errorf("upsert v2 after delete v3: %+v, want stale", res)
	}
	absent("after stale upsert")
	if res := apply(t, ix, deleteAt(p.ID, 3)); !sameCounts(res, schemas.ApplyResult{Deleted: 1}) {
		t.Errorf("delete v3 again: %+v", res)
	}
	if res := apply(t, ix, upsertAt(p, 4)); !sameCounts(res, schemas.ApplyResult{Indexed: 1}) {
		t.Errorf("upsert v4: %+v", res)
	}
	if _, ok := getTitle(t, ix, p.ID); !ok {
		t.Error("product upserted after its tombstone is missing")
	}
	if res := apply(t, ix, deleteAt(p.ID, 2)); !sameCounts(res, schemas.ApplyResult{Stale: 1}) {
		t.Errorf("delete v2 after upsert v4: %+v, want stale", res)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "lamp"}); !slices.Equal(got, []string{p.ID}) {
		t.Errorf("after stale delete: search finds %v", got)
	}

	// A delete of a product never seen still guards against older upserts.
	q := spec{SKU: "never", Title: "Never seen"}.Product()
	if res := apply(t, ix, deleteAt(q.ID, 5)); !sameCounts(res, schemas.ApplyResult{Deleted: 1}) {
		t.Errorf("delete unseen: %+v", res)
	}
	if res := apply(t, ix, upsertAt(q, 4)); !sameCounts(res, schemas.ApplyResult{Stale: 1}) {
		t.Errorf("upsert v4 after delete v5 of unseen product: %+v", res)
	}
	if _, ok := getTitle(t, ix, q.ID); ok {
		t.Error("upsert older than the tombstone was applied")
	}
}

func testSameProductTwice(t *testing.T, open Open) {
	ix := open(t)
	a := spec{SKU: "a", Title: "Alpha old"}.Product()
	a2 := a
	a2.Title = "Alpha new"
	b := spec{SKU: "b", Title: "Beta old"}.Product()
	b2 := b
	b2.Title = "Beta new"
	res := apply(t, ix,
		upsertAt(a, 1), upsertAt(a2, 2), // newer last
		upsertAt(b2, 2), upsertAt(b, 1), // newer first
	)
	if !sameCounts(res, schemas.ApplyResult{Indexed: 2, Stale: 2}) {
		t.Errorf("result %+v, want 2 indexed and 2 stale", res)
	}
	for id, want := range map[string]string{a.ID: "Alpha new", b.ID: "Beta new"} {
		if title, _ := getTitle(t, ix, id); title != want {
			t.Errorf("%s: title %q, want %q", id, title, want)
		}
	}
	c := spec{SKU: "c", Title: "Gamma"}.Product()
	res = apply(t, ix, upsertAt(c, 3), deleteAt(c.ID, 4))
	if !sameCounts(res, schemas.ApplyResult{Deleted: 1, Stale: 1}) {
		t.Errorf("upsert then newer delete: %+v", res)
	}
	if _, ok := getTitle(t, ix, c.ID); ok {
		t.Error("product deleted later in the same call is still there")
	}
}

func testReplay(t *testing.T, open Open) {
	ix := open(t)
	cat := walkCatalog(40)
	apply(t, ix, upsertAt(cat[0], 5), upsertAt(cat[1], 1))
	var changes []schemas.ProductChange
	for i, p := range cat {
		changes = append(changes, upsertAt(p, 3))
		switch {
		case i%7 == 0:
			changes = append(changes, deleteAt(p.ID, 4))
		case i%5 == 0:
			changes = append(changes, upsertAt(p, 2))
		}
	}
	first := apply(t, ix, changes...)
	before := walk(t, ix, schemas.SearchRequest{Sort: schemas.SortPriceAsc, Limit: 100})
	second := apply(t, ix, changes...)
	if !sameCounts(first, second) {
		t.Errorf("replay: %+v, first run %+v", second, first)
	}
	if first.Indexed+first.Deleted+first.Stale != int64(len(changes)) {
		t.Errorf("result %+v does not account for %d changes", first, len(changes))
	}
	after := walk(t, ix, schemas.SearchRequest{Sort: schemas.SortPriceAsc, Limit: 100})
	if !slices.Equal(before, after) {
		t.Errorf("replay changed the catalog: %d products before, %d after", len(before), len(after))
	}
	for i, p := range cat {
		_, ok := getTitle(t, ix, p.ID)
		// cat[0] is at v5 already, above the v4 delete.
		if wantLive := i == 0 || i%7 != 0; ok != wantLive {
			t.Errorf("%s: present %v, want %v", p.ID, ok, wantLive)
		}
	}
}

func testEmptyResult(t *testing.T, open Open) {
	ix := open(t)
	res := find(t, ix, schemas.SearchRequest{})
	if res.Total != 0 || len(res.Hits) != 0 || res.NextCursor != "" {
		t.Errorf("empty index: %+v", res)
	}
	ix = load(t, open, textCatalog()...)
	res = find(t, ix, schemas.SearchRequest{Text: "zzzzqqq"})
	if res.Total != 0 || len(res.Hits) != 0 || res.NextCursor != "" {
		t.Errorf("no match: %+v", res)
	}
	if res.Hits == nil {
		t.Error("Hits is nil, want an empty list")
	}
}
