// Package natskv keeps feedline's small state in NATS JetStream key-value
// buckets: upload progress, partners and mapping versions.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Ledger implements schemas.UploadLedger, UploadList and UploadSlots (see
// uploadlist.go for the partner index and slots). Keys: "<id>" holds the upload,
// "<id>.ingest" what ingest decoded, "<id>.n" and "<id>.i" the running totals
// of normalise and index with the set of batches already counted (so a
// redelivered batch never counts twice), "<id>.d" a full upload's deletions,
// "<id>.x" the batches a stage gave up on, and for a full upload "<id>.s"
// whether it is staged, "<id>.h" why it is held and "<id>.decision" what its
// partner decided, and "<id>.cancel" a cancellation. A status read is seven
// to nine gets.
type Ledger struct {
	KV jetstream.KeyValue
}

// batchSet remembers which batch numbers were counted, one bit each.
type batchSet []byte

func (b batchSet) has(n int) bool { return n >= 0 && n/8 < len(b) && b[n/8]&(1<<(n%8)) != 0 }

func (b *batchSet) add(n int) {
	for len(*b) <= n/8 {
		*b = append(*b, 0)
	}
	(*b)[n/8] |= 1 << (n % 8)
}

type normaliseTally struct {
	Seen   batchSet                `json:"seen"`
	Totals schemas.NormaliseTotals `json:"totals"`
	// Stored marks the batches whose products are in the log. A tally
	// written before it existed (TracksStored false) counts Seen instead.
	Stored       batchSet `json:"stored,omitempty"`
	TracksStored bool     `json:"tracks_stored,omitempty"`
}

type indexTally struct {
	Seen   batchSet            `json:"seen"`
	Totals schemas.IndexTotals `json:"totals"`
}

// update applies fn to the value under key with compare-and-set, retrying
// when another writer got there first. fn returns false to leave it as is.
func update[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(*T) bool) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for {
		var v T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return v, fmt.Errorf("read %s: %w", key, err)
		default:
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return v, fmt.Errorf("decode %s: %w", key, err)
			}
			rev = e.Revision()
		}
		if !fn(&v) {
			return v, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return v, nil
		}
		if !conflict(err) {
			return v, fmt.Errorf("store %s: %w", key, err)
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
	}
}

// conflict reports whether a create or compare-and-set update lost to
// another writer. A replicated (R3) bucket reports a lost update with
// another error code than a single node, which jetstream.ErrKeyExists does
// not match: on a cluster each such update was a failure.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// opTimeout bounds one key-value call, so a reply lost in a reconnect
// becomes an error the caller retries instead of a hang.
const opTimeout = 10 * time.Second

func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
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

// Create stores a new upload's record and lists it with its partner's.
func (l Ledger) Create(ctx context.Context, u schemas.UploadEvent) error {
	if _, err := createJSON(ctx, l.KV, u.ID, u); err != nil {
		return err
	}
	return l.index(ctx, u.Partner, u.ID)
}

