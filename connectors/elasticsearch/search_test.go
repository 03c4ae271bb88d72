package elasticsearch

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"feedline/schemas"
)

// searchNode is a node whose search answers are set by the test; it keeps
// the bodies of the searches it received.
type searchNode struct {
	*node
	mu     sync.Mutex
	answer any
}

func newSearchNode(t *testing.T) (*searchNode, *Index) {
	sn := &searchNode{node: newNode(t), answer: recorded(t, exSearch)}
	sn.on("POST", "/products/_search", func(seen) reply {
		sn.mu.Lock()
		defer sn.mu.Unlock()
		return reply{200, sn.answer}
	})
	return sn, openNode(t, sn.node, testConfig(sn.node))
}

func (sn *searchNode) respond(v any) {
	sn.mu.Lock()
	sn.answer = v
	sn.mu.Unlock()
}

func (sn *searchNode) lastSearch(t *testing.T) map[string]any {
	t.Helper()
	s := sn.requests("POST /products/_search")
	if len(s) == 0 {
		t.Fatal("no search request sent")
	}
	return jsonOf(t, s[len(s)-1].Body).(map[string]any)
}

func int64p(v int64) *int64 { return &v }

// Facet aggregations and the returned source are the same in every search;
// a search naming a currency also takes the price statistics in it.
const (
	commonSource = `
	"track_total_hits": 10000,
	"_source": {"excludes": ["category_paths", "effective_price", "deleted", "identifiers", "suggest"]},`
	facetAggs = `
		"brand": {"terms": {"field": "brand.keyword", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}},
		"category": {"terms": {"field": "category_paths", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}},
		"partner": {"terms": {"field": "partner", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}},
		"availability": {"terms": {"field": "availability", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}}`
	commonBody = commonSource + `"aggs": {` + facetAggs + `}`
)

func commonBodyIn(currency string) string {
	return commonSource + `"aggs": {` + facetAggs + `,
		"price_stats": {"filter": {"term": {"currency": "` + currency + `"}},
			"aggs": {"min": {"min": {"field": "effective_price"}}, "max": {"max": {"field": "effective_price"}}}}}`
}

// A text search asks for its title and description whole, matches marked.
const highlightBody = `,
	"highlight": {"pre_tags": ["\ue000"], "post_tags": ["\ue001"], "fields": {
		"title": {"number_of_fragments": 0}, "description": {"number_of_fragments": 0}}}`

