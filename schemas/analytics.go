package schemas

import (
	"context"
	"time"
)

// Analytics tables. Column names and types are shared by the Parquet files of
// the embedded default and the ClickHouse tables; README documents them.
const (
	TableProductChanges = "product_changes"
	TablePriceHistory   = "price_history"
	TableUploadRuns     = "upload_runs"
	TableSearchQueries  = "search_queries"
	TableFeedEvents     = "feed_events"
)

// ProductChangeRow is one canonical product change (upsert or delete).
type ProductChangeRow struct {
	EventID      string    `parquet:"event_id" json:"event_id"`
	ProductID    string    `parquet:"product_id" json:"product_id"`
	Partner      string    `parquet:"partner" json:"partner"`
	SKU          string    `parquet:"sku" json:"sku"`
	UploadID     string    `parquet:"upload_id" json:"upload_id"`
	Kind         string    `parquet:"kind" json:"kind"`
	Version      uint64    `parquet:"version" json:"version"`
	Title        string    `parquet:"title" json:"title"`
	Brand        string    `parquet:"brand" json:"brand"`
	Category     string    `parquet:"category" json:"category"`
	Price        int64     `parquet:"price" json:"price"`
	SalePrice    int64     `parquet:"sale_price" json:"sale_price"` // 0 when none
	Currency     string    `parquet:"currency" json:"currency"`
	Availability string    `parquet:"availability" json:"availability"`
	ChangedAt    time.Time `parquet:"changed_at,timestamp(millisecond)" json:"changed_at"`
}

// PriceHistoryRow is one change of a product's effective price.
type PriceHistoryRow struct {
	EventID   string    `parquet:"event_id" json:"event_id"`
	ProductID string    `parquet:"product_id" json:"product_id"`
	Partner   string    `parquet:"partner" json:"partner"`
	UploadID  string    `parquet:"upload_id" json:"upload_id"`
	Currency  string    `parquet:"currency" json:"currency"`
	OldPrice  int64     `parquet:"old_price" json:"old_price"`
	NewPrice  int64     `parquet:"new_price" json:"new_price"`
	Version   uint64    `parquet:"version" json:"version"`
	ChangedAt time.Time `parquet:"changed_at,timestamp(millisecond)" json:"changed_at"`
}

// UploadRunRow is one finished upload.
type UploadRunRow struct {
	UploadID       string    `parquet:"upload_id" json:"upload_id"`
	Partner        string    `parquet:"partner" json:"partner"`
	Mode           string    `parquet:"mode" json:"mode"`
	Format         string    `parquet:"format" json:"format"`
	MappingVersion int32     `parquet:"mapping_version" json:"mapping_version"`
	ReceivedAt     time.Time `parquet:"received_at,timestamp(millisecond)" json:"received_at"`
	FinishedAt     time.Time `parquet:"finished_at,timestamp(millisecond)" json:"finished_at"`
	RowsRead       int64     `parquet:"rows_read" json:"rows_read"`
	Accepted       int64     `parquet:"accepted" json:"accepted"`
	Unchanged      int64     `parquet:"unchanged" json:"unchanged"`
	Rejected       int64     `parquet:"rejected" json:"rejected"`
	Deleted        int64     `parquet:"deleted" json:"deleted"`
}

// SearchQueryRow is one search a shopper ran.
type SearchQueryRow struct {
	EventID string    `parquet:"event_id" json:"event_id"`
	Query   string    `parquet:"query" json:"query"`
	Filters string    `parquet:"filters" json:"filters"`
	Sort    string    `parquet:"sort" json:"sort"`
	Results int64     `parquet:"results" json:"results"`
	TookMs  float64   `parquet:"took_ms" json:"took_ms"`
	At      time.Time `parquet:"at,timestamp(millisecond)" json:"at"`
}

// Feed event kinds.
const (
	FeedEventPost       = "post"        // a shopper posted
	FeedEventPostDelete = "post_delete" // a shopper deleted a post
	FeedEventFollow     = "follow"      // a shopper followed a user or shop
	FeedEventUnfollow   = "unfollow"    // a shopper stopped following
	FeedEventFeedRead   = "feed_read"   // a shopper read a page of their feed
)

// FeedEventRow is one news-feed event: a social write or a feed read.
type FeedEventRow struct {
	EventID    string    `parquet:"event_id" json:"event_id"`
	Kind       string    `parquet:"kind" json:"kind"`               // FeedEvent*
	UserID     string    `parquet:"user_id" json:"user_id"`         // who acted
	TargetKind string    `parquet:"target_kind" json:"target_kind"` // "user", "shop", "post" or ""
	TargetID   string    `parquet:"target_id" json:"target_id"`
	Items      int64     `parquet:"items" json:"items"` // items returned by a feed read
	At         time.Time `parquet:"at,timestamp(millisecond)" json:"at"`
}

// AnalyticsBatch groups rows for one durable write.
type AnalyticsBatch struct {
	ProductChanges []ProductChangeRow
	PriceHistory   []PriceHistoryRow
	UploadRuns     []UploadRunRow
	SearchQueries  []SearchQueryRow
	FeedEvents     []FeedEventRow
}

// Len is the number of rows in the batch.
func (b *AnalyticsBatch) Len() int {
	return len(b.ProductChanges) + len(b.PriceHistory) + len(b.UploadRuns) + len(b.SearchQueries) + len(b.FeedEvents)
}

// AnalyticsSink stores analytics rows. When Write returns nil the rows are
// durable; a retried batch may be written again, so readers deduplicate on
// event_id (ClickHouse does so by engine).
type AnalyticsSink interface {
	Write(ctx context.Context, b AnalyticsBatch) error
	Close() error
}

// PricePoint is a product's effective price (the sale price when there is
// one) from At on.
type PricePoint struct {
	At       time.Time `json:"at"`
	Price    int64     `json:"price"`
	Currency string    `json:"currency"`
}

// Bounds of a price history read: the points of the last year, at most the
// newest MaxPricePoints of them.
const (
	PriceHistoryWindow = 365 * 24 * time.Hour
	MaxPricePoints     = 500
)

// PriceHistory reads a product's prices over time from the analytics store.
type PriceHistory interface {
	// Prices answers the product's price points changed at or after since,
	// oldest first, a point only where price or currency changed, at most
	// the newest MaxPricePoints. An unknown product has none.
	Prices(ctx context.Context, productID string, since time.Time) ([]PricePoint, error)
}

// PriceTrail gathers price points of one product in time order, the way
// every PriceHistory answers them.
type PriceTrail struct {
	points  []PricePoint
	version uint64
}

// Add records the change of version (time order, versions ascending) at
// at; a change that leaves price and currency as they were, or a copy of
// a version already added, adds no point.
func (t *PriceTrail) Add(at time.Time, version uint64, price int64, currency string) {
	if n := len(t.points); n > 0 {
		if version <= t.version {
			return
		}
		if last := t.points[n-1]; last.Price == price && last.Currency == currency {
			t.version = version
			return
		}
	}
	t.version = version
	t.points = append(t.points, PricePoint{At: at.UTC(), Price: price, Currency: currency})
	// Only the newest points are answered; keep memory bounded on a long trail.
	if len(t.points) >= 2*MaxPricePoints {
		t.points = append(t.points[:0], t.points[len(t.points)-MaxPricePoints:]...)
	}
}

// Points are the newest MaxPricePoints points, oldest first; never nil.
func (t *PriceTrail) Points() []PricePoint {
	if len(t.points) > MaxPricePoints {
		return t.points[len(t.points)-MaxPricePoints:]
	}
	if t.points == nil {
		return []PricePoint{}
	}
	return t.points
}
