package clickhouse

import (
	"time"

	"feedline/schemas"
)

// insert is one table's share of a batch, column by column: the native
// protocol sends columns, and whole slices append without per-row boxing.
type insert struct {
	table  string
	rows   int
	names  []string
	values []any // values[i] is a slice holding column names[i]
}

func (in *insert) add(name string, values any) {
	in.names = append(in.names, name)
	in.values = append(in.values, values)
}

// column extracts one field of every row.
func column[R, V any](rows []R, field func(*R) V) []V {
	out := make([]V, len(rows))
	for i := range rows {
		out[i] = field(&rows[i])
	}
	return out
}

// DateTime holds seconds from 1970-01-01 to 2106-02-07 UTC; the driver would
// wrap anything outside silently, so times are clamped to that range. A zero
// time.Time becomes 1970-01-01 00:00:00, ClickHouse's own zero DateTime.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(1<<32-1, 0).UTC()
)

func dateTime(t time.Time) time.Time {
	switch {
	case t.Before(minDateTime):
		return minDateTime
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t
}

// inserts splits a batch into one insert per non-empty table.
func inserts(b *schemas.AnalyticsBatch) []insert {
	var out []insert
	if rows := b.ProductChanges; len(rows) > 0 {
		out = append(out, productChanges(rows))
	}
	if rows := b.PriceHistory; len(rows) > 0 {
		out = append(out, priceHistory(rows))
	}
	if rows := b.UploadRuns; len(rows) > 0 {
		out = append(out, uploadRuns(rows))
	}
	if rows := b.SearchQueries; len(rows) > 0 {
		out = append(out, searchQueries(rows))
	}
	if rows := b.FeedEvents; len(rows) > 0 {
		out = append(out, feedEvents(rows))
	}
	return out
}

type productChange = schemas.ProductChangeRow

func productChanges(rows []productChange) insert {
	in := insert{table: schemas.TableProductChanges, rows: len(rows)}
	in.add("event_id", column(rows, func(r *productChange) string { return r.EventID }))
	in.add("product_id", column(rows, func(r *productChange) string { return r.ProductID }))
	in.add("partner", column(rows, func(r *productChange) string { return r.Partner }))
	in.add("sku", column(rows, func(r *productChange) string { return r.SKU }))
	in.add("upload_id", column(rows, func(r *productChange) string { return r.UploadID }))
	in.add("kind", column(rows, func(r *productChange) string { return r.Kind }))
	in.add("version", column(rows, func(r *productChange) uint64 { return r.Version }))
	in.add("title", column(rows, func(r *productChange) string { return r.Title }))
	in.add("brand", column(rows, func(r *productChange) string { return r.Brand }))
	in.add("category", column(rows, func(r *productChange) string { return r.Category }))
	in.add("price", column(rows, func(r *productChange) int64 { return r.Price }))
	in.add("sale_price", column(rows, func(r *productChange) int64 { return r.SalePrice }))
	in.add("currency", column(rows, func(r *productChange) string { return r.Currency }))
	in.add("availability", column(rows, func(r *productChange) string { return r.Availability }))
	in.add("changed_at", column(rows, func(r *productChange) time.Time { return dateTime(r.ChangedAt) }))
	return in
}

type priceChange = schemas.PriceHistoryRow

func priceHistory(rows []priceChange) insert {
	in := insert{table: schemas.TablePriceHistory, rows: len(rows)}
	in.add("event_id", column(rows, func(r *priceChange) string { return r.EventID }))
	in.add("product_id", column(rows, func(r *priceChange) string { return r.ProductID }))
	in.add("partner", column(rows, func(r *priceChange) string { return r.Partner }))
	in.add("upload_id", column(rows, func(r *priceChange) string { return r.UploadID }))
	in.add("currency", column(rows, func(r *priceChange) string { return r.Currency }))
	in.add("old_price", column(rows, func(r *priceChange) int64 { return r.OldPrice }))
	in.add("new_price", column(rows, func(r *priceChange) int64 { return r.NewPrice }))
	in.add("version", column(rows, func(r *priceChange) uint64 { return r.Version }))
	in.add("changed_at", column(rows, func(r *priceChange) time.Time { return dateTime(r.ChangedAt) }))
	return in
}

type uploadRun = schemas.UploadRunRow

func uploadRuns(rows []uploadRun) insert {
	in := insert{table: schemas.TableUploadRuns, rows: len(rows)}
	in.add("upload_id", column(rows, func(r *uploadRun) string { return r.UploadID }))
	in.add("partner", column(rows, func(r *uploadRun) string { return r.Partner }))
	in.add("mode", column(rows, func(r *uploadRun) string { return r.Mode }))
	in.add("format", column(rows, func(r *uploadRun) string { return r.Format }))
	in.add("mapping_version", column(rows, func(r *uploadRun) int32 { return r.MappingVersion }))
	in.add("received_at", column(rows, func(r *uploadRun) time.Time { return dateTime(r.ReceivedAt) }))
	in.add("finished_at", column(rows, func(r *uploadRun) time.Time { return dateTime(r.FinishedAt) }))
	in.add("rows_read", column(rows, func(r *uploadRun) int64 { return r.RowsRead }))
	in.add("accepted", column(rows, func(r *uploadRun) int64 { return r.Accepted }))
	in.add("unchanged", column(rows, func(r *uploadRun) int64 { return r.Unchanged }))
	in.add("rejected", column(rows, func(r *uploadRun) int64 { return r.Rejected }))
	in.add("deleted", column(rows, func(r *uploadRun) int64 { return r.Deleted }))
	return in
}

type searchQuery = schemas.SearchQueryRow

func searchQueries(rows []searchQuery) insert {
	in := insert{table: schemas.TableSearchQueries, rows: len(rows)}
	in.add("event_id", column(rows, func(r *searchQuery) string { return r.EventID }))
	in.add("query", column(rows, func(r *searchQuery) string { return r.Query }))
	in.add("filters", column(rows, func(r *searchQuery) string { return r.Filters }))
	in.add("sort", column(rows, func(r *searchQuery) string { return r.Sort }))
	in.add("results", column(rows, func(r *searchQuery) int64 { return r.Results }))
	in.add("took_ms", column(rows, func(r *searchQuery) float64 { return r.TookMs }))
	in.add("at", column(rows, func(r *searchQuery) time.Time { return dateTime(r.At) }))
	return in
}

type feedEvent = schemas.FeedEventRow

func feedEvents(rows []feedEvent) insert {
	in := insert{table: schemas.TableFeedEvents, rows: len(rows)}
	in.add("event_id", column(rows, func(r *feedEvent) string { return r.EventID }))
	in.add("kind", column(rows, func(r *feedEvent) string { return r.Kind }))
	in.add("user_id", column(rows, func(r *feedEvent) string { return r.UserID }))
	in.add("target_kind", column(rows, func(r *feedEvent) string { return r.TargetKind }))
	in.add("target_id", column(rows, func(r *feedEvent) string { return r.TargetID }))
	in.add("items", column(rows, func(r *feedEvent) int64 { return r.Items }))
	in.add("at", column(rows, func(r *feedEvent) time.Time { return dateTime(r.At) }))
	return in
}
