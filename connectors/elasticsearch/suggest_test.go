package elasticsearch

import (
	"reflect"
	"testing"

	"feedline/schemas"
)

// TestRecordedSearchReadsPriceStats: the filtered min and max of the
// answer become the search's price statistics, in its currency.
func TestRecordedSearchReadsPriceStats(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	answer := searchAnswer(t, 3, nil, nil, nil)
	answer["aggregations"].(map[string]any)[priceStats] = map[string]any{
		"doc_count": 2, "min": map[string]any{"value": 900.0}, "max": map[string]any{"value": 50000.0},
	}
	sn.respond(answer)
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Currency: "krw"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (&schemas.PriceStats{Currency: "KRW", Min: 900, Max: 50000, Count: 2}); !reflect.DeepEqual(res.PriceStats, want) {
		t.Errorf("price stats %+v, want %+v", res.PriceStats, want)
	}

	// None of the matches in the currency: no statistics.
	answer["aggregations"].(map[string]any)[priceStats] = map[string]any{
		"doc_count": 0, "min": map[string]any{"value": nil}, "max": map[string]any{"value": nil},
	}
	sn.respond(answer)
	if res, err = ix.Search(t.Context(), schemas.SearchRequest{Currency: "KRW"}); err != nil || res.PriceStats != nil {
		t.Errorf("no match in the currency: %+v, %v", res.PriceStats, err)
	}
}

// TestRecordedSuggestDSL: a prefix is one prefix query and a terms
// aggregation whose pattern takes the prefix literally.
func TestRecordedSuggestDSL(t *testing.T) {
	t.Parallel()
	sn, ix := newSearchNode(t)
	sn.respond(map[string]any{"aggregations": map[string]any{"suggest": map[string]any{"buckets": []any{
		map[string]any{"key": "sony\x1ft\x1fsony", "doc_count": 5},
		map[string]any{"key": "sony\x1fb\x1fSony", "doc_count": 3},
		map[string]any{"key": "sony.x\x1fb\x1fSONY.X", "doc_count": 1},
	}}}})
	got, err := ix.Suggest(t.Context(), schemas.SuggestRequest{Prefix: " SON", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []schemas.Suggestion{{Text: "Sony", Kind: schemas.SuggestBrand, Count: 3}, {Text: "SONY.X", Kind: schemas.SuggestBrand, Count: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("suggestions %v, want %v", got, want)
	}
	body := canonJSON(t, sn.lastSearch(t))
	wantBody := canonJSON(t, jsonOf(t, []byte(`{
		"size": 0, "track_total_hits": false,
		"query": {"bool": {"filter": [{"prefix": {"suggest": "son"}}]}},
		"aggs": {"suggest": {"terms": {"field": "suggest", "include": "son.*", "size": 10,
			"order": [{"_count": "desc"}, {"_key": "asc"}]}}}}`)))
	if body != wantBody {
		t.Errorf("suggest body\n got %s\nwant %s", body, wantBody)
	}
	if got := literalRegexp("a.b 헤드*"); got != `a\.b\ 헤드\*` {
		t.Errorf("literalRegexp: %s", got)
	}
}
