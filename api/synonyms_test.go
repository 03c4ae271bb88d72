package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"feedline/schemas"
)

func TestPartnerSynonyms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.GlobalSynonyms = schemas.SynonymList{Groups: [][]string{{"earphones", "earbuds"}}}
	})
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	other := e.createPartner(t, "other")
	products := []schemas.Product{
		{ID: "acme:1", Partner: "acme", SKU: "1", Title: "Gaming Laptop", Price: 100, Currency: "KRW", Availability: schemas.InStock, Version: 1},
		{ID: "other:2", Partner: "other", SKU: "2", Title: "Laptop Stand", Price: 100, Currency: "KRW", Availability: schemas.InStock, Version: 1},
		{ID: "other:3", Partner: "other", SKU: "3", Title: "Wireless Earbuds", Price: 100, Currency: "KRW", Availability: schemas.InStock, Version: 1},
	}
	changes := make([]schemas.ProductChange, len(products))
	for i := range products {
		changes[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: products[i].ID, Version: 1, Product: &products[i]}
	}
	if _, err := e.index.Apply(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
	search := func(q string) response {
		t.Helper()
		req := request(http.MethodGet, "/v1/search?q="+q, "", nil)
		r := e.send(t, req)
		v.check(t, req, r)
		return r
	}
	hits := func(q string) []string {
		t.Helper()
		var res struct {
			Hits []struct {
				ID string `json:"id"`
			} `json:"hits"`
		}
		search(q).decode(t, &res)
		var out []string
		for _, h := range res.Hits {
			out = append(out, h.ID)
		}
		return out
	}
	if got := hits("%EB%85%B8%ED%8A%B8%EB%B6%81"); len(got) != 0 { // 노트북
		t.Errorf("노트북 before any synonym: %v", got)
	}
	if got := hits("earphones"); len(got) != 1 || got[0] != "other:3" {
		t.Errorf("earphones with the global list: %v", got)
	}
	for _, tc := range []struct {
		method, body, key string
		want              int
		has               string
	}{
		{http.MethodGet, "", key, 200, `{"groups":[]}`},
		{http.MethodPut, `{"groups": [["노트북", "laptop"]]}`, key, 200, `{"groups":[["노트북","laptop"]]}`},
		{http.MethodGet, "", testAdminKey, 200, `{"groups":[["노트북","laptop"]]}`},
		{http.MethodPut, `{"groups": [["노트북"]]}`, key, 422, "2 to 16"},
		{http.MethodPut, `{"groups": [["a", " "], ["b", "B"]]}`, key, 422, "empty term"},
		{http.MethodPut, `{"groups": "laptop"}`, key, 400, "groups"},
		{http.MethodGet, "", other, 403, ""},
	} {
		var req *http.Request
		if tc.body != "" {
			req = request(tc.method, "/v1/partners/acme/synonyms", tc.key, strings.NewReader(tc.body))
		} else {
			req = request(tc.method, "/v1/partners/acme/synonyms", tc.key, nil)
		}
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != tc.want || !strings.Contains(string(r.body), tc.has) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.body, r.StatusCode, r.body, tc.want, tc.has)
		}
		if tc.want == 422 && !strings.Contains(string(r.body), `"errors"`) {
			t.Errorf("%s %s: the problem lists no errors: %s", tc.method, tc.body, r.body)
		}
	}
	// acme's synonym finds acme's laptop only, and marks the word it matched.
	if got := hits("%EB%85%B8%ED%8A%B8%EB%B6%81"); len(got) != 1 || got[0] != "acme:1" {
		t.Errorf("노트북 with acme's synonym: %v", got)
	}
	if r := search("%EB%85%B8%ED%8A%B8%EB%B6%81"); !strings.Contains(string(r.body), `"highlight":{"title":[[7,13]]}`) {
		t.Errorf("노트북: no highlight of Laptop in %s", r.body)
	}
	if r := search("gamng"); !strings.Contains(string(r.body), `"highlight":{"title":[[0,6]]}`) {
		t.Errorf("gamng: no highlight of Gaming in %s", r.body)
	}
}
