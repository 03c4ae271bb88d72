package elasticsearch

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	json "github.com/goccy/go-json"

	"feedline/schemas"
)

// textFields are the fields the query text searches, with their boosts.
var textFields = []struct {
	name  string
	boost int
}{
	{FieldTitle, BoostTitle},
	{FieldBrand, BoostBrand},
	{FieldDescription, BoostDescription},
}

// boostedTextFields names textFields with their boosts ("title^3").
func boostedTextFields() []string {
	out := make([]string, len(textFields))
	for i, f := range textFields {
		out[i] = fmt.Sprintf("%s^%d", f.name, f.boost)
	}
	return out
}

// textMatch is how many analysed query terms must match, in any of the
// text fields: all of up to three, three quarters of more, as in the
// embedded index (a spaced Korean phrase still finds its run-together form,
// whose bigrams differ at the join).
const textMatch = "3<75%"

// Search runs one page of a product search. Filters are filter clauses
// that add nothing to the score; facets and Total cover the whole filtered
// result, not just the page.
func (ix *Index) Search(ctx context.Context, r schemas.SearchRequest) (schemas.SearchResult, error) {
	p, err := plan(r)
	if err != nil {
		return schemas.SearchResult{}, err
	}
	var after []json.RawMessage
	if r.Cursor != "" {
		if after, err = p.decodeCursor(r.Cursor); err != nil {
			return schemas.SearchResult{}, err
		}
	}
	body, err := p.body(after)
	if err != nil {
		return schemas.SearchResult{}, fmt.Errorf("elasticsearch: search: %w", err)
	}
	var sr searchResponse
	req := esapi.SearchRequest{Index: []string{ix.target}, Body: bytes.NewReader(body)}
	if err := ix.conn.call(ctx, req, &sr); err != nil {
		return schemas.SearchResult{}, fmt.Errorf("elasticsearch: search: %w", err)
	}
	return p.result(sr)
}

