package main

import (
	"net/url"
	"strconv"
	"testing"

	"feedline/schemas"
)

// exactCount counts the matches of a search past the 10,000 that one
// answer counts exactly: it splits the effective price range in halves
// until every part's total is exact, and adds them up.
func exactCount(t *testing.T, search func(minPrice, maxPrice int64) schemas.SearchResult) uint64 {
	t.Helper()
	var count func(lo, hi int64, depth int) uint64
	count = func(lo, hi int64, depth int) uint64 {
		res := search(lo, hi)
		if res.TotalRelation != schemas.TotalAtLeast {
			return res.Total
		}
		if lo == hi || depth > 60 {
			t.Fatalf("more than %d products at prices %d–%d: cannot count them by price", res.Total, lo, hi)
		}
		mid := lo + (hi-lo)/2
		return count(lo, mid, depth+1) + count(mid+1, hi, depth+1)
	}
	return count(0, 1<<40, 0)
}

// testCurrencies are the currencies the tests' catalogs price in (the
// generated feeds: KRW and USD; the hand-written ones add EUR).
var testCurrencies = []string{"KRW", "USD", "EUR"}

// productCount is the exact number of products the API finds for q. A
// count past the search's bound is split by price, and a price filter
// compares in one currency, so each test currency is counted on its own.
func (ts *testSystem) productCount(q url.Values) uint64 {
	ts.t.Helper()
	p := url.Values{}
	for k, v := range q {
		p[k] = v
	}
	p.Set("limit", "1")
	if res := ts.search(p); res.TotalRelation != schemas.TotalAtLeast {
		return res.Total
	}
	var total uint64
	for _, cur := range testCurrencies {
		total += exactCount(ts.t, func(lo, hi int64) schemas.SearchResult {
			p.Set("currency", cur)
			p.Set("min_price", strconv.FormatInt(lo, 10))
			p.Set("max_price", strconv.FormatInt(hi, 10))
			return ts.search(p)
		})
	}
	return total
}
