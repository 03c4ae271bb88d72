package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay feeds fn every message of stream (matching filter, "" for all)
// stored when Replay started, oldest first. Derived state is rebuilt this
// way: the log is the source of truth.
func (b *Bus) Replay(ctx context.Context, stream, filter string, fn func(*Message) error) (int, error) {
	n, _, err := b.ReplayFrom(ctx, stream, filter, 1, fn)
	return n, err
}

// ReplayFrom is Replay starting at stream sequence from; it also returns
// the stream's last sequence when it started, where a later catch-up
// continues. A NATS cluster that loses a node mid-replay pauses it: the
// replay goes on where it was once the stream answers again, for up to
// replayStall without a message.
func (b *Bus) ReplayFrom(ctx context.Context, stream, filter string, from uint64, fn func(*Message) error) (int, uint64, error) {
	var st jetstream.Stream
	var info *jetstream.StreamInfo
	err := b.retry(ctx, "replay "+stream, func(ctx context.Context) (err error) {
		if st, err = b.JS.Stream(ctx, stream); err != nil {
			return err
		}
		info, err = st.Info(ctx)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || from > last {
		return 0, last, nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	var cons jetstream.Consumer
	var ci *jetstream.ConsumerInfo
	err = b.retry(ctx, "replay "+stream, func(ctx context.Context) (err error) {
		if cons, err = st.OrderedConsumer(ctx, cfg); err != nil {
			return err
		}
		ci, err = cons.Info(ctx)
		return err
	})
	if err != nil {
		return 0, last, fmt.Errorf("replay %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return 0, last, nil
	}
	it, err := cons.Messages(append([]jetstream.PullMessagesOpt{jetstream.PullMaxMessages(512)}, orderedPulls...)...)
	if err != nil {
		return 0, last, fmt.Errorf("replay %s: %w", stream, err)
	}
	defer it.Stop()
	n := 0
	progress := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		jm, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, last, ctx.Err()
			}
			if Transient(err) && time.Since(progress) < replayStall {
				b.log.Info("replay waits for the stream", "stream", stream, "replayed", n, "err", err)
				continue
			}
			return n, last, fmt.Errorf("replay %s after %d messages: %w", stream, n, err)
		}
		progress = time.Now()
		md, err := jm.Metadata()
		if err != nil {
			return n, last, fmt.Errorf("replay %s: %w", stream, err)
		}
		m := &Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), Sequence: md.Sequence.Stream, Delivered: md.NumDelivered}
		if m.Sequence > last {
			return n, last, nil
		}
		if err := fn(m); err != nil {
			return n, last, err
		}
		n++
		// NumPending counts matching messages after this one, now; stop at
		// what was stored when the replay began.
		if md.NumPending == 0 || m.Sequence >= last {
			return n, last, nil
		}
	}
}

// replayStall bounds how long a replay or a call it makes waits for a
// cluster to answer again.
const replayStall = time.Minute

// orderedPulls make an ordered consumer notice within seconds that the node
// serving it is gone, and start again on another where it stopped.
var orderedPulls = []jetstream.PullMessagesOpt{jetstream.PullExpiry(5 * time.Second), jetstream.PullHeartbeat(time.Second)}

// retry runs fn until it succeeds, fails for good, or has failed for
// replayStall with errors a recovering cluster gives.
func (b *Bus) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	start := time.Now()
	pause := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || !Transient(err) || time.Since(start) > replayStall {
			return err
		}
		b.log.Info(what+": waiting for NATS", "err", err)
		sleep(ctx, pause)
		pause = min(pause*2, 5*time.Second)
	}
}

// Purge removes every message of stream on subject.
func (b *Bus) Purge(ctx context.Context, stream, subject string) error {
	st, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("purge %s: %w", stream, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("purge %s of %s: %w", subject, stream, err)
	}
	return nil
}

// LastSequence is the stream's newest sequence number (0 when empty).
func (b *Bus) LastSequence(ctx context.Context, stream string) (uint64, error) {
	st, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return info.State.LastSeq, nil
}

// Follow feeds fn every message of stream from sequence from on, as it
// arrives, until ctx ends. Workers use it to keep derived state current
// with what other copies of their stage publish. A cluster losing a node
// only delays it.
func (b *Bus) Follow(ctx context.Context, stream string, from uint64, fn func(*Message)) error {
	var cons jetstream.Consumer
	err := b.retry(ctx, "follow "+stream, func(ctx context.Context) error {
		st, err := b.JS.Stream(ctx, stream)
		if err != nil {
			return err
		}
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if from > 1 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
		}
		cons, err = st.OrderedConsumer(ctx, cfg)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	it, err := cons.Messages(append([]jetstream.PullMessagesOpt{jetstream.PullMaxMessages(256)}, orderedPulls...)...)
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		jm, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			b.log.Warn("following a stream failed; retrying", "stream", stream, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		md, err := jm.Metadata()
		if err != nil {
			continue
		}
		fn(&Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), Sequence: md.Sequence.Stream, Delivered: md.NumDelivered})
	}
}
