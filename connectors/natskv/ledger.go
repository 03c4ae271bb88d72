// Package natskv keeps feedline's small state in NATS JetStream key-value
// buckets: upload progress, partners and mapping versions.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Ledger implements schemas.UploadLedger. Keys: "<id>" holds the upload,
// "<id>.ingest", "<id>.n.<batch>", "<id>.d" and "<id>.i.<batch>" hold what
// each stage recorded, one key per batch so replays overwrite, never add.
type Ledger struct {
	KV jetstream.KeyValue
}

func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// createJSON stores v under key unless the key exists, and returns what is stored.
func createJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, v T) (T, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v, err
	}
	_, err = kv.Create(ctx, key, b)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return v, fmt.Errorf("store %s: %w", key, err)
	}
	var have T
	if err := getJSON(ctx, kv, key, &have); err != nil {
		return v, err
	}
	return have, nil
}

func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%s: %w", key, schemas.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// Create stores a new upload's record.
func (l Ledger) Create(ctx context.Context, u schemas.UploadEvent) error {
	_, err := createJSON(ctx, l.KV, u.ID, u)
	return err
}

// Upload reads an upload's record.
func (l Ledger) Upload(ctx context.Context, id string) (schemas.UploadEvent, error) {
	var u schemas.UploadEvent
	if !validKey(id) {
		return u, fmt.Errorf("upload %q: %w", id, schemas.ErrNotFound)
	}
	err := getJSON(ctx, l.KV, id, &u)
	return u, err
}

// RecordIngest stores what ingest decoded.
func (l Ledger) RecordIngest(ctx context.Context, upload string, r schemas.IngestRecord) error {
	return putJSON(ctx, l.KV, upload+".ingest", r)
}

// Ingested reads what ingest recorded; schemas.ErrNotFound before it finished.
func (l Ledger) Ingested(ctx context.Context, upload string) (schemas.IngestRecord, error) {
	var r schemas.IngestRecord
	err := getJSON(ctx, l.KV, upload+".ingest", &r)
	return r, err
}

// RecordNormalise stores the first record of a batch and returns the stored one.
func (l Ledger) RecordNormalise(ctx context.Context, upload string, batch int, r schemas.NormaliseRecord) (schemas.NormaliseRecord, error) {
	return createJSON(ctx, l.KV, upload+".n."+strconv.Itoa(batch), r)
}

// NormalisedBatches counts the batches normalise recorded.
func (l Ledger) NormalisedBatches(ctx context.Context, upload string) (int, error) {
	lister, err := l.KV.ListKeysFiltered(ctx, upload+".n.*")
	if err != nil {
		return 0, fmt.Errorf("list %s batches: %w", upload, err)
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return n, nil
}

// RecordDeletes stores the first deletion record of a full upload.
func (l Ledger) RecordDeletes(ctx context.Context, upload string, r schemas.DeleteRecord) (schemas.DeleteRecord, error) {
	return createJSON(ctx, l.KV, upload+".d", r)
}

// RecordIndex stores what the index applied for one product batch.
func (l Ledger) RecordIndex(ctx context.Context, upload string, batch int, r schemas.IndexRecord) error {
	return putJSON(ctx, l.KV, upload+".i."+strconv.Itoa(batch), r)
}

// RecordFailure stores a stage's dead-lettered batch of an upload.
func (l Ledger) RecordFailure(ctx context.Context, upload string, r schemas.FailureRecord) error {
	return putJSON(ctx, l.KV, upload+".x."+r.Stage+"."+strconv.Itoa(r.Batch), r)
}

// Progress reads every record of an upload in one pass over its keys.
func (l Ledger) Progress(ctx context.Context, id string) (schemas.UploadProgress, error) {
	p := schemas.UploadProgress{Normalise: map[int]schemas.NormaliseRecord{}, Index: map[int]schemas.IndexRecord{}}
	u, err := l.Upload(ctx, id)
	if err != nil {
		return p, err
	}
	p.Upload = u
	w, err := l.KV.Watch(ctx, id+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return p, fmt.Errorf("read progress of %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case e = <-w.Updates():
		}
		if e == nil { // all current values delivered
			return p, nil
		}
		if err := addRecord(&p, strings.TrimPrefix(e.Key(), id+"."), e.Value()); err != nil {
			return p, fmt.Errorf("decode %s: %w", e.Key(), err)
		}
	}
}

// Status implements schemas.UploadLedger.
func (l Ledger) Status(ctx context.Context, id string) (schemas.UploadStatus, error) {
	p, err := l.Progress(ctx, id)
	if err != nil {
		return schemas.UploadStatus{}, err
	}
	return p.Status(), nil
}

func addRecord(p *schemas.UploadProgress, suffix string, v []byte) error {
	kind, num, _ := strings.Cut(suffix, ".")
	switch kind {
	case "ingest":
		p.Ingest = &schemas.IngestRecord{}
		return json.Unmarshal(v, p.Ingest)
	case "d":
		p.Deletes = &schemas.DeleteRecord{}
		return json.Unmarshal(v, p.Deletes)
	case "x":
		var r schemas.FailureRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		p.Failures = append(p.Failures, r)
	case "n", "i":
		b, err := strconv.Atoi(num)
		if err != nil {
			return err
		}
		if kind == "n" {
			var r schemas.NormaliseRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			p.Normalise[b] = r
			return nil
		}
		var r schemas.IndexRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		p.Index[b] = r
	}
	return nil
}

func validKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidKey reports whether s may be used as an id inside bucket keys.
func ValidKey(s string) bool { return validKey(s) }
