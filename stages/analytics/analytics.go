// Package analytics records product changes, price history, upload runs and
// search queries in the analytics store.
package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Stage turns events into analytics rows, one durable write per fetched batch.
type Stage struct {
	Sink schemas.AnalyticsSink
	Log  *slog.Logger
}

// Configs are the stage's consumers: product changes and search queries.
func (s *Stage) Configs() []pipeline.Stage {
	// Product batches hold up to 1,000 changes each; search queries are one
	// row each. Either way a write waits at most a second to gather rows.
	cs := []pipeline.Stage{
		{Name: "analytics", Stream: topology.StreamProducts, Handle: s.Handle, BatchSize: 64, MaxBytes: 32 << 20, MaxWait: 2 * time.Second, Linger: time.Second},
		{Name: "analytics-search", Stream: topology.StreamAnalytics, Subjects: []string{schemas.SubjectSearch, schemas.SubjectFeedRead}, Handle: s.Handle, BatchSize: 4096, MaxWait: 2 * time.Second, Linger: time.Second},
		{Name: "analytics-social", Stream: topology.StreamSocial, Handle: s.Handle, BatchSize: 4096, MaxWait: 2 * time.Second, Linger: time.Second},
	}
	if h, ok := s.Sink.(schemas.HealthChecker); ok {
		for i := range cs {
			cs[i].Gate = h.Healthy
		}
	}
	return cs
}

// Handle writes the rows of every message in one batch; all messages are
// acknowledged only after the sink confirmed the write.
func (s *Stage) Handle(ctx context.Context, msgs []*pipeline.Message) []error {
	var batch schemas.AnalyticsBatch
	errs := make([]error, len(msgs))
	bad := false
	for i, m := range msgs {
		if err := s.add(&batch, m); err != nil {
			errs[i] = pipeline.Terminal(err)
			bad = true
		}
	}
	if batch.Len() > 0 {
		if err := s.Sink.Write(ctx, batch); err != nil {
			err = fmt.Errorf("write %d analytics rows: %w", batch.Len(), err)
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
			return errs
		}
		pipeline.CountItems(ctx, "written", int64(batch.Len()))
	}
	if !bad {
		return nil
	}
	return errs
}

func (s *Stage) add(b *schemas.AnalyticsBatch, m *pipeline.Message) error {
	switch {
	case strings.HasPrefix(m.Subject, "social."):
		return addSocial(b, m.Data)
	case m.Subject == schemas.SubjectFeedRead:
		// The API publishes a second's feed reads together.
		var rows []schemas.FeedEventRow
		if err := json.Unmarshal(m.Data, &rows); err != nil {
			return fmt.Errorf("feed reads are not a JSON array: %w", err)
		}
		for _, r := range rows {
			r.At = r.At.UTC()
			b.FeedEvents = append(b.FeedEvents, r)
		}
		return nil
	}
	if strings.HasPrefix(m.Subject, schemas.SubjectSearch) {
		var q schemas.SearchQueryEvent
		if err := json.Unmarshal(m.Data, &q); err != nil {
			return fmt.Errorf("search event is not JSON: %w", err)
		}
		b.SearchQueries = append(b.SearchQueries, schemas.SearchQueryRow{
			EventID: q.ID, Query: q.Query, Filters: q.Filters, Sort: q.Sort, Results: q.Results, TookMs: q.TookMs, At: q.At.UTC(),
		})
		return nil
	}
	var pb schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(m.Data, &pb); err != nil {
		return fmt.Errorf("product batch is not JSON: %w", err)
	}
	if pb.Compacted != 0 {
		return nil // changes recorded when they were first made
	}
	if r := pb.End; r != nil {
		b.UploadRuns = append(b.UploadRuns, schemas.UploadRunRow{
			UploadID: r.Upload, Partner: r.Partner, Mode: r.Mode, Format: r.Format, MappingVersion: int32(r.MappingVersion),
			ReceivedAt: r.ReceivedAt.UTC(), FinishedAt: r.FinishedAt.UTC(), RowsRead: r.Counts.Read, Accepted: r.Counts.Accepted,
			Unchanged: r.Counts.Unchanged, Rejected: r.Counts.Rejected, Deleted: r.Counts.Deleted,
		})
	}
	at := pb.At.UTC()
	for i := range pb.Changes {
		c := &pb.Changes[i]
		row := schemas.ProductChangeRow{
			EventID: fmt.Sprintf("%s@%d", c.ID, c.Version), ProductID: c.ID, Partner: pb.Partner, UploadID: pb.Upload,
			Kind: string(c.Kind), Version: c.Version, ChangedAt: at,
		}
		_, row.SKU = schemas.SplitProductID(c.ID)
		if p := c.Product; p != nil {
			row.Title, row.Brand, row.Price, row.Currency, row.Availability = p.Title, p.Brand, p.Price, p.Currency, string(p.Availability)
			row.Category = strings.Join(p.Category, schemas.CategorySeparator)
			if p.SalePrice != nil {
				row.SalePrice = *p.SalePrice
			}
		}
		b.ProductChanges = append(b.ProductChanges, row)
		if pc := c.Price; pc != nil {
			b.PriceHistory = append(b.PriceHistory, schemas.PriceHistoryRow{
				EventID: row.EventID, ProductID: c.ID, Partner: pb.Partner, UploadID: pb.Upload, Currency: pc.Currency,
				OldPrice: pc.Old, NewPrice: pc.New, Version: c.Version, ChangedAt: at,
			})
		}
	}
	return nil
}

// addSocial records a shopper write as a feed event.
func addSocial(b *schemas.AnalyticsBatch, data []byte) error {
	var ev schemas.SocialEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("social event is not JSON: %w", err)
	}
	row := schemas.FeedEventRow{EventID: ev.ID, UserID: ev.User, At: ev.At.UTC()}
	switch ev.Kind {
	case schemas.SocialPost:
		row.Kind, row.TargetKind = schemas.FeedEventPost, "post"
		if ev.Post != nil {
			row.TargetID = ev.Post.ID
		}
	case schemas.SocialPostDelete:
		row.Kind, row.TargetKind, row.TargetID = schemas.FeedEventPostDelete, "post", ev.PostID
	case schemas.SocialFollow, schemas.SocialUnfollow:
		row.Kind = schemas.FeedEventFollow
		if ev.Kind == schemas.SocialUnfollow {
			row.Kind = schemas.FeedEventUnfollow
		}
		row.TargetKind, row.TargetID = schemas.SplitAuthor(ev.Target)
	default:
		return fmt.Errorf("unknown social event kind %q", ev.Kind)
	}
	b.FeedEvents = append(b.FeedEvents, row)
	return nil
}
