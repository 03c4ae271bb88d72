package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"time"

	"feedline/schemas"
)

var _ schemas.PriceHistory = (*Sink)(nil)

// maxPriceRows bounds the rows one price history read fetches: the newest
// changes, of which those that moved the price become points.
const maxPriceRows = 10 * schemas.MaxPricePoints

// Prices reads the product's upserts since since from product_changes,
// newest first and bounded, over the sorting key's (partner, product_id)
// prefix; copies of a retried write share a version and are dropped.
func (s *Sink) Prices(ctx context.Context, productID string, since time.Time) ([]schemas.PricePoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	partner, _ := schemas.SplitProductID(productID)
	query := "SELECT changed_at, version, if(sale_price > 0, sale_price, price) AS paid, currency FROM " +
		s.database + ".product_changes WHERE partner = ? AND product_id = ? AND kind = ? AND changed_at >= toDateTime(?)" +
		" ORDER BY changed_at DESC, version DESC LIMIT " + fmt.Sprint(maxPriceRows)
	rows, err := s.conn.Query(ctx, query, partner, productID, string(schemas.ChangeUpsert), since.UTC().Unix())
	if err != nil {
		return nil, fmt.Errorf("clickhouse: prices of %s: %w", productID, classify(ctx, err))
	}
	defer rows.Close()
	type change struct {
		at       time.Time
		version  uint64
		price    int64
		currency string
	}
	var newest []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.at, &c.version, &c.price, &c.currency); err != nil {
			return nil, fmt.Errorf("clickhouse: prices of %s: %w", productID, err)
		}
		newest = append(newest, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: prices of %s: %w", productID, classify(ctx, err))
	}
	var trail schemas.PriceTrail
	for _, c := range slices.Backward(newest) {
		trail.Add(c.at, c.version, c.price, c.currency)
	}
	return trail.Points(), nil
}
