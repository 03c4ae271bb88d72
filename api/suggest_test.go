package api

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"feedline/schemas"
)

// TestSuggestAsYouType: suggestions of the index, in the documented shape,
// and the parameters' problems.
func TestSuggestAsYouType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	indexProducts(t, e)

	req := request(http.MethodGet, "/v1/suggest?q=S", "", nil)
	r := e.send(t, req)
	v.check(t, req, r)
	var got suggestAnswer
	r.decode(t, &got)
	// The title word "socks" is named by its category: left out.
	want := []schemas.Suggestion{
		{Text: "shoe", Kind: schemas.SuggestTerm, Count: 2},
		{Text: "Shoes", Kind: schemas.SuggestCategory, Count: 2},
		{Text: "Apparel > Socks", Kind: schemas.SuggestCategory, Count: 2},
		{Text: "Stride", Kind: schemas.SuggestBrand, Count: 1},
	}
	if r.StatusCode != http.StatusOK || !reflect.DeepEqual(got.Suggestions, want) {
		t.Errorf("q=S: %d %s\nwant %v", r.StatusCode, r.body, want)
	}

	for _, target := range []string{
		"/v1/suggest",
		"/v1/suggest?q=%20%20",
		"/v1/suggest?q=" + strings.Repeat("헤", schemas.SuggestMaxPrefix+1),
		"/v1/suggest?q=so&limit=0",
		"/v1/suggest?q=so&limit=21",
		"/v1/suggest?q=so&limit=few",
	} {
		req := request(http.MethodGet, target, "", nil)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != http.StatusBadRequest || r.problem(t).Type != ProblemType+"invalid-parameter" {
			t.Errorf("%s: %d %s, want 400 invalid-parameter", target, r.StatusCode, r.body)
		}
	}
	req = request(http.MethodGet, "/v1/suggest?limit=1&q="+url.QueryEscape(strings.Repeat("헤", schemas.SuggestMaxPrefix)), "", nil)
	if r := e.send(t, req); r.StatusCode != http.StatusOK {
		t.Errorf("q of %d characters: %d %s", schemas.SuggestMaxPrefix, r.StatusCode, r.body)
	}
}

// hiddenSuggester is an index that offers no suggestions.
type hiddenSuggester struct{ schemas.ProductIndex }

func TestSuggestNotOfferedByTheBackend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Index = hiddenSuggester{c.Index} })
	v := newConformance(t)
	req := request(http.MethodGet, "/v1/suggest?q=so", "", nil)
	r := e.send(t, req)
	v.check(t, req, r)
	if r.StatusCode != http.StatusServiceUnavailable || r.problem(t).Type != ProblemType+"not-served" || r.Header.Get("Retry-After") != "" {
		t.Errorf("backend without suggestions: %d %s %v", r.StatusCode, r.body, r.Header)
	}
}

// TestSearchAnswersEveryFacetAndPriceStats: the four facets, and the price
// statistics in the request's currency or the service's.
func TestSearchAnswersEveryFacetAndPriceStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Currency = "EUR" })
	v := newConformance(t)
	indexProducts(t, e)
	for target, want := range map[string]*schemas.PriceStats{
		"/v1/search?q=socks":              {Currency: "EUR", Min: 1299, Max: 1299, Count: 1},
		"/v1/search?q=socks&currency=krw": {Currency: "KRW", Min: 1500, Max: 1500, Count: 1},
		"/v1/search":                      {Currency: "EUR", Min: 1299, Max: 9999, Count: 4},
		"/v1/search?currency=USD":         nil,
	} {
		req := request(http.MethodGet, target, "", nil)
		r := e.send(t, req)
		v.check(t, req, r)
		var res searchAnswer
		r.decode(t, &res)
		if !reflect.DeepEqual(res.PriceStats, want) {
			t.Errorf("%s: price stats %+v, want %+v", target, res.PriceStats, want)
		}
		for _, f := range []string{"brand", "category", "availability", "partner"} {
			if res.Facets[f] == nil {
				t.Errorf("%s: no %s facet in %s", target, f, r.body)
			}
		}
		if target == "/v1/search" {
			if got := res.Facets["availability"]; !reflect.DeepEqual(got, []schemas.FacetCount{{Value: "in_stock", Count: 4}, {Value: "out_of_stock", Count: 1}}) {
				t.Errorf("availability facet %v", got)
			}
			if got := res.Facets["partner"]; !reflect.DeepEqual(got, []schemas.FacetCount{{Value: "acme", Count: 5}}) {
				t.Errorf("partner facet %v", got)
			}
		}
	}
}
