package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
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
// replay goes on where it was once the stream answers again, and fails
// after replayStall without a message.
func (b *Bus) ReplayFrom(ctx context.Context, stream, filter string, from uint64, fn func(*Message) error) (int, uint64, error) {
	var info *jetstream.StreamInfo
	err := b.retry(ctx, "replay "+stream, func(ctx context.Context) error {
		st, err := b.js.Stream(ctx, stream)
		if err == nil {
			info, err = st.Info(ctx)
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || from > last {
		return 0, last, nil
	}
	n := 0
	var pending atomic.Bool // the last message said more match, or none came yet
	pending.Store(true)
	r := orderedRead{stream: stream, filter: filter, batch: 512, giveUp: replayStall, stopIfNone: true,
		behind: func(context.Context, uint64) (bool, error) { return pending.Load(), nil },
		each: func(m *Message, numPending uint64) (bool, error) {
			if m.Sequence > last {
				return true, nil
			}
			if err := fn(m); err != nil {
				return true, err
			}
			n++
			// NumPending counts matching messages after this one, now;
			// stop at what was stored when the replay began.
			pending.Store(numPending > 0)
			return numPending == 0 || m.Sequence >= last, nil
		},
	}
	if err := b.readOrdered(ctx, &r, from); err != nil {
		if ctx.Err() != nil {
			return n, last, ctx.Err()
		}
		return n, last, fmt.Errorf("replay %s after %d messages: %w", stream, n, err)
	}
	return n, last, nil
}

// replayStall bounds how long a replay, or a call it makes, waits for a
// cluster to answer again.
const replayStall = time.Minute

// orderedStall is how long a reader that is behind its stream may get
// nothing before it starts afresh.
const orderedStall = 10 * time.Second

// orderedRead reads a stream with ordered consumers.
type orderedRead struct {
	stream, filter string
	batch          int
	// giveUp, when set, fails a read that got nothing for this long.
	giveUp time.Duration
	// stopIfNone ends the read at once when nothing matches.
	stopIfNone bool
	// behind says whether more is due after sequence seen.
	behind func(ctx context.Context, seen uint64) (bool, error)
	// each takes a message; done ends the read.
	each func(m *Message, numPending uint64) (done bool, err error)

	next     atomic.Uint64 // the sequence to read next
	progress atomic.Int64  // when a message last came, Unix nanoseconds
}

func (r *orderedRead) quiet() time.Duration { return time.Since(time.Unix(0, r.progress.Load())) }

// readOrdered feeds r.each every message of r.stream from sequence from on
// until it says done or fails, or ctx ends. A reader that is behind and
// gets nothing for orderedStall is started afresh where it stopped.
//
// An ordered consumer lives on one node. When that node is lost, nats.go
// makes a new one under the same name, which the cluster may place on the
// lost node again; it is then asked for under that name forever, and the
// reader hangs. Starting afresh makes a consumer of another name.
func (b *Bus) readOrdered(ctx context.Context, r *orderedRead, from uint64) error {
	r.next.Store(from)
	r.progress.Store(time.Now().UnixNano())
	for {
		var it jetstream.MessagesContext
		none := false
		err := b.retry(ctx, "read "+r.stream, func(ctx context.Context) error {
			st, err := b.js.Stream(ctx, r.stream)
			if err != nil {
				return err
			}
			cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
			if next := r.next.Load(); next > 1 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, next
			}
			if r.filter != "" {
				cfg.FilterSubjects = []string{r.filter}
			}
			cons, err := st.OrderedConsumer(ctx, cfg)
			if err != nil {
				return err
			}
			if r.stopIfNone {
				ci, err := cons.Info(ctx)
				if err != nil {
					return err
				}
				if none = ci.NumPending == 0; none {
					return nil
				}
			}
			it, err = cons.Messages(jetstream.PullMaxMessages(r.batch), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
			return err
		})
		if err != nil || none {
			return err
		}
		stalled, done := b.watchOrdered(ctx, it, r)
		finished, err := b.drainOrdered(ctx, it, r)
		it.Stop()
		close(done)
		switch {
		case finished || ctx.Err() != nil:
			return err
		case err != nil && !stalled.Load():
			return err
		case r.giveUp > 0 && r.quiet() > r.giveUp:
			return fmt.Errorf("nothing from stream %s for %s", r.stream, r.giveUp)
		}
		b.log.Warn("reading a stream stalled; starting again where it stopped", "stream", r.stream, "from", r.next.Load(), "quiet_for", r.quiet().Round(time.Second))
	}
}

// watchOrdered stops it when r is behind and has been quiet for
// orderedStall, or when ctx ends; stalled reports the former. Closing done
// ends the watch.
func (b *Bus) watchOrdered(ctx context.Context, it jetstream.MessagesContext, r *orderedRead) (stalled *atomic.Bool, done chan struct{}) {
	stalled, done = &atomic.Bool{}, make(chan struct{})
	go func() {
		t := time.NewTicker(orderedStall / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				it.Stop()
				return
			case <-t.C:
				if r.quiet() < orderedStall {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				behind, err := r.behind(cctx, r.next.Load()-1)
				cancel()
				if err == nil && behind {
					stalled.Store(true)
					it.Stop()
					return
				}
			}
		}
	}()
	return stalled, done
}

// drainOrdered hands each message of it to r.each until it says done
// (finished), it is stopped, or it fails.
func (b *Bus) drainOrdered(ctx context.Context, it jetstream.MessagesContext, r *orderedRead) (finished bool, err error) {
	for {
		jm, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return false, err
			}
			b.log.Info("reading a stream waits for NATS", "stream", r.stream, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		md, err := jm.Metadata()
		if err != nil {
			return true, fmt.Errorf("stream %s: %w", r.stream, err)
		}
		r.progress.Store(time.Now().UnixNano())
		r.next.Store(md.Sequence.Stream + 1)
		m := &Message{Subject: jm.Subject(), Data: jm.Data(), Metadata: metadataOf(jm.Headers()), Sequence: md.Sequence.Stream, Delivered: md.NumDelivered}
		if done, err := r.each(m, md.NumPending); done || err != nil {
			return true, err
		}
	}
}

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
	// A purge of one upload's raw batches walks hundreds of megabytes of
	// blocks; on a busy host that outlasts the client's default 5 s wait
	// while the server is still at it.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, purgeWait)
		defer cancel()
	}
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("purge %s: %w", stream, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("purge %s of %s: %w", subject, stream, err)
	}
	return nil
}

// purgeWait bounds a purge whose caller set no deadline.
const purgeWait = 2 * time.Minute

// MessageAt reads the message stored at sequence seq of stream.
func (b *Bus) MessageAt(ctx context.Context, stream string, seq uint64) (*Message, error) {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", stream, err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("read %s sequence %d: %w", stream, seq, ErrMessageGone)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s sequence %d: %w", stream, seq, err)
	}
	return &Message{Subject: m.Subject, Data: m.Data, Metadata: metadataOf(m.Header), Sequence: m.Sequence}, nil
}

// LastSequence is the stream's newest sequence number (0 when empty).
func (b *Bus) LastSequence(ctx context.Context, stream string) (uint64, error) {
	st, err := b.js.Stream(ctx, stream)
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
// only delays it: a follower behind the stream that gets nothing for
// orderedStall starts again where it stopped.
func (b *Bus) Follow(ctx context.Context, stream string, from uint64, fn func(*Message)) error {
	r := orderedRead{stream: stream, batch: 256,
		behind: func(ctx context.Context, seen uint64) (bool, error) {
			last, err := b.LastSequence(ctx, stream)
			return last > seen, err
		},
		each: func(m *Message, _ uint64) (bool, error) {
			fn(m)
			return false, nil
		},
	}
	err := b.readOrdered(ctx, &r, from)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	return nil
}
