package fanout

import (
	"context"
	"fmt"

	"feedline/pipeline"
)

// Replayed counts what a replay applied.
type Replayed struct {
	Social  int // shopper writes
	Catalog int // product batches
	Skipped int // entries the stage dead-letters when live (malformed)
}

// Replay rebuilds the feed state from the log: every shopper write, then
// every product batch, through the same handlers as live delivery. The
// handlers are idempotent, so replaying into a store that holds some or all
// of it already changes nothing.
func (s *Stage) Replay(ctx context.Context, bus *pipeline.Bus) (Replayed, error) {
	var r Replayed
	apply := func(count *int, h func(context.Context, *pipeline.Message) error) func(*pipeline.Message) error {
		return func(m *pipeline.Message) error {
			if err := h(ctx, m); err != nil {
				if pipeline.IsTerminal(err) {
					r.Skipped++
					return nil
				}
				return fmt.Errorf("replay %s at sequence %d: %w", m.Subject, m.Sequence, err)
			}
			*count++
			return nil
		}
	}
	if _, err := bus.Replay(ctx, pipeline.StreamSocial, "", apply(&r.Social, s.HandleSocial)); err != nil {
		return r, err
	}
	if _, err := bus.Replay(ctx, pipeline.StreamProducts, "", apply(&r.Catalog, s.HandleCatalog)); err != nil {
		return r, err
	}
	return r, nil
}
