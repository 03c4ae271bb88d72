package index

import (
	"context"
	"fmt"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Rebuilt counts what a rebuild applied.
type Rebuilt struct {
	Batches  int    // product batches read from the log
	Changes  int    // changes applied
	Rejected int    // changes the index refused for good
	Skipped  int    // log entries that are not product batches (the index stage dead-lettered them)
	Last     uint64 // last PRODUCTS sequence covered; a catch-up starts after it
}

// Rebuild applies every product change the log holds from sequence from on
// to ix, in writes of up to MaxPartChanges, and flushes. The log is the
// source of truth, so any index can be rebuilt from it; versions make a
// change applied twice harmless. progress, when set, hears the running total.
func Rebuild(ctx context.Context, bus *pipeline.Bus, ix schemas.ProductIndex, from uint64, progress func(Rebuilt)) (Rebuilt, error) {
	var r Rebuilt
	var part []schemas.ProductChange
	write := func() error {
		if len(part) == 0 {
			return nil
		}
		res, err := ix.Apply(ctx, part)
		if err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
		r.Changes += len(part)
		r.Rejected += len(res.Rejected)
		part = part[:0]
		if progress != nil {
			progress(r)
		}
		return nil
	}
	_, last, err := bus.ReplayFrom(ctx, topology.StreamProducts, "", from, func(m *pipeline.Message) error {
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			r.Skipped++
			return nil
		}
		r.Batches++
		part = append(part, b.Changes...)
		if len(part) >= MaxPartChanges {
			return write()
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if err := write(); err != nil {
		return r, err
	}
	r.Last = last
	if f, ok := ix.(schemas.IndexFlusher); ok {
		if err := f.Flush(ctx); err != nil {
			return r, fmt.Errorf("rebuild index: flush: %w", err)
		}
	}
	return r, nil
}