// Discard removes an upload's record; it was never announced, so no stage
// wrote progress under it.
func (l Ledger) Discard(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var u schemas.UploadEvent
	if err := getJSON(ctx, l.KV, id, &u); err == nil {
		if err := l.unindex(ctx, u.Partner, id); err != nil {
			return fmt.Errorf("discard upload %s: %w", id, err)
		}
	}
	if err := l.KV.Purge(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("discard upload %s: %w", id, err)
	}
	return nil
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

// RecordNormalise counts a normalised batch once; a redelivered batch
// leaves the totals as the first attempt made them.
func (l Ledger) RecordNormalise(ctx context.Context, upload string, batch int, r schemas.NormaliseRecord) error {
	_, err := update(ctx, l.KV, upload+".n", func(t *normaliseTally) bool {
		if t.Seen.has(batch) {
			return false
		}
		t.Seen.add(batch)
		t.Totals.Add(r)
		t.TracksStored = true
		return true
	})
	return err
}

// RecordStored marks a normalised batch's products stored in the log.
func (l Ledger) RecordStored(ctx context.Context, upload string, batch int) error {
	_, err := update(ctx, l.KV, upload+".n", func(t *normaliseTally) bool {
		if t.Stored.has(batch) {
			return false
		}
		t.Stored.add(batch)
		return true
	})
	return err
}

// NormalisedBatches counts the batches normalise recorded and stored.
func (l Ledger) NormalisedBatches(ctx context.Context, upload string) (int, error) {
	var t normaliseTally
	err := getJSON(ctx, l.KV, upload+".n", &t)
	if errors.Is(err, schemas.ErrNotFound) {
		return 0, nil
	}
	if !t.TracksStored {
		return t.Totals.Batches, err
	}
	n := 0
	for _, b := range t.Stored {
		n += bits.OnesCount8(b)
	}
	return n, err
}

// RecordDeletes stores the first deletion record of a full upload.
func (l Ledger) RecordDeletes(ctx context.Context, upload string, r schemas.DeleteRecord) (schemas.DeleteRecord, error) {
	return createJSON(ctx, l.KV, upload+".d", r)
}

// RecordStaging stores whether a full upload is staged; the first answer stands.
func (l Ledger) RecordStaging(ctx context.Context, upload string, staged bool) (bool, error) {
	return createJSON(ctx, l.KV, upload+".s", staged)
}

// RecordHold stores the first hold record of a full upload.
func (l Ledger) RecordHold(ctx context.Context, upload string, r schemas.HoldRecord) (schemas.HoldRecord, error) {
	return createJSON(ctx, l.KV, upload+".h", r)
}

// Held reads an upload's hold record.
func (l Ledger) Held(ctx context.Context, upload string) (schemas.HoldRecord, error) {
	var r schemas.HoldRecord
	err := getJSON(ctx, l.KV, upload+".h", &r)
	return r, err
}

// Decide stores the first decision on a held upload and returns the one that stands.
func (l Ledger) Decide(ctx context.Context, upload string, d schemas.DecisionRecord) (schemas.DecisionRecord, error) {
	return createJSON(ctx, l.KV, upload+".decision", d)
}

// RecordIndex counts a product batch the index applied, once.
func (l Ledger) RecordIndex(ctx context.Context, upload string, batch int, r schemas.IndexRecord) error {
	_, err := update(ctx, l.KV, upload+".i", func(t *indexTally) bool {
		if t.Seen.has(batch) {
			return false
		}
		t.Seen.add(batch)
		t.Totals.Add(r)
		return true
	})
	return err
}

// RecordFailure notes a stage's dead-lettered batch of an upload.
func (l Ledger) RecordFailure(ctx context.Context, upload string, r schemas.FailureRecord) error {
	_, err := update(ctx, l.KV, upload+".x", func(fs *[]schemas.FailureRecord) bool {
		for _, f := range *fs {
			if f.Stage == r.Stage && f.Batch == r.Batch {
				return false
			}
		}
		*fs = append(*fs, r)
		return true
	})
	return err
}

// Progress reads what every stage recorded for an upload.
func (l Ledger) Progress(ctx context.Context, id string) (schemas.UploadProgress, error) {
	var p schemas.UploadProgress
	u, err := l.Upload(ctx, id)
	if err != nil {
		return p, err
	}
	p.Upload = u
	if p.Ingest, err = optional[schemas.IngestRecord](ctx, l.KV, id+".ingest"); err != nil {
		return p, err
	}
	if p.Deletes, err = optional[schemas.DeleteRecord](ctx, l.KV, id+".d"); err != nil {
		return p, err
	}
	n, err := optional[normaliseTally](ctx, l.KV, id+".n")
	if err != nil {
		return p, err
	}
	if n != nil {
		p.Normalise = n.Totals
	}
	i, err := optional[indexTally](ctx, l.KV, id+".i")
	if err != nil {
		return p, err
	}
	if i != nil {
		p.Index = i.Totals
	}
	f, err := optional[[]schemas.FailureRecord](ctx, l.KV, id+".x")
	if err != nil {
		return p, err
	}
	if f != nil {
		p.Failures = *f
	}
	if p.Cancel, err = optional[schemas.CancelRecord](ctx, l.KV, id+".cancel"); err != nil {
		return p, err
	}
	if p.Upload.Mode == schemas.ModeFull {
		if p.Cancel != nil {
			if p.Staged, err = optional[bool](ctx, l.KV, id+".s"); err != nil {
				return p, err
			}
		}
		if p.Hold, err = optional[schemas.HoldRecord](ctx, l.KV, id+".h"); err != nil {
			return p, err
		}
		if p.Hold != nil {
			if p.Decision, err = optional[schemas.DecisionRecord](ctx, l.KV, id+".decision"); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// optional reads a record that may not exist yet (nil then).
func optional[T any](ctx context.Context, kv jetstream.KeyValue, key string) (*T, error) {
	var v T
	err := getJSON(ctx, kv, key, &v)
	if errors.Is(err, schemas.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Status implements schemas.UploadLedger.
func (l Ledger) Status(ctx context.Context, id string) (schemas.UploadStatus, error) {
	p, err := l.Progress(ctx, id)
	if err != nil {
		return schemas.UploadStatus{}, err
	}
	return p.Status(), nil
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

// LastRecorded is when anything was last recorded of an upload: for a
// finished upload, when it finished.
func (l Ledger) LastRecorded(ctx context.Context, id string) (time.Time, error) {
	var last time.Time
	if !validKey(id) {
		return last, fmt.Errorf("upload %q: %w", id, schemas.ErrNotFound)
	}
	// The keys, after "<upload>", of everything recorded of an upload.
	for _, suffix := range []string{"", ".ingest", ".n", ".i", ".d", ".s", ".h", ".decision", ".x", ".cancel"} {
		e, err := l.KV.Get(ctx, id+suffix)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if suffix == "" {
				return last, fmt.Errorf("upload %s: %w", id, schemas.ErrNotFound)
			}
			continue
		}
		if err != nil {
			return last, fmt.Errorf("read %s: %w", id+suffix, err)
		}
		if e.Created().After(last) {
			last = e.Created()
		}
	}
	return last, nil
}
