package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"feedline/schemas"
)

// Posts implements schemas.PostStore on a key-value bucket. Reads of many
// posts are one batched direct get, not one request per post.
type Posts struct {
	KV jetstream.KeyValue
	JS jetstream.JetStream
}

// Put stores (or replaces) a post under its id.
func (s Posts) Put(ctx context.Context, p schemas.Post) error {
	if !validKey(p.ID) {
		return fmt.Errorf("post id %q is not a valid key", p.ID)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := s.KV.Put(ctx, p.ID, b); err != nil {
		return fmt.Errorf("store post %s: %w", p.ID, err)
	}
	return nil
}

// Get answers the stored posts among ids; missing and deleted ones are left out.
func (s Posts) Get(ctx context.Context, ids []string) (map[string]schemas.Post, error) {
	out := make(map[string]schemas.Post, len(ids))
	bucket := s.KV.Bucket()
	subjects := make([]string, 0, len(ids))
	for _, id := range ids {
		if validKey(id) {
			subjects = append(subjects, "$KV."+bucket+"."+id)
		}
	}
	if len(subjects) == 0 {
		return out, nil
	}
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.JS, "KV_"+bucket, subjects)
	if err != nil {
		return nil, fmt.Errorf("read %d posts: %w", len(subjects), err)
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read posts: %w", err)
		}
		if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			continue
		}
		var p schemas.Post
		if err := json.Unmarshal(m.Data, &p); err != nil {
			return nil, fmt.Errorf("post at %s: %w", m.Subject, err)
		}
		out[p.ID] = p
	}
	return out, nil
}

// Delete removes a post; deleting a missing post is not an error.
func (s Posts) Delete(ctx context.Context, id string) error {
	if !validKey(id) {
		return nil
	}
	if err := s.KV.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete post %s: %w", id, err)
	}
	return nil
}
