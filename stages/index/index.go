// Package index applies product changes to the search backend.
package index

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"feedline/pipeline"
	"feedline/schemas"
)

// Stage writes product batches into a schemas.ProductIndex.
type Stage struct {
	Index  schemas.ProductIndex
	Ledger schemas.UploadLedger
	Log    *slog.Logger
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "index",
		Stream:    pipeline.StreamProducts,
		Handle:    pipeline.PerMessage(s.Handle),
		BatchSize: 16,
	}
}

// Handle applies one product batch. The index drops versions older than
// what it holds, so replays and late deliveries are harmless.
func (s *Stage) Handle(ctx context.Context, m *pipeline.Message) error {
	var b schemas.ProductBatch
	if err := json.Unmarshal(m.Data, &b); err != nil {
		return pipeline.Terminal(fmt.Errorf("product batch is not JSON: %w", err))
	}
	if b.End != nil {
		return nil
	}
	var res schemas.ApplyResult
	if len(b.Changes) > 0 {
		var err error
		if res, err = s.Index.Apply(ctx, b.Changes); err != nil {
			return fmt.Errorf("index %d changes of upload %s: %w", len(b.Changes), b.Upload, err)
		}
	}
	if b.Upload == "" {
		return nil
	}
	return s.Ledger.RecordIndex(ctx, b.Upload, b.Batch, schemas.IndexRecord{Indexed: res.Indexed, Deleted: res.Deleted})
}
