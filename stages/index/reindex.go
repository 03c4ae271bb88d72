package index

import (
	"context"
	"fmt"

	"feedline/pipeline"
	"feedline/schemas"
)

// Versions is a search backend whose index can be built anew beside the
// live one and swapped in at once (Elasticsearch indexes behind an alias).
type Versions interface {
	// NewVersion creates an empty index beside the live one.
	NewVersion(ctx context.Context) (schemas.ProductIndex, error)
	// Promote makes next the index searches and the index stage use.
	Promote(ctx context.Context, next schemas.ProductIndex) error
}

// Reindex fills a new index version from the log while the live one keeps
// serving, swaps it in, then applies what arrived meanwhile: the index stage
// wrote those changes to the old version until the swap. Versions make the
// overlap harmless.
func Reindex(ctx context.Context, bus *pipeline.Bus, v Versions, progress func(Rebuilt)) (Rebuilt, error) {
	next, err := v.NewVersion(ctx)
	if err != nil {
		return Rebuilt{}, fmt.Errorf("reindex: new version: %w", err)
	}
	r, err := Rebuild(ctx, bus, next, 1, progress)
	if err != nil {
		return r, err
	}
	if err := v.Promote(ctx, next); err != nil {
		return r, fmt.Errorf("reindex: swap in the new version: %w", err)
	}
	c, err := Rebuild(ctx, bus, next, r.Last+1, nil)
	r.Batches += c.Batches
	r.Changes += c.Changes
	r.Rejected += c.Rejected
	r.Skipped += c.Skipped
	if c.Last > r.Last {
		r.Last = c.Last
	}
	if err != nil {
		return r, fmt.Errorf("reindex: catch up after the swap: %w", err)
	}
	return r, nil
}
