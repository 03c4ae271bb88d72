package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay feeds fn every message of stream (matching filter, "" for all)
// stored when Replay started, oldest first. Derived state is rebuilt this
// way: the log is the source of truth.
func (b *Bus) Replay(ctx context.Context, stream, filter string, fn func(*Message) error) (int, error) {
	st, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return 0, nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	defer it.Stop()
	n := 0
	for {
		jm, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, fmt.Errorf("replay %s after %d messages: %w", stream, n, err)
		}
		md, err := jm.Metadata()
		if err != nil {
			return n, fmt.Errorf("replay %s: %w", stream, err)
		}
		m := &Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), Sequence: md.Sequence.Stream, Delivered: md.NumDelivered}
		if err := fn(m); err != nil {
			return n, err
		}
		n++
		// NumPending counts matching messages after this one, now; stop at
		// what was stored when the replay began.
		if md.NumPending == 0 || m.Sequence >= last {
			return n, nil
		}
	}
}
