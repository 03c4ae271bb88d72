package schemas

import (
	"context"
	"errors"
	"fmt"
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
	MinPrice     *int64         `json:"min_price,omitempty"` // effective price, minor units
	MaxPrice     *int64         `json:"max_price,omitempty"`
	Sort         string         `json:"sort,omitempty"`
	Limit        int            `json:"limit,omitempty"`
	Cursor       string         `json:"cursor,omitempty"` // opaque, from SearchResult.NextCursor
}

// FacetCount is one bucket of a facet.
type FacetCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// SearchResult is one page of hits. NextCursor is empty on the last page.
type SearchResult struct {
	Total      uint64                  `json:"total"`
	Hits       []Product               `json:"hits"`
	Facets     map[string][]FacetCount `json:"facets"`
	NextCursor string                  `json:"next_cursor,omitempty"`
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
