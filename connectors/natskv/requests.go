package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Requests implements schemas.IdempotentRequests on a key-value bucket
// whose TTL is the idempotency window.
type Requests struct {
	KV jetstream.KeyValue
}

// requestKey hashes the caller's key: any string is a valid idempotency
// key, bucket keys are not.
func requestKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:20])
}

// Begin claims key for rec, or answers the record already there.
func (s Requests) Begin(ctx context.Context, key string, rec schemas.RequestRecord) (schemas.RequestRecord, bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return rec, false, err
	}
	k := requestKey(key)
	if _, err := s.KV.Create(ctx, k, b); err == nil {
		return rec, true, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return rec, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	e, err := s.KV.Get(ctx, k)
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	var got schemas.RequestRecord
	if err := json.Unmarshal(e.Value(), &got); err != nil {
		return rec, false, fmt.Errorf("idempotency record: %w", err)
	}
	return got, false, nil
}

// Finish stores rec under key.
func (s Requests) Finish(ctx context.Context, key string, rec schemas.RequestRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.KV.Put(ctx, requestKey(key), b); err != nil {
		return fmt.Errorf("store answer of idempotent request: %w", err)
	}
	return nil
}
