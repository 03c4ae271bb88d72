package normalise

import (
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"feedline/schemas"
)

var testMapping = schemas.Mapping{
	Fields:   map[string]schemas.FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}, "deleted": {"gone"}},
	Defaults: map[string]string{"currency": "KRW"},
}

func newTestStage() *Stage {
	s := New(nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	return s
}

func batch(seq uint64, n int, rows ...[]string) *schemas.RawBatch {
	rb := &schemas.RawBatch{Upload: "u", Partner: "acme", UploadSeq: seq, Batch: n, Columns: []string{"sku", "name", "price", "gone"}}
	for i, r := range rows {
		rb.Rows = append(rb.Rows, schemas.RawRow{Row: int64(n*1000 + i + 1), Values: r})
	}
	return rb
}

// step normalises a batch and commits it, as Handle does after publishing.
func step(s *Stage, rb *schemas.RawBatch) (*schemas.ProductBatch, schemas.NormaliseRecord) {
	out, rec, pending := s.normalise(rb, testMapping)
	s.cat.commit(rb.Partner, rb.UploadSeq, pending, out.Seen)
	return out, rec
}

func TestNormaliseEmitsOnlyChanges(t *testing.T) {
	s := newTestStage()
	out, rec := step(s, batch(1, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "2000"}, []string{"C", "", "5"}))
	if rec.Read != 3 || rec.Accepted != 2 || rec.Rejected != 1 || len(rec.Rejections) != 1 || rec.Rejections[0].Field != "title" {
		t.Fatalf("first upload: %+v", rec)
	}
	if len(out.Changes) != 2 || !out.Changes[0].New || out.Changes[0].Version != 1<<32|1 {
		t.Fatalf("first upload changes: %+v", out.Changes)
	}

	// Same content in a later upload: nothing downstream, but both are seen.
	out, rec = step(s, batch(2, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "2000"}))
	if rec.Unchanged != 2 || len(out.Changes) != 0 || !reflect.DeepEqual(out.Seen, []string{"acme:A", "acme:B"}) {
		t.Fatalf("unchanged re-upload: rec %+v changes %d seen %v", rec, len(out.Changes), out.Seen)
	}

	// A price change carries old and new price.
	out, _ = step(s, batch(3, 0, []string{"A", "Kettle", "900"}))
	if len(out.Changes) != 1 || out.Changes[0].Price == nil || out.Changes[0].Price.Old != 1000 || out.Changes[0].Price.New != 900 || out.Changes[0].New {
		t.Fatalf("price change: %+v", out.Changes)
	}

	// Replaying an older upload's row changes nothing.
	out, rec = step(s, batch(2, 0, []string{"A", "Kettle", "1000"}))
	if len(out.Changes) != 0 || rec.Unchanged != 1 {
		t.Fatalf("stale replay emitted %+v", out.Changes)
	}
}

func TestNormaliseSameProductTwiceInOneBatch(t *testing.T) {
	s := newTestStage()
	out, rec := step(s, batch(1, 0, []string{"A", "Kettle", "1000"}, []string{"A", "Kettle", "1000"}, []string{"A", "Kettle", "800"}))
	if rec.Accepted != 2 || rec.Unchanged != 1 || len(out.Changes) != 2 {
		t.Fatalf("rec %+v, changes %+v", rec, out.Changes)
	}
	if last := out.Changes[1]; last.Price == nil || last.Price.Old != 1000 || last.Price.New != 800 {
		t.Errorf("the later row is compared with the earlier one: %+v", last)
	}
}

func TestDeltaDeleteAndFullUploadAbsentees(t *testing.T) {
	s := newTestStage()
	step(s, batch(1, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "2000"}, []string{"C", "Grinder", "3000"}))
	out, rec := step(s, batch(2, 0, []string{"B", "", "", "yes"}, []string{"Z", "", "", "1"}))
	if rec.Accepted != 1 || rec.Unchanged != 1 || len(out.Changes) != 1 || out.Changes[0].Kind != schemas.ChangeDelete || out.Changes[0].ID != "acme:B" {
		t.Fatalf("delta delete: rec %+v changes %+v", rec, out.Changes)
	}
	// Upload 3 lists only A: C is absent (B is already gone).
	step(s, batch(3, 0, []string{"A", "Kettle", "1000"}))
	if got := s.cat.absent("acme", 3); !reflect.DeepEqual(got, []string{"acme:C"}) {
		t.Fatalf("absent = %v, want [acme:C]", got)
	}
	// After the deletion is applied the list stays the same, so a rerun of
	// the closing step after a crash publishes the same batches.
	del := &schemas.ProductBatch{Partner: "acme", Seq: 3, Changes: []schemas.ProductChange{{Kind: schemas.ChangeDelete, ID: "acme:C", Version: 3<<32 | deleteRow}}}
	s.cat.apply(del)
	if got := s.cat.absent("acme", 3); !reflect.DeepEqual(got, []string{"acme:C"}) {
		t.Fatalf("absent after applying = %v, want [acme:C]", got)
	}
	if got := s.cat.absent("acme", 4); len(got) != 1 || got[0] != "acme:A" {
		t.Fatalf("a later upload sees only live products: %v", got)
	}
}

func TestRebuiltStateMatchesCommittedState(t *testing.T) {
	live := newTestStage()
	var log []*schemas.ProductBatch
	for i, rows := range [][][]string{
		{{"A", "Kettle", "1000"}, {"B", "Toaster", "2000"}},
		{{"A", "Kettle", "1000"}, {"B", "Toaster", "2500"}},
		{{"A", "", "", "1"}},
	} {
		out, _ := step(live, batch(uint64(i+1), 0, rows...))
		log = append(log, out)
	}
	rebuilt := newTestStage()
	for _, b := range log {
		rebuilt.cat.apply(b)
	}
	if !reflect.DeepEqual(live.cat.partners, rebuilt.cat.partners) {
		t.Errorf("state from the log differs from the live state:\nlive    %+v\nrebuilt %+v", live.cat.partners, rebuilt.cat.partners)
	}
}

// A row that is present but rejected keeps its product: it counts as listed,
// so a full upload does not delete it.
func TestRejectedRowKeepsItsProduct(t *testing.T) {
	s := newTestStage()
	step(s, batch(1, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "2000"}, []string{"C", "Grinder", "3000"}))
	out, rec := step(s, batch(2, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "abc"}, []string{"", "No id", "5"}))
	if rec.Rejected != 2 || rec.Unchanged != 1 || len(out.Changes) != 0 {
		t.Fatalf("second upload: %+v changes %+v", rec, out.Changes)
	}
	if !reflect.DeepEqual(out.Seen, []string{"acme:A", "acme:B"}) {
		t.Errorf("seen %v, want the unchanged row and the rejected one", out.Seen)
	}
	if got := s.cat.absent("acme", 2); !reflect.DeepEqual(got, []string{"acme:C"}) {
		t.Errorf("absent after the second upload: %v, want only the unlisted product", got)
	}
	listed := map[uint64]struct{}{}
	for _, id := range out.Seen {
		listed[xxhash.Sum64String(id)] = struct{}{}
	}
	if would, live := s.cat.wouldDelete("acme", 2, listed); would != 1 || live != 3 {
		t.Errorf("would delete %d of %d, want 1 of 3", would, live)
	}
}
