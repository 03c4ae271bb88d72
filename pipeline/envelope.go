package pipeline

import "github.com/nats-io/nats.go"

// Metadata is what a message says about itself besides its payload (the
// partner, upload and batch it belongs to, the worker that published it),
// so stages and middleware read it without decoding the payload. Keys and
// values are plain strings; only the publisher turns them into NATS headers.
type Metadata map[string]string

// Get is the value of key; "" when it is not set.
func (m Metadata) Get(key string) string { return m[key] }

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
