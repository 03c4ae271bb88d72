package pipeline

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Metadata is what a message says about itself besides its payload (the
// partner, upload and batch it belongs to, the worker that published it),
// so stages and middleware read it without decoding the payload. Keys and
// values are plain strings; only the publisher turns them into NATS headers.
type Metadata map[string]string

// Get is the value of key; "" when it is not set.
func (m Metadata) Get(key string) string { return m[key] }

// Event is what stages and the API publish. It knows its subject, the
// deterministic id that makes a second copy within the duplicate window a
// no-op, its metadata and its encoding; the events of package schemas are
// Events. Handlers hand events to the runtime rather than build messages.
type Event interface {
	Subject() string
	MsgID() string
	Metadata() map[string]string
	Encode() ([]byte, error)
}

// Envelope is the message that carries ev. Its Metadata is never nil and
// is the caller's to add to.
func Envelope(ev Event) (Outgoing, error) {
	data, err := ev.Encode()
	if err != nil {
		return Outgoing{}, fmt.Errorf("encode the event for %s: %w", ev.Subject(), err)
	}
	md := Metadata(ev.Metadata())
	if md == nil {
		md = Metadata{}
	}
	return Outgoing{Subject: ev.Subject(), MsgID: ev.MsgID(), Data: data, Metadata: md}, nil
}

// Publish publishes ev with p and waits until it is stored.
func Publish(ctx context.Context, p Publisher, ev Event) (seq uint64, err error) {
	out, err := Envelope(ev)
	if err != nil {
		return 0, err
	}
	return p.Publish(ctx, out)
}

// headerOf is the NATS header that carries md, and the message id that
// makes JetStream drop a second copy.
func headerOf(md Metadata, msgID string) nats.Header {
	if len(md) == 0 && msgID == "" {
		return nil
	}
	h := make(nats.Header, len(md)+1)
	for k, v := range md {
		h.Set(k, v)
	}
	if msgID != "" {
		h.Set(msgIDHeader, msgID)
	}
	return h
}

// metadataOf is the metadata a stored message carries: the first value of
// each of its headers.
func metadataOf(h nats.Header) Metadata {
	if len(h) == 0 {
		return nil
	}
	md := make(Metadata, len(h))
	for k, v := range h {
		if len(v) > 0 {
			md[k] = v[0]
		}
	}
	return md
}
