// Package index applies product changes to the search backend.
package index

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Stage writes product batches into a schemas.ProductIndex.
type Stage struct {
	Index  schemas.ProductIndex
	Ledger schemas.UploadLedger
	Log    *slog.Logger
	// Writers is how many index writes run at once; two keep both cores of a
	// small machine busy.
	Writers int
	// PartBytes bounds one index write by the size of the product batches
	// it holds (0: DefaultPartBytes). Analysing a write takes several times
	// its size in memory, Writers of them at once.
	PartBytes int
	// DeadLetter stores a change the backend refused for good; msgID makes
	// a repeat of the same entry a duplicate.
	DeadLetter func(ctx context.Context, d schemas.DeadLetter, msgID string) error
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	c := pipeline.Stage{
		Name:      "index",
		Stream:    topology.StreamProducts,
		Handle:    s.Handle,
		BatchSize: 32,
	}
	if h, ok := s.Index.(schemas.HealthChecker); ok {
		c.Gate = h.Healthy
	}
	return c
}

// MaxPartChanges caps one index write: larger writes index faster but hold
// more in memory (4,000 measured best on the embedded index).
const MaxPartChanges = 4000

// DefaultPartBytes is PartBytes when unset: about MaxPartChanges products
// of a typical feed.
const DefaultPartBytes = 2 << 20

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
	sizes := make([]int, len(msgs))
	for i, m := range msgs {
		sizes[i] = len(m.Data)
	}
	parts := s.split(batches, sizes)
	results := make([]schemas.IndexRecord, len(msgs))
	var wg sync.WaitGroup
	writers := make(chan struct{}, max(s.Writers, 1))
	for _, p := range parts {
		wg.Add(1)
		writers <- struct{}{}
		go func() {
			defer func() { <-writers; wg.Done() }()
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
		// A compacted batch's changes were counted for their upload when
		// first indexed.
		if errs[i] != nil || b == nil || b.End != nil || b.Upload == "" || b.Compacted != 0 {
			continue
		}
		if errs[i] = s.Ledger.RecordIndex(ctx, b.Upload, b.Batch, results[i]); errs[i] == nil {
			pipeline.CountItems(ctx, "indexed", results[i].Indexed)
			pipeline.CountItems(ctx, "deleted", results[i].Deleted)
			pipeline.CountItems(ctx, "refused", int64(len(results[i].Rejections)))
		}
	}
	return errs
}

// split groups the batches with changes by upload, in order, and cuts each
// group into parts of about equal size, at least Writers when there is
// enough, of at most MaxPartChanges changes and PartBytes of batches
// (sizes[i] is batch i's); a batch larger than that is a part of its own.
func (s *Stage) split(batches []*schemas.ProductBatch, sizes []int) []*part {
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
	limit := s.PartBytes
	if limit <= 0 {
		limit = DefaultPartBytes
	}
	var parts []*part
	for _, up := range order {
		var p *part
		bytes := 0
		for _, i := range byUpload[up] {
			if p == nil || len(p.changes) >= size || bytes+sizes[i] > limit {
				p, bytes = &part{}, 0
				parts = append(parts, p)
			}
			bytes += sizes[i]
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
	rejected := make(map[int]string, len(res.Rejected))
	for _, r := range res.Rejected {
		rejected[r.At] = r.Reason
	}
	for k, i := range p.msgs {
		end := len(p.changes)
		if k+1 < len(p.starts) {
			end = p.starts[k+1]
		}
		for j := p.starts[k]; j < end; j++ {
			if reason, ok := rejected[j]; ok {
				rej, err := s.reject(ctx, batches[i], p.changes[j], reason)
				if err != nil {
					errs[i] = err
				}
				results[i].Rejections = append(results[i].Rejections, rej)
				continue
			}
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

// reject dead-letters one change the backend refused and returns the row
// the partner sees in the upload report.
func (s *Stage) reject(ctx context.Context, b *schemas.ProductBatch, c schemas.ProductChange, reason string) (schemas.Issue, error) {
	_, sku := schemas.SplitProductID(c.ID)
	rej := schemas.Issue{Row: c.Row, SourceID: sku, Field: "index", Code: schemas.CodeIndexRefused, Severity: schemas.SeverityError, Reason: "refused by the search index: " + reason}
	s.Log.Warn("search index refused a product", "product", c.ID, "upload", b.Upload, "row", c.Row, "reason", reason)
	if s.DeadLetter == nil {
		return rej, nil
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return rej, err
	}
	d := schemas.DeadLetter{
		Stage: "index", Subject: schemas.Subject(schemas.SubjectProduct, b.Partner), Error: rej.Reason, Attempts: 1,
		Source:  schemas.SourcePosition{Partner: b.Partner, Upload: b.Upload, Row: c.Row, Batch: b.Batch},
		Payload: payload, At: time.Now().UTC(),
	}
	if err := s.DeadLetter(ctx, d, schemas.MsgID("dlq", "index", c.ID, c.Version)); err != nil {
		return rej, fmt.Errorf("dead-letter refused product %s: %w", c.ID, err)
	}
	return rej, nil
}
