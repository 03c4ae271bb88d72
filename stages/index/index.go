// Package index applies product changes to the search backend.
package index

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"feedline/pipeline"
	"feedline/schemas"
)

// Stage writes product batches into a schemas.ProductIndex.
type Stage struct {
	Index  schemas.ProductIndex
	Ledger schemas.UploadLedger
	Log    *slog.Logger
	// Writers is how many product batches are applied at once; two keep
	// both cores of a small machine busy.
	Writers int
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "index",
		Stream:    pipeline.StreamProducts,
		Handle:    s.Handle,
		BatchSize: 16,
	}
}

// Handle applies a fetched batch of product batches, makes it durable, then
// records each upload's progress. The index drops versions older than what
// it holds, so replays and late deliveries are harmless.
func (s *Stage) Handle(ctx context.Context, msgs []*pipeline.Message) []error {
	errs := make([]error, len(msgs))
	batches := make([]*schemas.ProductBatch, len(msgs))
	results := make([]schemas.ApplyResult, len(msgs))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(s.Writers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i], errs[i] = s.apply(ctx, msgs[i], &batches[i])
			}
		}()
	}
	for i := range msgs {
		work <- i
	}
	close(work)
	wg.Wait()
	if f, ok := s.Index.(schemas.IndexFlusher); ok {
		if err := f.Flush(ctx); err != nil {
			err = fmt.Errorf("make index writes durable: %w", err)
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
	}
	for i, b := range batches {
		if errs[i] != nil || b == nil || b.End != nil || b.Upload == "" {
			continue
		}
		errs[i] = s.Ledger.RecordIndex(ctx, b.Upload, b.Batch, schemas.IndexRecord{Indexed: results[i].Indexed, Deleted: results[i].Deleted})
	}
	return errs
}

func (s *Stage) apply(ctx context.Context, m *pipeline.Message, out **schemas.ProductBatch) (schemas.ApplyResult, error) {
	var b schemas.ProductBatch
	if err := json.Unmarshal(m.Data, &b); err != nil {
		return schemas.ApplyResult{}, pipeline.Terminal(fmt.Errorf("product batch is not JSON: %w", err))
	}
	*out = &b
	if b.End != nil || len(b.Changes) == 0 {
		return schemas.ApplyResult{}, nil
	}
	res, err := s.Index.Apply(ctx, b.Changes)
	if err != nil {
		return res, fmt.Errorf("index %d changes of upload %s: %w", len(b.Changes), b.Upload, err)
	}
	return res, nil
}
