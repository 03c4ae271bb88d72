package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Sort orders for search.
const (
	SortRelevance = "relevance"
	SortPriceAsc  = "price_asc"
	SortPriceDesc = "price_desc"
	SortNewest    = "newest"
)

// SearchRequest is a product search. Zero values mean "no filter".
type SearchRequest struct {
	Text         string         `json:"q,omitempty"`
	Brands       []string       `json:"brand,omitempty"`
	Categories   []string       `json:"category,omitempty"` // any level: "A" or "A > B"
	Partners     []string       `json:"partner,omitempty"`
	Availability []Availability `json:"availability,omitempty"`
	MinPrice     *int64         `json:"min_price,omitempty"` // effective price, minor units of Currency
	MaxPrice     *int64         `json:"max_price,omitempty"`
	// Currency (ISO 4217) is what a price filter or sort compares in:
	// products in other currencies are left out of such a search, since
	// minor units of different currencies do not compare. Without a price
	// filter or sort it finds the same products, and only names the
	// currency of the answer's PriceStats. Empty leaves every product in,
	// which only a caller whose catalog has one currency may ask; the API
	// always names the request's currency or the service's default.
	Currency string `json:"currency,omitempty"`
	Sort     string `json:"sort,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	Cursor   string `json:"cursor,omitempty"` // opaque, from SearchResult.NextCursor
	// Synonyms are the synonym lists the text is expanded with; nil
	// expands nothing.
	Synonyms *Thesaurus `json:"-"`
}

// FacetCount is one bucket of a facet.
type FacetCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// SearchResult is one page of hits. NextCursor is empty on the last page.
// Total is exact up to SearchTotalBound and that bound beyond it, as
// TotalRelation says; FacetsBasis says which hits the facets count.
type SearchResult struct {
	Total         uint64                  `json:"total"`
	TotalRelation string                  `json:"total_relation"`
	Hits          []Product               `json:"hits"`
	Facets        map[string][]FacetCount `json:"facets"`
	FacetsBasis   string                  `json:"facets_basis"`
	// PriceStats spans the effective prices of the hits the facets count,
	// in the request's Currency only; nil without a currency or when none
	// of those hits is in it.
	PriceStats *PriceStats `json:"price_stats,omitempty"`
	NextCursor string      `json:"next_cursor,omitempty"`
	// Highlights, one per hit (nil when the hit has nothing to mark), say
	// where the text matched; the API answers them inside the hits.
	Highlights []Highlight `json:"-"`
}

// PriceStats are the lowest and highest effective price, in minor units
// of Currency, of the Count products they were taken over.
type PriceStats struct {
	Currency string `json:"currency"`
	Min      int64  `json:"min"`
	Max      int64  `json:"max"`
	Count    int    `json:"count"`
}

// Add takes one more price into the statistics.
func (s *PriceStats) Add(price int64) {
	if s.Count == 0 || price < s.Min {
		s.Min = price
	}
	if s.Count == 0 || price > s.Max {
		s.Max = price
	}
	s.Count++
}

// Highlight is where a hit matched a search's text, words found by typo,
// prefix or synonym included: per field ("title", "description"), ranges
// [start, end) in UTF-16 code units of the field's value, the units a
// JavaScript string is indexed by, in order and apart from each other.
type Highlight map[string][][2]int

// Highlighted fields.
const (
	HighlightTitle       = "title"
	HighlightDescription = "description"
)

// HighlightRanges turns byte ranges of text, in any order and possibly
// overlapping, into a Highlight's ranges: merged where they overlap or
// touch (the bigrams of one Korean word), counted in UTF-16 code units.
func HighlightRanges(text string, byteRanges [][2]int) [][2]int {
	merged := MergeRanges(byteRanges)
	out := make([][2]int, 0, len(merged))
	units, at := 0, 0 // UTF-16 units before byte at
	advance := func(to int) {
		for at < to && at < len(text) {
			r, n := utf8.DecodeRuneInString(text[at:])
			units += utf16.RuneLen(r)
			at += n
		}
	}
	for _, r := range merged {
		advance(r[0])
		start := units
		advance(r[1])
		out = append(out, [2]int{start, units})
	}
	return out
}

// MergeRanges sorts ranges and merges those that overlap or touch.
func MergeRanges(ranges [][2]int) [][2]int {
	if len(ranges) == 0 {
		return nil
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b [2]int) int { return a[0] - b[0] })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r[0] <= last[1] {
			last[1] = max(last[1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// SearchTotalBound is how far a search counts its matches exactly, as
// Elasticsearch's default track_total_hits: past it, counting would cost
// more than the number tells a shopper.
const SearchTotalBound = 10_000

// TotalRelation values: Total is the exact count, or a lower bound.
const (
	TotalExact   = "eq"
	TotalAtLeast = "gte"
)

// FacetsBasis values: the facets count every match, or only the first
// SearchFacetSample hits in the search's order (a backend does so only when
// the matches are more than SearchTotalBound).
const (
	FacetsAllMatches = "all"
	FacetsTopHits    = "top_hits"
)

// SearchFacetSample is how many of the top hits bounded facets count.
const SearchFacetSample = 1_000

// BoundedTotal turns an exact match count into the Total and
// TotalRelation of an answer.
func BoundedTotal(matches uint64) (uint64, string) {
	if matches > SearchTotalBound {
		return SearchTotalBound, TotalAtLeast
	}
	return matches, TotalExact
}

// IdentifierKey is q as an identifier lookup (SKU, GTIN, MPN, model
// number): one word holding a digit, lowercased. Words without digits are
// left to the text search alone.
func IdentifierKey(q string) (string, bool) {
	q = strings.TrimSpace(q)
	if q == "" || strings.ContainsFunc(q, unicode.IsSpace) || !strings.ContainsFunc(q, unicode.IsDigit) {
		return "", false
	}
	return strings.ToLower(q), true
}

// Identifiers are the product's exact identifiers as IdentifierKey spells
// them: SKU, GTIN, and the mpn, model_number and model attributes that
// partner mappings fill.
func (p *Product) Identifiers() []string {
	out := make([]string, 0, 5)
	for _, v := range []string{p.SKU, p.GTIN, p.Attributes["mpn"], p.Attributes["model_number"], p.Attributes["model"]} {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ApplyResult counts what an index did with a batch of changes. A change
// whose version is already present counts as indexed, so replays report the
// same numbers; Stale counts changes older than what the index holds.
type ApplyResult struct {
	Indexed  int64
	Deleted  int64
	Stale    int64
	StaleAt  []int            // positions in the applied slice of the stale changes
	Rejected []RejectedChange // changes the backend refused for good (bad document)
}

// RejectedChange is one change a backend refused for a reason retrying
// cannot fix; the index stage dead-letters it and goes on with the rest.
type RejectedChange struct {
	At     int    // position in the applied slice
	Reason string // the backend's reason, for the dead-letter entry
}

// ProductIndex is the search backend: the embedded index or Elasticsearch.
type ProductIndex interface {
	// Apply writes changes idempotently; per product, an older version never
	// replaces a newer one (deletes included).
	Apply(ctx context.Context, changes []ProductChange) (ApplyResult, error)
	Get(ctx context.Context, id string) (Product, error) // ErrNotFound
	Search(ctx context.Context, r SearchRequest) (SearchResult, error)
	Close() error
}

// ErrBadCursor is returned by Search for a cursor it did not issue.
var ErrBadCursor = errorString("cursor is not valid for this search")

type errorString string

func (e errorString) Error() string { return string(e) }

// ErrUnavailable marks a failure of a whole outside system (down, overloaded,
// circuit open) rather than of the data: the stage pauses and leaves its
// messages in JetStream instead of counting attempts against them.
var ErrUnavailable = errorString("backend unavailable")

// MarkUnavailable wraps err with ErrUnavailable when outage says it is the
// backend's or the network's fault rather than the request's. A cancelled
// ctx is reported as such, never as an outage; an expired deadline is one:
// the backend did not answer in time.
func MarkUnavailable(ctx context.Context, err error, outage func(error) bool) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		if errors.Is(ctxErr, context.Canceled) {
			return err
		}
	}
	if outage(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// IsNetworkFailure reports the failures of reaching a server at all:
// refused, reset or timed-out connections. Connectors add their client's
// own signs of an outage to it.
func IsNetworkFailure(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// HealthChecker is a backend that can say whether it takes writes now; a
// paused stage polls it before fetching again.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// IndexFlusher is a ProductIndex whose applied changes become durable only
// on Flush; the index stage flushes before it acknowledges a batch.
type IndexFlusher interface {
	Flush(ctx context.Context) error
}

// ComparesPrices reports whether r filters or sorts by price, so that its
// Currency decides which products it finds.
func (r SearchRequest) ComparesPrices() bool {
	return r.MinPrice != nil || r.MaxPrice != nil || r.Sort == SortPriceAsc || r.Sort == SortPriceDesc
}

// Page sizes of a search: Limit defaults to 20 and is capped at 100.
const (
	SearchDefaultLimit = 20
	SearchMaxLimit     = 100
)

// CanonicalSearch is a SearchRequest reduced to what decides its results:
// text trimmed, the default sort made explicit, filter values sorted and
// without duplicates. Every backend builds its query from it, and Key ties
// cursors to the search that issued them.
type CanonicalSearch struct {
	Text                                       string
	Sort                                       string
	Brands, Categories, Partners, Availability []string
	MinPrice, MaxPrice                         *int64
	// Currency is set only for a search that compares prices; omitted
	// when empty, so the keys (and cursors) of other searches stay as
	// they were before searches had a currency.
	Currency string `json:",omitempty"`
	// Synonyms are the synonym matches of the text; omitted when none, so
	// the keys of searches without any stay as they were.
	Synonyms []SynonymMatch `json:",omitempty"`

	text TextQuery
}

// TextQuery is the canonical text, word by word, with its synonyms.
func (c CanonicalSearch) TextQuery() TextQuery { return c.text }

// Canonical is r's canonical form; relevance is the default sort with
// text, newest without; the currency in upper case, and only when r
// compares prices.
func (r SearchRequest) Canonical() CanonicalSearch {
	c := CanonicalSearch{Text: strings.TrimSpace(r.Text), Sort: r.Sort, MinPrice: r.MinPrice, MaxPrice: r.MaxPrice}
	if r.ComparesPrices() {
		c.Currency = strings.ToUpper(strings.TrimSpace(r.Currency))
	}
	if c.Sort == "" {
		c.Sort = SortNewest
		if c.Text != "" {
			c.Sort = SortRelevance
		}
	}
	avail := make([]string, len(r.Availability))
	for i, a := range r.Availability {
		avail[i] = string(a)
	}
	c.Brands, c.Categories, c.Partners, c.Availability = sortedSet(r.Brands), sortedSet(r.Categories), sortedSet(r.Partners), sortedSet(avail)
	c.text = ParseText(c.Text, r.Synonyms, c.Partners)
	c.Synonyms = c.text.Synonyms
	return c
}

// PageLimit is the request's page size after the default and the cap.
func (r SearchRequest) PageLimit() int {
	if r.Limit <= 0 {
		return SearchDefaultLimit
	}
	return min(r.Limit, SearchMaxLimit)
}

// Key identifies the search: equal for requests that differ only in
// order of filter values or in Limit.
func (c CanonicalSearch) Key() uint64 {
	b, _ := json.Marshal(c) // strings, slices and ints: cannot fail
	return xxhash.Sum64(b)
}

func sortedSet(values []string) []string {
	if len(values) == 0 {
		return nil
	}
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}
