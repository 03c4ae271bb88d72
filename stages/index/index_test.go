package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

// versionIndex keeps the newest version per product, as every backend must.
type versionIndex struct {
	mu       sync.Mutex
	versions map[string]uint64
	calls    [][]schemas.ProductChange
	refuse   map[string]string // product id → reason the backend gives
}

func (v *versionIndex) Apply(_ context.Context, changes []schemas.ProductChange) (schemas.ApplyResult, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, changes)
	var res schemas.ApplyResult
	for i, c := range changes {
		if reason, ok := v.refuse[c.ID]; ok {
			res.Rejected = append(res.Rejected, schemas.RejectedChange{At: i, Reason: reason})
			continue
		}
		if c.Version < v.versions[c.ID] {
			res.Stale++
			res.StaleAt = append(res.StaleAt, i)
			continue
		}
		v.versions[c.ID] = c.Version
		if c.Kind == schemas.ChangeDelete {
			res.Deleted++
		} else {
			res.Indexed++
		}
	}
	return res, nil
}
func (v *versionIndex) Get(context.Context, string) (schemas.Product, error) {
	return schemas.Product{}, schemas.ErrNotFound
}
func (v *versionIndex) Search(context.Context, schemas.SearchRequest) (schemas.SearchResult, error) {
	return schemas.SearchResult{}, nil
}
func (v *versionIndex) Close() error { return nil }

// ledger records what the stage reports per batch.
type ledger struct {
	schemas.UploadLedger
	mu      sync.Mutex
	records map[string]schemas.IndexRecord
}

func (l *ledger) RecordIndex(_ context.Context, upload string, batch int, r schemas.IndexRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records[fmt.Sprintf("%s/%d", upload, batch)] = r
	return nil
}

func message(t *testing.T, b schemas.ProductBatch) *pipeline.Message {
	t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Message{Data: data}
}

func upsert(id string, v uint64) schemas.ProductChange {
	return schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: id, Version: v, Product: &schemas.Product{ID: id}}
}

