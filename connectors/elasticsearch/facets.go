package elasticsearch

import (
	"math"

	"feedline/schemas"
)

// Facets: a terms aggregation per facet, over every match.
const (
	facetSize  = 20
	priceStats = "price_stats" // the aggregation of the price statistics
)

var facetFields = map[string]string{
	"brand":        FieldBrandKeyword,
	"category":     FieldCategoryPaths,
	"partner":      FieldPartner,
	"availability": FieldAvailability,
}

// aggregation is the part of an aggregation's answer the search reads:
// a facet's buckets, or the price statistics' filtered count, min and max.
type aggregation struct {
	Buckets []struct {
		Key      string `json:"key"`
		DocCount int    `json:"doc_count"`
	} `json:"buckets"`
	DocCount int `json:"doc_count"`
	Min      struct {
		Value *float64 `json:"value"`
	} `json:"min"`
	Max struct {
		Value *float64 `json:"value"`
	} `json:"max"`
}

// aggs are the facets' aggregations and, with a currency, the price
// statistics of the matches in it.
func (p searchPlan) aggs() obj {
	out := make(obj, len(facetFields)+1)
	for name, field := range facetFields {
		out[name] = obj{"terms": obj{
			"field": field,
			"size":  facetSize,
			"order": []any{obj{"_count": "desc"}, obj{"_key": "asc"}},
		}}
	}
	if p.statsCurrency != "" {
		out[priceStats] = obj{
			"filter": obj{"term": obj{FieldCurrency: p.statsCurrency}},
			"aggs": obj{
				"min": obj{"min": obj{"field": FieldEffective}},
				"max": obj{"max": obj{"field": FieldEffective}},
			},
		}
	}
	return out
}

// readFacets fills the facets and price statistics of out from aggs.
func (p searchPlan) readFacets(aggs map[string]aggregation, out *schemas.SearchResult) {
	for name := range facetFields {
		buckets := aggs[name].Buckets
		counts := make([]schemas.FacetCount, 0, len(buckets))
		for _, b := range buckets {
			counts = append(counts, schemas.FacetCount{Value: b.Key, Count: b.DocCount})
		}
		out.Facets[name] = counts
	}
	if s, ok := aggs[priceStats]; ok && p.statsCurrency != "" && s.DocCount > 0 && s.Min.Value != nil && s.Max.Value != nil {
		out.PriceStats = &schemas.PriceStats{
			Currency: p.statsCurrency,
			Min:      int64(math.Round(*s.Min.Value)),
			Max:      int64(math.Round(*s.Max.Value)),
			Count:    s.DocCount,
		}
	}
}
