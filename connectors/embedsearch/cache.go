package embedsearch

import (
	"slices"
	"strings"
	"sync"

	"feedline/schemas"
)

// resultCacheEntries bounds the answers kept: enough for the searches a
// storefront repeats (landing pages, popular words), small enough to weigh
// nothing beside the index.
const resultCacheEntries = 512

// resultCache keeps recent answers for the index state they were computed
// on: every applied batch moves the generation on, and an answer of an
// older generation is never returned.
type resultCache struct {
	mu         sync.Mutex
	generation uint64
	entries    map[resultKey]schemas.SearchResult
	order      []resultKey // oldest first, for eviction
}

// resultKey is a search as the cache tells searches apart: what decides
// the results, the page size, the cursor and the currency of the price
// statistics (which the search's key leaves out when it compares no price).
type resultKey struct {
	search   uint64
	limit    int
	cursor   string
	currency string
}

func keyOf(p searchPlan, r schemas.SearchRequest) resultKey {
	return resultKey{search: p.key, limit: r.PageLimit(), cursor: r.Cursor, currency: strings.ToUpper(strings.TrimSpace(r.Currency))}
}

// changed forgets every answer; Apply calls it before its batch becomes
// searchable and again after, so no search running across the change can
// store an answer from before it.
func (c *resultCache) changed() {
	c.mu.Lock()
	c.generation++
	clear(c.entries)
	c.order = c.order[:0]
	c.mu.Unlock()
}

// now is the generation a search starts in.
func (c *resultCache) now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

func (c *resultCache) get(k resultKey) (schemas.SearchResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, ok := c.entries[k]
	if !ok {
		return res, false
	}
	return copyResult(res), true
}

// put stores res unless the index changed since generation.
func (c *resultCache) put(generation uint64, k resultKey, res schemas.SearchResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if c.entries == nil {
		c.entries = make(map[resultKey]schemas.SearchResult, resultCacheEntries)
	}
	if _, ok := c.entries[k]; ok {
		return
	}
	if len(c.order) >= resultCacheEntries {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[k] = copyResult(res)
	c.order = append(c.order, k)
}

// copyResult copies what a caller could change in place.
func copyResult(r schemas.SearchResult) schemas.SearchResult {
	r.Hits = slices.Clone(r.Hits)
	r.Highlights = slices.Clone(r.Highlights) // each Highlight is never changed once made
	facets := make(map[string][]schemas.FacetCount, len(r.Facets))
	for k, v := range r.Facets {
		facets[k] = slices.Clone(v)
	}
	r.Facets = facets
	if r.PriceStats != nil {
		s := *r.PriceStats
		r.PriceStats = &s
	}
	return r
}
