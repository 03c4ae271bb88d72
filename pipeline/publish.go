package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outgoing is a message a stage publishes. MsgID, when set, becomes the
// Nats-Msg-Id so a republish after a crash is dropped as a duplicate.
type Outgoing struct {
	Subject string
	MsgID   string
	Data    []byte
	Header  nats.Header
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

// JetStreamPublisher publishes to JetStream.
type JetStreamPublisher struct {
	JS jetstream.JetStream
}

func toMsg(out Outgoing) *nats.Msg {
	m := &nats.Msg{Subject: out.Subject, Data: out.Data, Header: out.Header}
	if out.MsgID != "" {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(jetstream.MsgIDHeader, out.MsgID)
	}
	return m
}

// PublishTimeout bounds waiting for one acknowledgement; a lost reply turns
// into an error the stage retries, never a hang.
const PublishTimeout = 10 * time.Second

// Publish implements Publisher.
func (p JetStreamPublisher) Publish(ctx context.Context, out Outgoing) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	ack, err := p.JS.PublishMsg(ctx, toMsg(out))
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", out.Subject, err)
	}
	return ack.Sequence, nil
}

// Flight starts a windowed asynchronous publish of at most window messages
// awaiting acknowledgement at once.
func (p JetStreamPublisher) Flight(window int) Flight {
	return &flight{js: p.JS, window: max(window, 1)}
}

type flight struct {
	js      jetstream.JetStream
	window  int
	pending []jetstream.PubAckFuture
}

func (f *flight) Publish(ctx context.Context, out Outgoing) error {
	for len(f.pending) >= f.window {
		if err := f.waitOldest(ctx); err != nil {
			return err
		}
	}
	fut, err := f.js.PublishMsgAsync(toMsg(out))
	if err != nil {
		return fmt.Errorf("publish %s: %w", out.Subject, err)
	}
	f.pending = append(f.pending, fut)
	return nil
}

func (f *flight) waitOldest(ctx context.Context) error {
	fut := f.pending[0]
	f.pending = f.pending[1:]
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("publish %s: %w", fut.Msg().Subject, err)
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
