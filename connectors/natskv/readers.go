package natskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadLog implements schemas.ReadLog on a key-value bucket: the reader is
// the key, the value their last read in Unix milliseconds.
type ReadLog struct {
	KV jetstream.KeyValue
}

// Record stores reader's last read; the API writes it at most once an
// hour per reader.
func (l ReadLog) Record(ctx context.Context, reader string, at time.Time) error {
	if !validKey(reader) {
		return fmt.Errorf("reader %q is not a valid key", reader)
	}
	if _, err := l.KV.Put(ctx, reader, strconv.AppendInt(nil, at.UnixMilli(), 10)); err != nil {
		return fmt.Errorf("record the feed read of %s: %w", reader, err)
	}
	return nil
}

// Each calls fn with every reader's last read, in one pass over the
// bucket's latest values.
func (l ReadLog) Each(ctx context.Context, fn func(reader string, at time.Time) error) error {
	w, err := l.KV.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read the feed reads: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("read the feed reads: the watch ended early")
			}
			if e == nil {
				return nil // every reader's latest value was delivered
			}
			ms, err := strconv.ParseInt(string(e.Value()), 10, 64)
			if err != nil {
				return fmt.Errorf("feed read of %s is %q, not Unix milliseconds", e.Key(), e.Value())
			}
			if err := fn(e.Key(), time.UnixMilli(ms).UTC()); err != nil {
				return err
			}
		}
	}
}
