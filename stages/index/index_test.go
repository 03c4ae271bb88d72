package index

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"feedline/pipeline"
	"feedline/schemas"
)

// versionIndex keeps the newest version per product, as every backend must.
type versionIndex struct {
	mu       sync.Mutex
	versions map[string]uint64
	calls    [][]schemas.ProductChange
}

func (v *versionIndex) Apply(_ context.Context, changes []schemas.ProductChange) (schemas.ApplyResult, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, changes)
	var res schemas.ApplyResult
	for i, c := range changes {
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
		if l.records[k] != w {
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
