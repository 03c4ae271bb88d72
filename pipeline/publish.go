package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outgoing is a message a stage publishes. MsgID, when set, becomes the
// Nats-Msg-Id so a republish after a crash is dropped as a duplicate.
type Outgoing struct {
	Subject  string
	MsgID    string
	Data     []byte
	Metadata Metadata
}

// Publisher publishes and waits until JetStream stored the message.
type Publisher interface {
	Publish(ctx context.Context, out Outgoing) (seq uint64, err error)
}

// Flight publishes many messages with a bounded number awaiting their
// acknowledgement; Wait returns once all are stored or the first failed.
type Flight interface {
	Publish(ctx context.Context, out Outgoing) error
	Wait(ctx context.Context) error
}

// JetStreamPublisher publishes to JetStream; Bus.Publisher makes one.
type JetStreamPublisher struct {
	js jetstream.JetStream
}

// msgIDHeader is where JetStream looks for a message's id.
const msgIDHeader = jetstream.MsgIDHeader

// toMsg is out as a NATS message, stamped with ctx's trace and acceptance time.
func toMsg(ctx context.Context, out Outgoing) *nats.Msg {
	return &nats.Msg{Subject: out.Subject, Data: out.Data, Header: stamp(ctx, headerOf(out.Metadata, out.MsgID))}
}

// PublishTimeout bounds one publish, its retries included: a lost reply
// turns into an error the stage retries, never a hang.
const PublishTimeout = 30 * time.Second

// publishAttempt bounds one try. A stream leader that dies with the message
// never answers; the next try reaches the new leader.
const publishAttempt = 5 * time.Second

// Publish implements Publisher. While a NATS cluster elects a stream leader
// the publish is tried again: at once when nobody took the message (no
// responders), and after a lost reply only for a message with an id, whose
// second copy the stream drops.
func (p JetStreamPublisher) Publish(ctx context.Context, out Outgoing) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	msg := toMsg(ctx, out)
	pause := 50 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, publishAttempt)
		// No responders is retried within the attempt, every 100ms.
		ack, err := p.js.PublishMsg(actx, msg, jetstream.WithRetryAttempts(int(publishAttempt/(100*time.Millisecond))), jetstream.WithRetryWait(100*time.Millisecond))
		acancel()
		if err == nil {
			tallyOf(ctx).published()
			return ack.Sequence, nil
		}
		if ctx.Err() != nil || !Transient(err) || (out.MsgID == "" && !noResponders(err)) {
			return 0, fmt.Errorf("publish %s: %w", out.Subject, err)
		}
		sleep(ctx, pause)
		pause = min(pause*2, time.Second)
	}
}

// noResponders: no stream took the message, so sending it again cannot
// store it twice.
func noResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// Flight starts a windowed asynchronous publish of at most window messages
// awaiting acknowledgement at once.
func (p JetStreamPublisher) Flight(window int) Flight {
	return &flight{pub: p, window: max(window, 1)}
}

type flight struct {
	pub     JetStreamPublisher
	window  int
	pending []inFlight
}

type inFlight struct {
	out   Outgoing
	fut   jetstream.PubAckFuture
	tally *tally // of the stage that published it, counted once stored
}

func (f *flight) Publish(ctx context.Context, out Outgoing) error {
	for len(f.pending) >= f.window {
		if err := f.waitOldest(ctx); err != nil {
			return err
		}
	}
	fut, err := f.pub.js.PublishMsgAsync(toMsg(ctx, out))
	if err != nil {
		return fmt.Errorf("publish %s: %w", out.Subject, err)
	}
	f.pending = append(f.pending, inFlight{out, fut, tallyOf(ctx)})
	return nil
}

// waitOldest waits for the oldest acknowledgement. A message JetStream
// could not take just then (a cluster electing a leader) is published
// again on its own, with Publish's retries; order among a flight's
// messages is not kept, which their ids make harmless.
func (f *flight) waitOldest(ctx context.Context) error {
	p := f.pending[0]
	f.pending = f.pending[1:]
	select {
	case <-p.fut.Ok():
		p.tally.published()
		return nil
	case err := <-p.fut.Err():
		if Transient(err) && (p.out.MsgID != "" || noResponders(err)) {
			_, err = f.pub.Publish(ctx, p.out)
			return err
		}
		return fmt.Errorf("publish %s: %w", p.out.Subject, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *flight) Wait(ctx context.Context) error {
	for len(f.pending) > 0 {
		if err := f.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}