func TestHandleCountsEachBatchExactlyAcrossParts(t *testing.T) {
	t.Parallel()
	ix := &versionIndex{versions: map[string]uint64{"acme:old": 100}}
	l := &ledger{records: map[string]schemas.IndexRecord{}}
	s := &Stage{Index: ix, Ledger: l, Writers: 2}
	msgs := []*pipeline.Message{
		message(t, schemas.ProductBatch{Upload: "u1", Batch: 0, Changes: []schemas.ProductChange{upsert("acme:a", 1), upsert("acme:b", 2)}}),
		message(t, schemas.ProductBatch{Upload: "u2", Batch: 0, Changes: []schemas.ProductChange{upsert("shop:x", 5)}}),
		message(t, schemas.ProductBatch{Upload: "u1", Batch: 1, Changes: []schemas.ProductChange{
			upsert("acme:old", 3), // older than what the index holds
			{Kind: schemas.ChangeDelete, ID: "acme:gone", Version: 4},
		}}),
		message(t, schemas.ProductBatch{Upload: "u1", Batch: 2}), // nothing changed
		message(t, schemas.ProductBatch{Upload: "u1", Batch: -1, End: &schemas.UploadRun{Upload: "u1"}}),
		{Data: []byte("not json")},
	}
	errs := s.Handle(context.Background(), msgs)
	for i, err := range errs[:5] {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if errs[5] == nil || !pipeline.IsTerminal(errs[5]) {
		t.Errorf("unreadable message: %v, want a terminal error", errs[5])
	}
	want := map[string]schemas.IndexRecord{
		"u1/0": {Indexed: 2},
		"u1/1": {Deleted: 1},
		"u1/2": {},
		"u2/0": {Indexed: 1},
	}
	if len(l.records) != len(want) {
		t.Errorf("records = %v, want %v", l.records, want)
	}
	for k, w := range want {
		if !reflect.DeepEqual(l.records[k], w) {
			t.Errorf("%s = %+v, want %+v", k, l.records[k], w)
		}
	}
	for _, call := range ix.calls {
		up := call[0].ID[:4]
		for _, c := range call {
			if c.ID[:4] != up {
				t.Errorf("one index write mixed uploads: %v", call)
			}
		}
	}
}

func TestRefusedChangesAreDeadLetteredAndReported(t *testing.T) {
	t.Parallel()
	ix := &versionIndex{versions: map[string]uint64{}, refuse: map[string]string{"acme:bad": "mapper_parsing_exception: failed to parse field [price]"}}
	l := &ledger{records: map[string]schemas.IndexRecord{}}
	var mu sync.Mutex
	var dead []schemas.DeadLetter
	var ids []string
	s := &Stage{Index: ix, Ledger: l, Writers: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetter: func(_ context.Context, d schemas.DeadLetter, msgID string) error {
			mu.Lock()
			defer mu.Unlock()
			dead = append(dead, d)
			ids = append(ids, msgID)
			return nil
		}}
	bad := upsert("acme:bad", 3)
	bad.Row = 17
	msgs := []*pipeline.Message{
		message(t, schemas.ProductBatch{Upload: "u1", Partner: "acme", Batch: 0, Changes: []schemas.ProductChange{upsert("acme:a", 1), bad, upsert("acme:b", 1)}}),
	}
	if errs := s.Handle(context.Background(), msgs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r := l.records["u1/0"]
	if r.Indexed != 2 || len(r.Rejections) != 1 {
		t.Fatalf("record %+v", r)
	}
	if rej := r.Rejections[0]; rej.Row != 17 || rej.SourceID != "bad" || rej.Field != "index" || !strings.Contains(rej.Reason, "failed to parse field [price]") {
		t.Errorf("rejection %+v", rej)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	var c schemas.ProductChange
	if err := json.Unmarshal(d.Payload, &c); err != nil || c.ID != "acme:bad" || c.Version != 3 {
		t.Errorf("payload %s (%v)", d.Payload, err)
	}
	if d.Stage != "index" || d.Source.Upload != "u1" || d.Source.Row != 17 || d.Source.Partner != "acme" || !strings.Contains(d.Error, "mapper_parsing_exception") {
		t.Errorf("dead letter %+v", d)
	}
	// A redelivered batch must produce the same entry id, so JetStream drops the repeat.
	if errs := s.Handle(context.Background(), msgs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("dead-letter ids %v", ids)
	}
}

func TestDeadLetterFailureRetriesTheMessage(t *testing.T) {
	t.Parallel()
	ix := &versionIndex{versions: map[string]uint64{}, refuse: map[string]string{"acme:bad": "illegal_argument_exception"}}
	l := &ledger{records: map[string]schemas.IndexRecord{}}
	s := &Stage{Index: ix, Ledger: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetter: func(context.Context, schemas.DeadLetter, string) error { return errors.New("nats: timeout") }}
	msgs := []*pipeline.Message{message(t, schemas.ProductBatch{Upload: "u1", Partner: "acme", Changes: []schemas.ProductChange{upsert("acme:bad", 1)}})}
	if errs := s.Handle(context.Background(), msgs); errs == nil || errs[0] == nil {
		t.Fatal("a lost dead-letter entry must retry the message")
	}
	if _, ok := l.records["u1/0"]; ok {
		t.Error("progress recorded although the refused product was not dead-lettered")
	}
}

// writeCounter records the largest index write and how many ran at once.
type writeCounter struct {
	versionIndex
	running, most atomic.Int32
	largest       atomic.Int32
}

func (w *writeCounter) Apply(ctx context.Context, changes []schemas.ProductChange) (schemas.ApplyResult, error) {
	n := w.running.Add(1)
	defer w.running.Add(-1)
	for m := w.most.Load(); n > m && !w.most.CompareAndSwap(m, n); m = w.most.Load() {
	}
	for m := w.largest.Load(); int32(len(changes)) > m && !w.largest.CompareAndSwap(m, int32(len(changes))); m = w.largest.Load() {
	}
	time.Sleep(5 * time.Millisecond) // long enough for the writes to overlap
	return w.versionIndex.Apply(ctx, changes)
}

// TestWritesAreBoundedByBytesAndWriters: what a write holds in memory
// follows the bytes of its batches, and no more than Writers run at once
// however many parts one fetch makes.
func TestWritesAreBoundedByBytesAndWriters(t *testing.T) {
	t.Parallel()
	ix := &writeCounter{versionIndex: versionIndex{versions: map[string]uint64{}}}
	l := &ledger{records: map[string]schemas.IndexRecord{}}
	s := &Stage{Index: ix, Ledger: l, Writers: 2, PartBytes: 16 << 10}
	var msgs []*pipeline.Message
	total := 0
	for b := range 24 {
		var cs []schemas.ProductChange
		for i := range 10 {
			c := upsert(fmt.Sprintf("acme:%d-%d", b, i), 1)
			c.Product.Title = strings.Repeat("long title ", 20)
			cs = append(cs, c)
		}
		m := message(t, schemas.ProductBatch{Upload: "u1", Batch: b, Changes: cs})
		if len(m.Data) > s.PartBytes {
			t.Fatalf("a batch of %d bytes is larger than a part", len(m.Data))
		}
		total += len(m.Data)
		msgs = append(msgs, m)
	}
	for i, err := range s.Handle(context.Background(), msgs) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	perPart := s.PartBytes / len(msgs[0].Data) * 10 // changes of the batches that fit in a part
	if got := int(ix.largest.Load()); got > perPart {
		t.Errorf("largest write %d changes, want at most %d (%d bytes of batches)", got, perPart, s.PartBytes)
	}
	if len(ix.calls) < total/s.PartBytes {
		t.Errorf("%d writes for %d bytes of batches, want at least %d", len(ix.calls), total, total/s.PartBytes)
	}
	if got := ix.most.Load(); got > 2 {
		t.Errorf("%d writes ran at once, want at most Writers (2)", got)
	}
	if len(l.records) != len(msgs) || len(ix.versions) != 240 {
		t.Errorf("%d batches recorded and %d products indexed, want %d and 240", len(l.records), len(ix.versions), len(msgs))
	}
}