func TestRecordedSearchDSL(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	cases := []struct {
		name string
		r    schemas.SearchRequest
		want string
	}{
		{"no text, no filters: newest first", schemas.SearchRequest{}, `{
			"query": {"bool": {"filter": [{"term": {"deleted": false}}]}},
			"sort": [{"updated_at": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBody + `}`},
		{"text: relevance across title, brand, description", schemas.SearchRequest{Text: "  삼성 무선이어폰 "}, `{
			"query": {"bool": {
				"must": [{"multi_match": {"type": "cross_fields", "query": "삼성 무선이어폰", "fields": ["title^3", "brand^2", "description^1"], "minimum_should_match": "3<75%"}}],
				"should": [
					{"constant_score": {"filter": {"match": {"title": {"query": "삼성 무선이어폰"}}}, "boost": 3}},
					{"constant_score": {"filter": {"match": {"brand": {"query": "삼성 무선이어폰"}}}, "boost": 2}},
					{"constant_score": {"filter": {"match": {"description": {"query": "삼성 무선이어폰"}}}, "boost": 1}}],
				"filter": [{"term": {"deleted": false}}]}},
			"sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBody + highlightBody + `}`},
		{"every filter, values sorted and de-duplicated", schemas.SearchRequest{
			Brands: []string{"Sony", "Apple", "Sony"}, Categories: []string{"Electronics > Audio", "Sports"},
			Partners: []string{"shop2", "shop1"}, Availability: []schemas.Availability{schemas.Preorder, schemas.InStock},
			MinPrice: int64p(1500), MaxPrice: int64p(3500), Sort: schemas.SortPriceAsc, Limit: 5,
		}, `{
			"query": {"bool": {"filter": [
				{"term": {"deleted": false}},
				{"terms": {"brand.keyword": ["Apple", "Sony"]}},
				{"terms": {"category_paths": ["Electronics > Audio", "Sports"]}},
				{"terms": {"partner": ["shop1", "shop2"]}},
				{"terms": {"availability": ["in_stock", "preorder"]}},
				{"range": {"effective_price": {"gte": 1500, "lte": 3500}}}]}},
			"sort": [{"effective_price": {"order": "asc"}}, {"id": {"order": "asc"}}],
			"size": 6,` + commonBody + `}`},
		{"minimum price only, price descending, limit capped", schemas.SearchRequest{MinPrice: int64p(0), Sort: schemas.SortPriceDesc, Limit: 500}, `{
			"query": {"bool": {"filter": [{"term": {"deleted": false}}, {"range": {"effective_price": {"gte": 0}}}]}},
			"sort": [{"effective_price": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 101,` + commonBody + `}`},
		{"text sorted by newest", schemas.SearchRequest{Text: "wireless", Sort: schemas.SortNewest, MaxPrice: int64p(9)}, `{
			"query": {"bool": {
				"must": [{"bool": {"minimum_should_match": 1, "should": [
					{"multi_match": {"type": "cross_fields", "query": "wireless", "fields": ["title^3", "brand^2", "description^1"], "minimum_should_match": "3<75%"}},
					{"bool": {"must": [{"bool": {"minimum_should_match": 1, "should": [
						{"multi_match": {"type": "cross_fields", "query": "wireless", "fields": ["title^3", "brand^2", "description^1"], "operator": "and"}},
						{"multi_match": {"type": "best_fields", "query": "wireless", "fields": ["title^3", "brand^2", "description^1"], "fuzziness": "AUTO", "max_expansions": 50, "boost": 0.3}},
						{"multi_match": {"type": "bool_prefix", "query": "wireless", "fields": ["title^3", "brand^2", "description^1"], "max_expansions": 50, "boost": 0.5}}]}}]}}]}}],
				"should": [
					{"constant_score": {"filter": {"match": {"title": {"query": "wireless"}}}, "boost": 3}},
					{"constant_score": {"filter": {"match": {"brand": {"query": "wireless"}}}, "boost": 2}},
					{"constant_score": {"filter": {"match": {"description": {"query": "wireless"}}}, "boost": 1}}],
				"filter": [{"term": {"deleted": false}}, {"range": {"effective_price": {"lte": 9}}}]}},
			"sort": [{"updated_at": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBody + highlightBody + `}`},
		{"synonyms: a partner's alternative in its products only", schemas.SearchRequest{Text: "노트북",
			Synonyms: schemas.NewThesaurus(schemas.SynonymList{}, map[string]schemas.SynonymList{"shop2": {Groups: [][]string{{"노트북", "Laptop"}}}})}, `{
			"query": {"bool": {
				"must": [{"bool": {"minimum_should_match": 1, "should": [
					{"multi_match": {"type": "cross_fields", "query": "노트북", "fields": ["title^3", "brand^2", "description^1"], "minimum_should_match": "3<75%"}},
					{"bool": {"must": [{"bool": {"minimum_should_match": 1, "should": [
						{"multi_match": {"type": "cross_fields", "query": "노트북", "fields": ["title^3", "brand^2", "description^1"], "operator": "and"}},
						{"bool": {"filter": [{"terms": {"partner": ["shop2"]}}], "must": [
							{"multi_match": {"type": "cross_fields", "query": "laptop", "fields": ["title^3", "brand^2", "description^1"], "operator": "and"}}]}}]}}]}}]}}],
				"should": [
					{"constant_score": {"filter": {"match": {"title": {"query": "노트북"}}}, "boost": 3}},
					{"constant_score": {"filter": {"match": {"brand": {"query": "노트북"}}}, "boost": 2}},
					{"constant_score": {"filter": {"match": {"description": {"query": "노트북"}}}, "boost": 1}}],
				"filter": [{"term": {"deleted": false}}]}},
			"sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBody + highlightBody + `}`},
		{"price range and sort in a currency: its products only", schemas.SearchRequest{
			MinPrice: int64p(1000), MaxPrice: int64p(2000), Sort: schemas.SortPriceAsc, Currency: "usd",
		}, `{
			"query": {"bool": {"filter": [
				{"term": {"deleted": false}},
				{"term": {"currency": "USD"}},
				{"range": {"effective_price": {"gte": 1000, "lte": 2000}}}]}},
			"sort": [{"effective_price": {"order": "asc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBodyIn("USD") + `}`},
		{"price sort alone in a currency", schemas.SearchRequest{Sort: schemas.SortPriceDesc, Currency: "KRW"}, `{
			"query": {"bool": {"filter": [{"term": {"deleted": false}}, {"term": {"currency": "KRW"}}]}},
			"sort": [{"effective_price": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBodyIn("KRW") + `}`},
		{"a currency without price filter or sort: every currency", schemas.SearchRequest{Currency: "USD", Brands: []string{"Sony"}}, `{
			"query": {"bool": {"filter": [{"term": {"deleted": false}}, {"terms": {"brand.keyword": ["Sony"]}}]}},
			"sort": [{"updated_at": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBodyIn("USD") + `}`},
		{"relevance without text", schemas.SearchRequest{Sort: schemas.SortRelevance, Limit: -3}, `{
			"query": {"bool": {"filter": [{"term": {"deleted": false}}]}},
			"sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}],
			"size": 21,` + commonBody + `}`},
	}
	for _, c := range cases {
		if _, err := ix.Search(t.Context(), c.r); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got, want := canonJSON(t, sn.lastSearch(t)), canonJSON(t, jsonOf(t, []byte(c.want))); got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}

	before := len(sn.requests(""))
	if _, err := ix.Search(t.Context(), schemas.SearchRequest{Sort: "cheapest"}); err == nil {
		t.Error("unknown sort accepted")
	}
	if len(sn.requests("")) != before {
		t.Error("a request with an unknown sort reached the node")
	}
}

// searchAnswer adapts the recorded search response: its hit becomes the
// given products (with sort values), Total n, and facets are added.
func searchAnswer(t *testing.T, total int, hits []schemas.Product, sorts [][]any, facets map[string][]schemas.FacetCount) map[string]any {
	t.Helper()
	r := recordedJSON(t, exSearch)
	h := r["hits"].(map[string]any)
	h["total"].(map[string]any)["value"] = total
	template := h["hits"].([]any)[0].(map[string]any)
	var out []any
	for i, p := range hits {
		hit := make(map[string]any, len(template)+1)
		for k, v := range template {
			hit[k] = v
		}
		var enc docEncoder
		pc := p
		if err := enc.document(&schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: p.Version, Product: &pc}); err != nil {
			t.Fatal(err)
		}
		hit["_id"], hit["_source"], hit["sort"] = p.ID, stdjson.RawMessage(bytes.Clone(enc.buf.Bytes())), sorts[i]
		out = append(out, hit)
	}
	h["hits"] = out
	aggs := map[string]any{}
	for name, counts := range facets {
		var buckets []any
		for _, c := range counts {
			buckets = append(buckets, map[string]any{"key": c.Value, "doc_count": c.Count})
		}
		aggs[name] = map[string]any{"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}
	}
	r["aggregations"] = aggs
	return r
}

func TestRecordedSearchResponseAsRecorded(t *testing.T) {
	t.Parallel()
	// SearchResponseExample1 unchanged: a hit whose source is not a product,
	// no aggregations.
	_, ix := newSearchNode(t)
	res, err := ix.Search(t.Context(), schemas.SearchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 20 || len(res.Hits) != 1 || res.NextCursor != "" {
		t.Errorf("result %+v, want the recorded total 20 and its one hit", res)
	}
	if b, c := res.Facets["brand"], res.Facets["category"]; b == nil || c == nil || len(b)+len(c) != 0 {
		t.Errorf("facets %v, want both present and empty", res.Facets)
	}
}

func TestRecordedSearchResponseWithFacets(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	a, b := product("a", "삼성 무선 이어폰"), product("b", "Wireless Earbuds")
	b.Brand, b.SalePrice = "Sony", int64p(1500)
	facets := map[string][]schemas.FacetCount{
		"brand":        {{Value: "Sony", Count: 7}, {Value: "삼성", Count: 7}, {Value: "Apple", Count: 2}},
		"category":     {{Value: "전자제품", Count: 16}, {Value: "전자제품 > 음향기기", Count: 9}},
		"partner":      {{Value: "shop1", Count: 16}},
		"availability": {{Value: "in_stock", Count: 12}, {Value: "preorder", Count: 4}},
	}
	sn.respond(searchAnswer(t, 16, []schemas.Product{a, b}, [][]any{{9.5, a.ID}, {8.25, b.ID}}, facets))
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "이어폰"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 16 || !reflect.DeepEqual(res.Hits, []schemas.Product{a, b}) {
		t.Errorf("hits %+v total %d", res.Hits, res.Total)
	}
	if !reflect.DeepEqual(res.Facets, facets) {
		t.Errorf("facets %v, want %v", res.Facets, facets)
	}
	if res.NextCursor != "" {
		t.Error("cursor on a page shorter than the limit")
	}
}

func TestRecordedSearchCursor(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	ps := []schemas.Product{product("a", "A"), product("b", "B"), product("c", "C")}
	// Three hits for a limit of two: a next page exists. The score of the
	// last hit of the page must come back exactly as the node gave it.
	sn.respond(searchAnswer(t, 40, ps, [][]any{{2.5, ps[0].ID}, {1.3862942, ps[1].ID}, {1.0, ps[2].ID}}, nil))
	r := schemas.SearchRequest{Text: "wireless", Brands: []string{"B1", "B2"}, Limit: 2}
	res, err := ix.Search(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 2 || res.NextCursor == "" {
		t.Fatalf("page %+v, want two hits and a cursor", res)
	}

	next := r
	next.Cursor, next.Limit, next.Brands = res.NextCursor, 5, []string{"B2", "B1", "B2"}
	if _, err := ix.Search(t.Context(), next); err != nil {
		t.Fatalf("same search, other limit and filter order: %v", err)
	}
	after, _ := stdjson.Marshal(sn.lastSearch(t)["search_after"])
	if string(after) != `[1.3862942,"shop1:b"]` {
		t.Errorf("search_after %s, want the sort values of the page's last hit", after)
	}
	if size := sn.lastSearch(t)["size"]; size != 6.0 {
		t.Errorf("size %v with limit 5", size)
	}

	before := len(sn.requests(""))
	bad := func(name string, r schemas.SearchRequest) {
		t.Helper()
		if _, err := ix.Search(t.Context(), r); !errors.Is(err, schemas.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
	for name, change := range map[string]func(*schemas.SearchRequest){
		"other text":      func(r *schemas.SearchRequest) { r.Text = "earbuds" },
		"other brands":    func(r *schemas.SearchRequest) { r.Brands = []string{"B1"} },
		"other sort":      func(r *schemas.SearchRequest) { r.Sort = schemas.SortPriceAsc },
		"a price bound":   func(r *schemas.SearchRequest) { r.MinPrice = int64p(1) },
		"a partner":       func(r *schemas.SearchRequest) { r.Partners = []string{"shop1"} },
		"a category":      func(r *schemas.SearchRequest) { r.Categories = []string{"A"} },
		"an availability": func(r *schemas.SearchRequest) { r.Availability = []schemas.Availability{schemas.InStock} },
	} {
		other := r
		other.Cursor = res.NextCursor
		change(&other)
		bad(name, other)
	}
	for _, junk := range []string{"x", "!!!", "eyJrIjoxfQ", strings.Repeat("A", 40), res.NextCursor[:len(res.NextCursor)-3]} {
		other := r
		other.Cursor = junk
		bad("junk "+junk, other)
	}
	if len(sn.requests("")) != before {
		t.Error("a search with a bad cursor reached the node")
	}
}

// A search answer that breaks off in transport is an outage saying what
// broke, not a JSON error: goccy/go-json would call it the end of the input.
func TestRecordedSearchAnswerBrokenOff(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	full := recorded(t, exSearch)
	sn.respond(brokenOff(full[:len(full)/2]))
	_, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "kettle"})
	if !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), "read response") || strings.Contains(err.Error(), "end of JSON input") {
		t.Fatalf("search answer broken off: %v, want ErrUnavailable saying the read failed", err)
	}
	sn.respond(full)
	if _, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "kettle"}); err != nil {
		t.Errorf("the next search, answered whole: %v", err)
	}
}

func TestMarkedRanges(t *testing.T) {
	for _, c := range []struct {
		marked, value string
		want          [][2]int
		ok            bool
	}{
		{"\ue000Blue\ue001 \ue000Kettle\ue001", "Blue Kettle", [][2]int{{0, 4}, {5, 11}}, true},
		{"🔥 \ue000Kettle\ue001", "🔥 Kettle", [][2]int{{3, 9}}, true},
		{"무선\ue000이어\ue001\ue000폰\ue001", "무선이어폰", [][2]int{{2, 5}}, true},
		{"\ue000Blue\ue001", "Blue!", nil, false},
	} {
		got, ok := markedRanges(c.marked, c.value)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("markedRanges(%q, %q) = %v, %v; want %v, %v", c.marked, c.value, got, ok, c.want, c.ok)
		}
	}
}
