package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	json "github.com/goccy/go-json"

	"feedline/schemas"
)

var _ schemas.ProductSuggester = (*Index)(nil)

// Suggest completes a prefix from the suggest field: the documents whose
// terms start with it, aggregated by those terms. Its cost grows with the
// documents carrying such a term, not with the catalog; tombstones carry
// none, and an update replaces its document's terms.
func (ix *Index) Suggest(ctx context.Context, r schemas.SuggestRequest) ([]schemas.Suggestion, error) {
	key := schemas.SuggestKey(r.Prefix)
	if key == "" {
		return []schemas.Suggestion{}, nil
	}
	limit := r.SuggestLimit()
	body, err := json.Marshal(suggestBody(key, schemas.SuggestCandidates(limit)))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: suggest: %w", err)
	}
	var res struct {
		Aggregations map[string]aggregation `json:"aggregations"`
	}
	req := esapi.SearchRequest{Index: []string{ix.target}, Body: bytes.NewReader(body)}
	if err := ix.conn.call(ctx, req, &res); err != nil {
		return nil, fmt.Errorf("elasticsearch: suggest: %w", err)
	}
	buckets := res.Aggregations["suggest"].Buckets
	cands := make([]schemas.RankedTerm, 0, len(buckets))
	for _, b := range buckets {
		cands = append(cands, schemas.RankedTerm{Term: b.Key, Count: b.DocCount})
	}
	return schemas.FinishSuggestions(cands, limit), nil
}

// suggestBody finds the documents holding a term that starts with key and
// counts the best n such terms, in suggestion order.
func suggestBody(key string, n int) obj {
	return obj{
		"size":             0,
		"track_total_hits": false,
		"query":            obj{"bool": obj{"filter": []any{obj{"prefix": obj{FieldSuggest: key}}}}},
		"aggs": obj{"suggest": obj{"terms": obj{
			"field":   FieldSuggest,
			"include": literalRegexp(key) + ".*",
			"size":    n,
			"order":   []any{obj{"_count": "desc"}, obj{"_key": "asc"}},
		}}},
	}
}

// literalRegexp escapes s for Lucene's regular expressions, where a
// backslash makes any character literal.
func literalRegexp(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
