package normalise

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
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
	s := newStage(nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	s.Products = &memoryLog{}
	return s
}

// memoryLog is the product log of a stage that runs without a bus: what
// step published, by sequence.
type memoryLog struct{ batches []*schemas.ProductBatch }

func (l *memoryLog) add(b *schemas.ProductBatch) uint64 {
	l.batches = append(l.batches, b)
	return uint64(len(l.batches))
}

func (l *memoryLog) BatchAt(_ context.Context, seq uint64) (*schemas.ProductBatch, error) {
	if seq == 0 || seq > uint64(len(l.batches)) {
		return nil, fmt.Errorf("no batch at %d", seq)
	}
	return l.batches[seq-1], nil
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
	return stepWith(s, rb, testMapping)
}

func stepWith(s *Stage, rb *schemas.RawBatch, m schemas.Mapping) (*schemas.ProductBatch, schemas.NormaliseRecord) {
	out, rec, pending, _, err := s.normalise(context.Background(), rb, m)
	if err != nil {
		panic(err)
	}
	at := s.Products.(*memoryLog).add(out)
	s.cat.commit(rb.Partner, rb.UploadSeq, pending, out.Seen, at)
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
	s.cat.apply(del, 99)
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
	for i, b := range log {
		rebuilt.cat.apply(b, uint64(i+1))
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

// Ingest marks the rows a later row of the same product replaces: they are
// counted once, as unchanged with a duplicate_id warning, and only the last
// row's change goes downstream, in whatever batch it is.
func TestSupersededRowsAreWarnedAndChangeNothing(t *testing.T) {
	s := newTestStage()
	first := batch(1, 0, []string{"A", "Kettle", "1000"}, []string{"B", "Toaster", "2000"}, []string{"A", "Kettle", "1100"})
	first.Superseded = []schemas.Supersession{{Row: 1, By: 3}, {Row: 2, By: 1001}}
	out, rec, _, issues, err := s.normalise(context.Background(), first, testMapping)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Read != 3 || rec.Accepted != 1 || rec.Unchanged != 2 || rec.Warnings != 2 || len(out.Changes) != 1 || out.Changes[0].Row != 3 {
		t.Fatalf("rec %+v, changes %+v", rec, out.Changes)
	}
	if len(issues) != 2 || issues[0].Code != schemas.CodeDuplicateID || issues[0].Severity != schemas.SeverityWarning || issues[0].SourceID != "A" ||
		!strings.Contains(issues[0].Reason, "row 3") || issues[1].Row != 2 || !strings.Contains(issues[1].Reason, "row 1001") {
		t.Errorf("issues %+v", issues)
	}
	if len(rec.Issues) != 1 || rec.Issues[0].Count != 2 {
		t.Errorf("summary %+v", rec.Issues)
	}
}

func TestWarnedRowsAreKeptAndEveryIssueIsListed(t *testing.T) {
	s := newTestStage()
	m := schemas.Mapping{Fields: map[string]schemas.FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}, "gtin": {"ean"}},
		Defaults: map[string]string{"currency": "KRW"}}
	rb := &schemas.RawBatch{Upload: "u", Partner: "acme", UploadSeq: 1, Columns: []string{"sku", "name", "price", "ean"},
		Rows: []schemas.RawRow{
			{Row: 1, Values: []string{"A", "Kettle", "1000", "4006381333932"}},
			{Row: 2, Values: []string{"B", "", "x", "123"}},
			{Row: 4, Values: []string{"C", "Mug", "500", "4006381333931"}},
		},
		Rejections: []schemas.Issue{{Row: 3, Code: schemas.CodeUnclosedQuote, Reason: "line 4: a quoted field starts here and is never closed"}},
	}
	out, rec, _, issues, err := s.normalise(context.Background(), rb, m)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Read != 4 || rec.Accepted != 2 || rec.Rejected != 2 || rec.Warnings != 1 || len(out.Changes) != 2 {
		t.Fatalf("rec %+v changes %d", rec, len(out.Changes))
	}
	if out.Changes[0].Product.GTIN != "" {
		t.Errorf("a GTIN with a wrong check digit was kept: %+v", out.Changes[0].Product)
	}
	var codes []string
	for _, i := range issues {
		codes = append(codes, fmt.Sprintf("%d:%s:%s", i.Row, i.Code, i.Severity))
	}
	want := []string{"3:unclosed_quote:error", "1:gtin_check_digit:warning", "2:missing_title:error", "2:price_unparseable:error", "2:gtin_length:warning"}
	if !reflect.DeepEqual(codes, want) {
		t.Errorf("issues = %v, want %v", codes, want)
	}
	if len(rec.Rejections) != 2 || rec.Rejections[1].Code != schemas.CodeMissingTitle {
		t.Errorf("rejected rows %+v: one entry per row, its first error", rec.Rejections)
	}
}

// A Naver summary EP's U row changes only what it carries: normalise reads
// the product's current version from the product log and sends the whole
// product on, so every sink gets a complete upsert.
func TestUpdateRowsChangeOnlyWhatTheyCarry(t *testing.T) {
	s := newTestStage()
	m := schemas.Mapping{Preset: schemas.PresetNaverEP}
	cols := []string{"id", "title", "price_pc", "normal_price", "brand", "class"}
	rb := &schemas.RawBatch{Upload: "u1", Partner: "han", UploadSeq: 1, Columns: cols, Rows: []schemas.RawRow{
		{Row: 1, Values: []string{"100", "니트 가디건", "12900", "15900", "한샵", "I"}},
		{Row: 2, Values: []string{"200", "양말", "3000", "", "한샵", "I"}},
	}}
	stepWith(s, rb, m)
	// Another upload: U with a new selling price, U for a product never
	// seen without a title, and D.
	rb = &schemas.RawBatch{Upload: "u2", Partner: "han", UploadSeq: 2, Columns: cols, Rows: []schemas.RawRow{
		{Row: 1, Values: []string{"100", "", "11900", "", "", "U"}},
		{Row: 2, Values: []string{"300", "", "5000", "", "", "U"}},
		{Row: 3, Values: []string{"200", "", "", "", "", "D"}},
	}}
	out, rec := stepWith(s, rb, m)
	if rec.Accepted != 2 || rec.Rejected != 1 || len(out.Changes) != 2 {
		t.Fatalf("rec %+v changes %+v", rec, out.Changes)
	}
	up := out.Changes[0]
	if up.Kind != schemas.ChangeUpsert || up.Product.Title != "니트 가디건" || up.Product.Brand != "한샵" || up.Product.Price != 15900 ||
		*up.Product.SalePrice != 11900 || up.Price == nil || up.Price.Old != 12900 || up.Price.New != 11900 {
		t.Errorf("U row became %+v (price change %+v)", up.Product, up.Price)
	}
	if out.Changes[1].Kind != schemas.ChangeDelete || out.Changes[1].ID != "han:200" {
		t.Errorf("D row became %+v", out.Changes[1])
	}
	// The next update starts from the merged version.
	rb = &schemas.RawBatch{Upload: "u3", Partner: "han", UploadSeq: 3, Columns: cols, Rows: []schemas.RawRow{
		{Row: 1, Values: []string{"100", "니트 가디건 (봄)", "", "", "", "U"}},
	}}
	out, _ = stepWith(s, rb, m)
	if p := out.Changes[0].Product; p.Title != "니트 가디건 (봄)" || *p.SalePrice != 11900 || p.Price != 15900 {
		t.Errorf("second update = %+v", p)
	}
}
