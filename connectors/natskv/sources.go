package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Sources implements schemas.SourceStore.
type Sources struct {
	KV jetstream.KeyValue
}

// Source reads a partner's record.
func (s Sources) Source(ctx context.Context, partner string) (schemas.SourceRecord, error) {
	var r schemas.SourceRecord
	if !validKey(partner) {
		return r, fmt.Errorf("source of %q: %w", partner, schemas.ErrNotFound)
	}
	err := getJSON(ctx, s.KV, partner, &r)
	return r, err
}

// UpdateSource applies fn with compare-and-set.
func (s Sources) UpdateSource(ctx context.Context, partner string, fn func(*schemas.SourceRecord, bool) bool) (schemas.SourceRecord, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for {
		var r schemas.SourceRecord
		var rev uint64
		e, err := s.KV.Get(ctx, partner)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return r, false, fmt.Errorf("read source %s: %w", partner, err)
		default:
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return r, false, fmt.Errorf("decode source %s: %w", partner, err)
			}
			rev = e.Revision()
		}
		if !fn(&r, rev != 0) {
			return r, false, nil
		}
		r.Partner = partner
		b, err := json.Marshal(r)
		if err != nil {
			return r, false, err
		}
		if rev == 0 {
			_, err = s.KV.Create(ctx, partner, b)
		} else {
			_, err = s.KV.Update(ctx, partner, b, rev)
		}
		if err == nil {
			return r, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return r, false, fmt.Errorf("store source %s: %w", partner, err)
		}
		if ctx.Err() != nil {
			return r, false, ctx.Err()
		}
	}
}

// DeleteSource removes a partner's record.
func (s Sources) DeleteSource(ctx context.Context, partner string) error {
	if _, err := s.Source(ctx, partner); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := s.KV.Purge(ctx, partner); err != nil {
		return fmt.Errorf("delete source %s: %w", partner, err)
	}
	return nil
}

// WatchSources calls fn with every record and every change, until ctx ends.
func (s Sources) WatchSources(ctx context.Context, fn func(schemas.SourceRecord, bool)) error {
	w, err := s.KV.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", s.KV.Bucket(), err)
	}
	return followWatch(ctx, w, "bucket "+s.KV.Bucket(), func() {}, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			fn(schemas.SourceRecord{Partner: e.Key()}, true)
			return
		}
		var r schemas.SourceRecord
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return // not a record this version reads; its writer's version does
		}
		fn(r, false)
	})
}

// followWatch hands every entry of w to entry until ctx ends, and calls
// ready once the entries present at the start were delivered.
func followWatch(ctx context.Context, w jetstream.KeyWatcher, what string, ready func(), entry func(jetstream.KeyValueEntry)) error {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("the watch of %s ended", what)
			}
			if e == nil {
				ready()
				continue
			}
			entry(e)
		}
	}
}
