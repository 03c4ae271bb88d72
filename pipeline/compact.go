package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrMessageGone is MessageAt's answer for a sequence that holds no
// message: never written, or deleted (by compaction, say).
var ErrMessageGone = errors.New("no message at that sequence")

// DeleteMessage removes the message at seq of stream. A message already
// gone is no error, so two workers removing the same one both succeed.
func (b *Bus) DeleteMessage(ctx context.Context, stream string, seq uint64) error {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("open %s: %w", stream, err)
	}
	err = st.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		// The server says why only in words: ask whether it is gone.
		if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("delete %s sequence %d: %w", stream, seq, err)
	}
	return nil
}

// ConsumedFloor answers the lowest ack floor of the stream's durable
// consumers: every stage reading the stream has finished every message up
// to it. ok is false when the stream has no durable consumer.
func (b *Bus) ConsumedFloor(ctx context.Context, stream string) (floor uint64, ok bool, err error) {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, false, fmt.Errorf("open %s: %w", stream, err)
	}
	list := st.ListConsumers(ctx)
	for info := range list.Info() {
		if info.Config.Durable == "" {
			continue // a replay's ordered reader, not a stage
		}
		if !ok || info.AckFloor.Stream < floor {
			floor, ok = info.AckFloor.Stream, true
		}
	}
	if err := list.Err(); err != nil {
		return 0, false, fmt.Errorf("consumers of %s: %w", stream, err)
	}
	return floor, ok, nil
}

// StreamSize answers how many messages and bytes the stream holds.
func (b *Bus) StreamSize(ctx context.Context, stream string) (msgs, bytes uint64, err error) {
	state, err := b.streamState(ctx, stream)
	return state.Msgs, state.Bytes, err
}

// Covered answers the lowest sequence of stream that the checkpoints
// written or loaded by this process cover, and whether any covers it: a
// start from them replays the stream after it.
func (c *Checkpoints) Covered(stream string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var low uint64
	ok := false
	for _, p := range c.written {
		if seq, has := p[stream]; has && (!ok || seq < low) {
			low, ok = seq, true
		}
	}
	return low, ok
}

// CoveredBy answers the sequence of stream the named checkpoint, written
// or loaded by this process, covers.
func (c *Checkpoints) CoveredBy(name, stream string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.written[name][stream]
	return seq, ok
}

// streamState reads the stream's counts and sequences.
func (b *Bus) streamState(ctx context.Context, stream string) (jetstream.StreamState, error) {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	return info.State, nil
}
