package embedsearch

import (
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2/numeric"

	"feedline/schemas"
)

// Facet fields: brand and category hold several values per product (every
// category path), partner, availability and currency one each.
var (
	multiFacetFields  = []string{fieldBrandKeyword, fieldCategory}
	singleFacetFields = []string{fieldPartner, fieldAvailability}
	facetNames        = map[string]string{
		facetBrand: fieldBrandKeyword, facetCategory: fieldCategory,
		facetPartner: fieldPartner, facetAvailability: fieldAvailability,
	}
	// facetDocValues are what counting one document reads.
	facetDocValues = []string{fieldBrandKeyword, fieldCategory, fieldPartner, fieldAvailability, fieldCurrency, fieldPriceSort}
)

// facetCounts counts the values of the facet fields, and the effective
// prices of the counted products that are in currency.
type facetCounts struct {
	terms    map[string]map[string]int
	single   []map[string]int // terms of singleFacetFields, in order
	currency string
	prices   schemas.PriceStats

	// The document being visited: doc values come field by field.
	inCurrency bool
	price      int64
	hasPrice   bool
}

func newFacetCounts(currency string) *facetCounts {
	c := &facetCounts{terms: make(map[string]map[string]int, len(facetNames)), currency: strings.ToUpper(strings.TrimSpace(currency))}
	for _, f := range facetNames {
		c.terms[f] = map[string]int{}
	}
	for _, f := range singleFacetFields {
		c.single = append(c.single, c.terms[f])
	}
	return c
}

// add takes one doc value of the document being visited; endDoc ends it.
func (c *facetCounts) add(field string, term []byte) {
	switch field {
	case fieldCurrency:
		c.inCurrency = c.currency != "" && string(term) == c.currency
	case fieldPriceSort:
		if v, err := numeric.PrefixCoded(term).Int64(); err == nil {
			c.price, c.hasPrice = int64(numeric.Int64ToFloat64(v)), true
		}
	default:
		if m, ok := c.terms[field]; ok {
			m[string(term)]++
		}
	}
}

func (c *facetCounts) endDoc() {
	if c.inCurrency && c.hasPrice {
		c.prices.Add(c.price)
	}
	c.inCurrency, c.hasPrice = false, false
}

// priceStats are the statistics of the prices counted, nil when none was.
func (c *facetCounts) priceStats() *schemas.PriceStats {
	if c.prices.Count == 0 {
		return nil
	}
	s := c.prices
	s.Currency = c.currency
	return &s
}

// top is each facet's n most frequent values: count descending, then value
// ascending.
func (c *facetCounts) top(n int) map[string][]schemas.FacetCount {
	out := make(map[string][]schemas.FacetCount, len(facetNames))
	for name, field := range facetNames {
		list := make([]schemas.FacetCount, 0, len(c.terms[field]))
		for v, k := range c.terms[field] {
			list = append(list, schemas.FacetCount{Value: v, Count: k})
		}
		slices.SortFunc(list, func(a, b schemas.FacetCount) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Value, b.Value)
		})
		out[name] = list[:min(len(list), n)]
	}
	return out
}
