package fanout

import (
	"context"
	"fmt"
	"time"

	"feedline/pipeline"
	"feedline/topology"
)

// Replayed counts what a replay applied.
type Replayed struct {
	Readers int // readers whose last read was restored
	Social  int // shopper writes
	Catalog int // product batches
	Skipped int // entries the stage dead-letters when live (malformed)
}

// Replay rebuilds the feed state from the log: every reader's last read,
// then every shopper write, then every product batch, through the same
// handlers as live delivery. Reads come first because fan-out writes only
// to active readers: restored, the readers live delivery wrote to are
// written to again. The handlers are idempotent, so replaying into a store
// that holds some or all of it already changes nothing.
func (s *Stage) Replay(ctx context.Context, bus *pipeline.Bus) (Replayed, error) {
	var r Replayed
	if s.Reads != nil {
		err := s.Reads.Each(ctx, func(reader string, at time.Time) error {
			r.Readers++
			return s.Store.MarkRead(ctx, reader, at)
		})
		if err != nil {
			return r, fmt.Errorf("replay the feed reads: %w", err)
		}
	}
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
	if _, err := bus.Replay(ctx, topology.StreamSocial, "", apply(&r.Social, s.HandleSocial)); err != nil {
		return r, err
	}
	if _, err := bus.Replay(ctx, topology.StreamProducts, "", apply(&r.Catalog, s.HandleCatalog)); err != nil {
		return r, err
	}
	return r, nil
}
