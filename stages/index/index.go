// Package index applies product changes to the search backend.
package index

import (
	"context"
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
	// Writers is how many index writes run at once; two keep both cores of a
	// small machine busy.
	Writers int
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "index",
		Stream:    pipeline.StreamProducts,
		Handle:    s.Handle,
		BatchSize: 32,
	}
}

// MaxPartChanges caps one index write: larger writes index faster but hold
// more in memory (4,000 measured best on the embedded index).
const MaxPartChanges = 4000

// part is a run of fetched messages of one upload written in one index call:
// few large index writes are much cheaper than many small ones.
type part struct {
	msgs    []int // positions in the fetched batch
	changes []schemas.ProductChange
	starts  []int // where each message's changes begin in changes
}

// Handle applies a fetched batch of product batches, makes it durable, then
// records each upload's progress. The index drops versions older than what
// it holds, so replays and late deliveries are harmless.
func (s *Stage) Handle(ctx context.Context, msgs []*pipeline.Message) []error {
	errs := make([]error, len(msgs))
	batches := make([]*schemas.ProductBatch, len(msgs))
	for i, m := range msgs {
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			errs[i] = pipeline.Terminal(fmt.Errorf("product batch is not JSON: %w", err))
			continue
		}
		batches[i] = &b
	}
	parts := s.split(batches)
	results := make([]schemas.IndexRecord, len(msgs))
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.apply(ctx, p, batches, results, errs)
		}()
	}
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
		errs[i] = s.Ledger.RecordIndex(ctx, b.Upload, b.Batch, results[i])
	}
	return errs
}

// split groups the batches with changes by upload, in order, and cuts each
// group into parts of about equal size, at least Writers when there is
// enough, of at most MaxPartChanges changes.
func (s *Stage) split(batches []*schemas.ProductBatch) []*part {
	byUpload := map[string][]int{}
	var order []string
	total := 0
	for i, b := range batches {
		if b == nil || len(b.Changes) == 0 {
			continue
		}
		if _, ok := byUpload[b.Upload]; !ok {
			order = append(order, b.Upload)
		}
		byUpload[b.Upload] = append(byUpload[b.Upload], i)
		total += len(b.Changes)
	}
	size := min(total/max(s.Writers, 1)+1, MaxPartChanges)
	var parts []*part
	for _, up := range order {
		var p *part
		for _, i := range byUpload[up] {
			if p == nil || len(p.changes) >= size {
				p = &part{}
				parts = append(parts, p)
			}
			p.msgs = append(p.msgs, i)
			p.starts = append(p.starts, len(p.changes))
			p.changes = append(p.changes, batches[i].Changes...)
		}
	}
	return parts
}

// apply writes one part and counts, per message, what was applied.
func (s *Stage) apply(ctx context.Context, p *part, batches []*schemas.ProductBatch, results []schemas.IndexRecord, errs []error) {
	res, err := s.Index.Apply(ctx, p.changes)
	if err != nil {
		err = fmt.Errorf("index %d changes of upload %s: %w", len(p.changes), batches[p.msgs[0]].Upload, err)
		for _, i := range p.msgs {
			errs[i] = err
		}
		return
	}
	stale := make(map[int]bool, len(res.StaleAt))
	for _, j := range res.StaleAt {
		stale[j] = true
	}
	for k, i := range p.msgs {
		end := len(p.changes)
		if k+1 < len(p.starts) {
			end = p.starts[k+1]
		}
		for j := p.starts[k]; j < end; j++ {
			switch {
			case stale[j]:
			case p.changes[j].Kind == schemas.ChangeDelete:
				results[i].Deleted++
			default:
				results[i].Indexed++
			}
		}
	}
}
