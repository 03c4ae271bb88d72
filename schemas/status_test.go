package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNormaliseTotalsKeepTheLowestRejections(t *testing.T) {
	var n NormaliseTotals
	for b := 3; b >= 0; b-- {
		var r NormaliseRecord
		for i := 0; i < 60; i++ {
			r.Rejections = append(r.Rejections, Issue{Row: int64(b*1000 + i)})
		}
		r.Rejected = 60
		n.Add(r)
	}
	if n.Rejected != 240 || len(n.Rejections) != MaxReportedRejections || n.Rejections[0].Row != 0 || n.Rejections[99].Row != 1039 {
		t.Errorf("rejected %d, kept %d from row %d to %d", n.Rejected, len(n.Rejections), n.Rejections[0].Row, n.Rejections[len(n.Rejections)-1].Row)
	}
}

func TestUploadProgressStatus(t *testing.T) {
	base := func(mode string) UploadProgress {
		return UploadProgress{
			Upload: UploadEvent{ID: "u1", Partner: "acme", Mode: mode},
		}
	}
	p := base(ModeFull)
	if s := p.Status(); s.State != StateReceived || s.Rejections == nil {
		t.Errorf("nothing recorded: %s, rejections %v", s.State, s.Rejections)
	}
	p.Normalise.Add(NormaliseRecord{Read: 3, Accepted: 2, Rejected: 1, Rejections: []Issue{{Row: 1003, Field: "price"}}})
	p.Normalise.Add(NormaliseRecord{Read: 2, Unchanged: 1, Rejected: 1, Rejections: []Issue{{Row: 2, Field: "title"}}})
	s := p.Status()
	if s.State != StateProcessing || s.Counts.Read != 5 || s.Counts.Accepted != 2 || s.Counts.Unchanged != 1 || s.Counts.Rejected != 2 {
		t.Errorf("two batches: %s %+v", s.State, s.Counts)
	}
	if len(s.Rejections) != 2 || s.Rejections[0].Row != 2 || s.Rejections[1].Row != 1003 {
		t.Errorf("rejections not in row order: %+v", s.Rejections)
	}
	p.Ingest = &IngestRecord{Rows: 5, Batches: 2}
	p.Index.Add(IndexRecord{Indexed: 0})
	p.Index.Add(IndexRecord{Indexed: 2})
	if s := p.Status(); s.State != StateProcessing || s.Normalised {
		t.Errorf("full upload without its deletion record must not be done: %s normalised=%v", s.State, s.Normalised)
	}
	p.Deletes = &DeleteRecord{Batches: 1, Deleted: 4}
	if s := p.Status(); s.State != StateProcessing || !s.Normalised {
		t.Errorf("deletion batch not yet indexed: %s normalised=%v", s.State, s.Normalised)
	}
	p.Index.Add(IndexRecord{Deleted: 4})
	s = p.Status()
	if s.State != StateDone || s.Counts.Indexed != 2 || s.Counts.Deleted != 4 {
		t.Errorf("all applied: %s %+v", s.State, s.Counts)
	}
	p.Failures = []FailureRecord{{Stage: "index", Batch: 1, Error: "disk full"}}
	if s := p.Status(); s.State != StateFailed || !strings.Contains(s.Error, "disk full") || !strings.Contains(s.Error, "index") {
		t.Errorf("dead-lettered batch: %s %q", s.State, s.Error)
	}

	d := base(ModeDelta)
	d.Ingest = &IngestRecord{Rows: 1, Batches: 1}
	d.Normalise.Add(NormaliseRecord{Read: 1, Accepted: 1})
	d.Index.Add(IndexRecord{Indexed: 1})
	if s := d.Status(); s.State != StateDone {
		t.Errorf("delta upload needs no deletion record: %s", s.State)
	}
	f := base(ModeDelta)
	f.Ingest = &IngestRecord{Rows: 10, Error: "the file is damaged or truncated"}
	if s := f.Status(); s.State != StateFailed || s.Error == "" {
		t.Errorf("ingest failure: %s %q", s.State, s.Error)
	}
}

func TestIndexRejectionsMoveRowsFromAcceptedToRejected(t *testing.T) {
	p := UploadProgress{Upload: UploadEvent{ID: "u1", Partner: "acme", Mode: ModeDelta}}
	p.Ingest = &IngestRecord{Batches: 1}
	p.Normalise.Add(NormaliseRecord{Read: 4, Accepted: 3, Rejected: 1, Rejections: []Issue{{Row: 9, Field: "price"}}})
	p.Index.Add(IndexRecord{Indexed: 2, Rejections: []Issue{{Row: 4, SourceID: "sku-4", Field: "index", Reason: "mapper_parsing_exception: failed to parse field [price]"}}})
	s := p.Status()
	c := s.Counts
	if c.Read != 4 || c.Accepted != 2 || c.Rejected != 2 || c.Indexed != 2 || c.Read != c.Accepted+c.Unchanged+c.Rejected {
		t.Errorf("counts %+v", c)
	}
	if len(s.Rejections) != 2 || s.Rejections[0].Row != 4 || s.Rejections[0].Field != "index" || s.Rejections[1].Row != 9 {
		t.Errorf("rejections %+v", s.Rejections)
	}
	if s.State != StateDone {
		t.Errorf("state %s, want done", s.State)
	}
}

