package fanout

import (
	"context"
	"fmt"
	"time"

	"feedline/feed"
	"feedline/pipeline"
	"feedline/topology"
)

// Replayed counts what a replay applied.
type Replayed struct {
	Readers int // readers whose last read was restored
	Social  int // shopper writes
	Catalog int // product batches
	Skipped int // entries the stage dead-letters when live (malformed)
	Rebuilt int // readers active since the checkpoint whose feeds were rebuilt
}

// Replay rebuilds the feed state from the log: every reader's last read,
// then every shopper write, then every product batch, through the same
// handlers as live delivery. Reads come first because fan-out writes only
// to active readers: restored, the readers live delivery wrote to are
// written to again. The handlers are idempotent, so replaying into a store
// that holds some or all of it already changes nothing.
func (s *Stage) Replay(ctx context.Context, bus *pipeline.Bus) (Replayed, error) {
	return s.ReplayAfter(ctx, bus, nil)
}

// Consumers whose acknowledged work a checkpoint of the feed state covers.
const (
	ConsumerSocial  = "fanout"
	ConsumerCatalog = "fanout-catalog"
)

// Covered is how far the stage's consumers have finished the log: a copy
// of the store taken after asking holds all of it.
func Covered(ctx context.Context, bus *pipeline.Bus) (pipeline.Positions, error) {
	social, err := bus.AckFloor(ctx, topology.StreamSocial, ConsumerSocial)
	if err != nil {
		return nil, err
	}
	catalog, err := bus.AckFloor(ctx, topology.StreamProducts, ConsumerCatalog)
	if err != nil {
		return nil, err
	}
	return pipeline.Positions{topology.StreamSocial: social, topology.StreamProducts: catalog}, nil
}

// ReplayAfter is Replay into a store restored from a checkpoint that
// covers the log up to covers: only the messages after it are applied
// (nil covers replays everything). A reader who became active after the
// checkpoint had their feed rebuilt on that first read; the checkpoint
// does not hold it, so it is rebuilt again once the log is applied.
func (s *Stage) ReplayAfter(ctx context.Context, bus *pipeline.Bus, covers pipeline.Positions) (Replayed, error) {
	var r Replayed
	since := s.now().Add(-s.policy().InactiveAfter)
	var woke []string
	if s.Reads != nil {
		err := s.Reads.Each(ctx, func(reader string, at time.Time) error {
			r.Readers++
			if covers != nil && at.After(since) {
				last, err := s.Store.LastRead(ctx, []string{reader})
				if err != nil {
					return err
				}
				if !last[0].After(since) {
					woke = append(woke, reader)
				}
			}
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
	if _, _, err := bus.ReplayFrom(ctx, topology.StreamSocial, "", covers[topology.StreamSocial]+1, apply(&r.Social, s.HandleSocial)); err != nil {
		return r, err
	}
	if _, _, err := bus.ReplayFrom(ctx, topology.StreamProducts, "", covers[topology.StreamProducts]+1, apply(&r.Catalog, s.HandleCatalog)); err != nil {
		return r, err
	}
	if len(woke) > 0 {
		celebs, err := s.Store.Celebrities(ctx)
		if err != nil {
			return r, err
		}
		for _, reader := range woke {
			if err := feed.Rebuild(ctx, s.Store, reader, celebs, s.policy().FeedCap); err != nil {
				return r, fmt.Errorf("rebuild the feed of %s: %w", reader, err)
			}
			r.Rebuilt++
		}
	}
	return r, nil
}