// searchResponse is the part of a search answer Search reads.
type searchResponse struct {
	Hits struct {
		Total struct {
			Value    uint64 `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			ID        string              `json:"_id"`
			Source    json.RawMessage     `json:"_source"`
			Sort      []json.RawMessage   `json:"sort"`
			Highlight map[string][]string `json:"highlight"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]aggregation `json:"aggregations"`
}

func (p searchPlan) result(sr searchResponse) (schemas.SearchResult, error) {
	hits := sr.Hits.Hits
	out := schemas.SearchResult{
		Hits:        make([]schemas.Product, 0, min(len(hits), p.limit)),
		Facets:      make(map[string][]schemas.FacetCount, len(facetFields)),
		FacetsBasis: schemas.FacetsAllMatches, // aggregations count every match
	}
	// track_total_hits stops counting at the bound and says "gte" there;
	// "eq" at exactly the bound is the same answer either way.
	out.Total, out.TotalRelation = schemas.BoundedTotal(sr.Hits.Total.Value)
	if sr.Hits.Total.Relation == "gte" {
		out.Total, out.TotalRelation = min(sr.Hits.Total.Value, schemas.SearchTotalBound), schemas.TotalAtLeast
	}
	for i, h := range hits {
		if i == p.limit {
			c, err := p.encodeCursor(hits[i-1].Sort)
			if err != nil {
				return schemas.SearchResult{}, err
			}
			out.NextCursor = c
			break
		}
		prod, err := decodeProduct(h.ID, h.Source)
		if err != nil {
			return schemas.SearchResult{}, err
		}
		out.Hits = append(out.Hits, prod)
		if p.highlight {
			out.Highlights = append(out.Highlights, highlightOf(&prod, h.Highlight))
		}
	}
	p.readFacets(sr.Aggregations, &out)
	return out, nil
}

// storedDocument is a document's source: a product, or a tombstone.
type storedDocument struct {
	schemas.Product
	Deleted bool `json:"deleted"`
}

func decodeProduct(id string, src []byte) (schemas.Product, error) {
	if len(src) == 0 {
		return schemas.Product{}, fmt.Errorf("elasticsearch: document %s has no source", id)
	}
	var d storedDocument
	if err := json.Unmarshal(src, &d); err != nil {
		return schemas.Product{}, fmt.Errorf("elasticsearch: decode %s: %w", id, err)
	}
	return d.Product, nil
}

// Get returns the product stored under id, or schemas.ErrNotFound for a
// missing product or a tombstone.
func (ix *Index) Get(ctx context.Context, id string) (schemas.Product, error) {
	var doc struct {
		Found  bool            `json:"found"`
		Source json.RawMessage `json:"_source"`
	}
	req := esapi.GetRequest{Index: ix.target, DocumentID: url.PathEscape(id)}
	err := ix.conn.call(ctx, req, &doc)
	if isStatus(err, http.StatusNotFound) && !isType(err, "index_not_found_exception") {
		return schemas.Product{}, fmt.Errorf("elasticsearch: get %s: %w", id, schemas.ErrNotFound)
	}
	if err != nil {
		return schemas.Product{}, fmt.Errorf("elasticsearch: get %s: %w", id, err)
	}
	if !doc.Found {
		return schemas.Product{}, fmt.Errorf("elasticsearch: get %s: %w", id, schemas.ErrNotFound)
	}
	var d storedDocument
	if err := json.Unmarshal(doc.Source, &d); err != nil {
		return schemas.Product{}, fmt.Errorf("elasticsearch: decode %s: %w", id, err)
	}
	if d.Deleted {
		return schemas.Product{}, fmt.Errorf("elasticsearch: get %s: %w", id, schemas.ErrNotFound)
	}
	return d.Product, nil
}

// obj is a JSON object of the query DSL.
type obj = map[string]any

// searchPlan is a request turned into query DSL, with the key that ties
// cursors to it.
type searchPlan struct {
	query     obj
	sort      []any
	limit     int
	key       uint64
	highlight bool // a text search: hits say where they matched
	// statsCurrency is what the price statistics are taken in; "" takes none.
	statsCurrency string
}

func plan(r schemas.SearchRequest) (searchPlan, error) {
	c := r.Canonical()
	text, sort := c.Text, c.Sort
	var p searchPlan
	tieBreak := obj{FieldID: obj{"order": "asc"}}
	switch sort {
	case schemas.SortRelevance:
		p.sort = []any{obj{"_score": obj{"order": "desc"}}, tieBreak}
	case schemas.SortPriceAsc:
		p.sort = []any{obj{FieldEffective: obj{"order": "asc"}}, tieBreak}
	case schemas.SortPriceDesc:
		p.sort = []any{obj{FieldEffective: obj{"order": "desc"}}, tieBreak}
	case schemas.SortNewest:
		p.sort = []any{obj{FieldUpdatedAt: obj{"order": "desc"}}, tieBreak}
	default:
		return p, fmt.Errorf("elasticsearch: unknown sort %q", r.Sort)
	}
	p.limit = r.PageLimit()
	p.statsCurrency = strings.ToUpper(strings.TrimSpace(r.Currency))
	brands, categories, partners, avail := c.Brands, c.Categories, c.Partners, c.Availability

	filter := []any{obj{"term": obj{FieldDeleted: false}}}
	anyOf := func(field string, values []string) {
		if len(values) > 0 {
			filter = append(filter, obj{"terms": obj{field: values}})
		}
	}
	anyOf(FieldBrandKeyword, brands)
	anyOf(FieldCategoryPaths, categories)
	anyOf(FieldPartner, partners)
	anyOf(FieldAvailability, avail)
	if c.Currency != "" {
		// Minor units of other currencies do not compare: a price filter
		// or sort leaves their products out.
		filter = append(filter, obj{"term": obj{FieldCurrency: c.Currency}})
	}
	if r.MinPrice != nil || r.MaxPrice != nil {
		bounds := obj{}
		if r.MinPrice != nil {
			bounds["gte"] = *r.MinPrice
		}
		if r.MaxPrice != nil {
			bounds["lte"] = *r.MaxPrice
		}
		filter = append(filter, obj{"range": obj{FieldEffective: bounds}})
	}
	boolQuery := obj{"filter": filter}
	if text != "" {
		// cross_fields analyses the query once and needs each term in any
		// of the fields (they share one analyzer), weighing every field by
		// the IDF the term has where it is most common, as the embedded
		// index does (combined_fields would too, but OpenSearch 2 lacks it).
		// Its tie-break lowers that IDF a little in the fields where the
		// term is rarer, which in a small catalog can outweigh the title's
		// boost; a bonus of each field's boost when the field holds any
		// query term keeps a title match ahead of a description match.
		var match any = obj{"multi_match": obj{
			"type":                 "cross_fields",
			"query":                text,
			"fields":               boostedTextFields(),
			"minimum_should_match": textMatch,
		}}
		if tq := c.TextQuery(); tq.Forgiving() {
			match = obj{"bool": obj{"should": []any{match, forgivingMatch(tq)}, "minimum_should_match": 1}}
		}
		if key, ok := schemas.IdentifierKey(text); ok {
			// The product carrying it, first: its boost outweighs any text score.
			match = obj{"bool": obj{"should": []any{
				obj{"term": obj{FieldIdentifiers: obj{"value": key, "boost": BoostIdentifier}}},
				match,
			}, "minimum_should_match": 1}}
		}
		boolQuery["must"] = []any{match}
		bonus := make([]any, len(textFields))
		for i, f := range textFields {
			bonus[i] = obj{"constant_score": obj{
				"filter": obj{"match": obj{f.name: obj{"query": text}}},
				"boost":  f.boost,
			}}
		}
		boolQuery["should"] = bonus
	}
	p.query = obj{"bool": boolQuery}
	p.highlight = text != ""

	p.key = c.Key()
	return p, nil
}

// body is the search request body; after continues from a cursor.
func (p searchPlan) body(after []json.RawMessage) ([]byte, error) {
	b := obj{
		"query":            p.query,
		"sort":             p.sort,
		"size":             p.limit + 1, // one past the page tells whether another follows
		"track_total_hits": schemas.SearchTotalBound,
		"_source":          obj{"excludes": []string{FieldCategoryPaths, FieldEffective, FieldDeleted, FieldIdentifiers, FieldSuggest}},
		"aggs":             p.aggs(),
	}
	if after != nil {
		b["search_after"] = after
	}
	if p.highlight {
		b["highlight"] = highlightRequest()
	}
	return json.Marshal(b)
}

// canonical sorts and de-duplicates filter values, so the same filter in
// another order is the same search for cursors.
// cursor is what NextCursor carries: the sort values of the page's last hit,
// as the cluster gave them, and the key of the search they belong to.
type cursor struct {
	Key   uint64            `json:"k"`
	After []json.RawMessage `json:"a"`
}

func (p searchPlan) encodeCursor(sortValues []json.RawMessage) (string, error) {
	if len(sortValues) != len(p.sort) {
		return "", fmt.Errorf("elasticsearch: search: hit has %d sort values, want %d", len(sortValues), len(p.sort))
	}
	b, err := json.Marshal(cursor{Key: p.key, After: sortValues})
	if err != nil {
		return "", fmt.Errorf("elasticsearch: cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var errBadCursor = fmt.Errorf("elasticsearch: %w", schemas.ErrBadCursor)

// decodeCursor checks that s came from this search: same key, a number for
// the sort key and a string for the id tie-break.
func (p searchPlan) decodeCursor(s string) ([]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errBadCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Key != p.key || len(c.After) != len(p.sort) {
		return nil, errBadCursor
	}
	if _, err := strconv.ParseFloat(string(c.After[0]), 64); err != nil {
		return nil, errBadCursor
	}
	var id string
	if err := json.Unmarshal(c.After[1], &id); err != nil {
		return nil, errBadCursor
	}
	return c.After, nil
}

// Products reads many products in one _mget; missing ids and tombstones are
// left out (schemas.ProductLookup).
func (ix *Index) Products(ctx context.Context, ids []string) (map[string]schemas.Product, error) {
	out := make(map[string]schemas.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	body, err := json.Marshal(obj{"ids": ids})
	if err != nil {
		return nil, err
	}
	var res struct {
		Docs []struct {
			ID     string          `json:"_id"`
			Found  bool            `json:"found"`
			Source json.RawMessage `json:"_source"`
		} `json:"docs"`
	}
	req := esapi.MgetRequest{Index: ix.target, Body: bytes.NewReader(body)}
	if err := ix.conn.call(ctx, req, &res); err != nil {
		return nil, fmt.Errorf("elasticsearch: get %d products: %w", len(ids), err)
	}
	for _, d := range res.Docs {
		if !d.Found {
			continue
		}
		var doc storedDocument
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			return nil, fmt.Errorf("elasticsearch: decode %s: %w", d.ID, err)
		}
		if !doc.Deleted {
			out[d.ID] = doc.Product
		}
	}
	return out, nil
}