func TestCanonicalSearchIgnoresFilterOrderAndLimit(t *testing.T) {
	min := int64(100)
	a := SearchRequest{Text: "  earbuds ", Brands: []string{"Sonic", "Acme", "Sonic"}, Availability: []Availability{OutOfStock, InStock}, MinPrice: &min, Limit: 5}
	b := SearchRequest{Text: "earbuds", Brands: []string{"Acme", "Sonic"}, Availability: []Availability{InStock, OutOfStock}, MinPrice: &min, Limit: 50}
	ca, cb := a.Canonical(), b.Canonical()
	if ca.Key() != cb.Key() || ca.Sort != SortRelevance || strings.Join(ca.Brands, ",") != "Acme,Sonic" {
		t.Errorf("canonical %+v / %+v", ca, cb)
	}
	if (SearchRequest{}).Canonical().Sort != SortNewest {
		t.Error("no text: the default sort is newest")
	}
	b.Partners = []string{"acme"}
	if b.Canonical().Key() == ca.Key() {
		t.Error("another filter, the same key")
	}
	for limit, want := range map[int]int{0: SearchDefaultLimit, -3: SearchDefaultLimit, 7: 7, 500: SearchMaxLimit} {
		if got := (SearchRequest{Limit: limit}).PageLimit(); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", limit, got, want)
		}
	}
}

// The currency is part of a search that compares prices, and of no other:
// a search without a price filter or sort finds every currency, whatever
// it names, and keeps the key it had before searches had a currency.
func TestCanonicalSearchCurrencyOnlyWhenComparingPrices(t *testing.T) {
	t.Parallel()
	min := int64(100)
	plain := SearchRequest{Text: "kettle"}
	named := SearchRequest{Text: "kettle", Currency: "USD"}
	if named.ComparesPrices() || named.Canonical().Currency != "" || named.Canonical().Key() != plain.Canonical().Key() {
		t.Errorf("a search without price filter or sort: canonical %+v", named.Canonical())
	}
	if b, _ := json.Marshal(plain.Canonical()); strings.Contains(string(b), "Currency") {
		t.Errorf("canonical JSON of a search without prices names a currency: %s", b)
	}
	for _, r := range []SearchRequest{{MinPrice: &min}, {MaxPrice: &min}, {Sort: SortPriceAsc}, {Sort: SortPriceDesc}} {
		if !r.ComparesPrices() {
			t.Errorf("%+v does not compare prices", r)
		}
		krw, usd, lower := r, r, r
		krw.Currency, usd.Currency, lower.Currency = "KRW", "USD", " usd"
		if krw.Canonical().Key() == usd.Canonical().Key() {
			t.Errorf("%+v: KRW and USD searches share a key", r)
		}
		if lower.Canonical().Currency != "USD" || lower.Canonical().Key() != usd.Canonical().Key() {
			t.Errorf("%+v: \" usd\" is not the search for USD: %+v", r, lower.Canonical())
		}
	}
	if (SearchRequest{Sort: SortNewest}).ComparesPrices() || (SearchRequest{Sort: SortRelevance}).ComparesPrices() {
		t.Error("newest or relevance compares prices")
	}
}

func TestHeldUploadStatus(t *testing.T) {
	p := UploadProgress{Upload: UploadEvent{ID: "u1", Partner: "acme", Mode: ModeFull}}
	p.Normalise.Add(NormaliseRecord{Read: 10, Accepted: 10})
	p.Ingest = &IngestRecord{Rows: 10, Batches: 1}
	p.Hold = &HoldRecord{WouldDelete: 90, Live: 100, MaxDeletePercent: 30}
	s := p.Status()
	if s.State != StateHeld || s.Normalised || s.Hold == nil || s.Hold.WouldDelete != 90 || s.Hold.Percent != 90 || s.Hold.MaxDeletePercent != 30 {
		t.Fatalf("held upload: %s %+v", s.State, s.Hold)
	}
	p.Decision = &DecisionRecord{Decision: DecisionCancel}
	if s := p.Status(); s.State != StateCancelled || s.Hold.Decision != DecisionCancel {
		t.Errorf("cancelled upload: %s %+v", s.State, s.Hold)
	}
	p.Decision = &DecisionRecord{Decision: DecisionConfirm}
	if s := p.Status(); s.State != StateProcessing || s.Normalised {
		t.Errorf("confirmed, not yet applied: %s normalised=%v", s.State, s.Normalised)
	}
	p.Deletes = &DeleteRecord{Batches: 1, Deleted: 90}
	p.Index.Add(IndexRecord{Indexed: 10})
	p.Index.Add(IndexRecord{Deleted: 90})
	if s := p.Status(); s.State != StateDone || s.Counts.Deleted != 90 || s.Hold.Decision != DecisionConfirm {
		t.Errorf("confirmed and applied: %s %+v %+v", s.State, s.Counts, s.Hold)
	}
}

func TestExceeds(t *testing.T) {
	for _, c := range []struct {
		would, live int64
		max         int
		want        bool
	}{{30, 100, 30, false}, {31, 100, 30, true}, {1, 0, 30, false}, {100, 100, 100, false}, {1, 100, 0, true}, {0, 100, 0, false}} {
		if got := Exceeds(c.would, c.live, c.max); got != c.want {
			t.Errorf("Exceeds(%d, %d, %d) = %v", c.would, c.live, c.max, got)
		}
	}
}
