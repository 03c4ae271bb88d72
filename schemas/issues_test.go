package schemas

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestIssueSummaryCountsEverythingAndKeepsTheFirstRows(t *testing.T) {
	var s IssueSummary
	for row := int64(1000); row >= 1; row-- {
		s.Add(Issue{Row: row, Field: "gtin", Code: CodeGTINCheckDigit, Severity: SeverityWarning})
		if row%10 == 0 {
			s.Add(Issue{Row: row, Field: "price", Code: CodePriceUnparseable, Severity: SeverityError})
		}
	}
	var other IssueSummary
	other.Add(Issue{Row: 0, Field: "gtin", Code: CodeGTINCheckDigit, Severity: SeverityWarning})
	s.Merge(other)
	got := s.Sorted()
	if len(got) != 2 || got[0].Code != CodePriceUnparseable || got[0].Count != 100 || got[1].Count != 1001 {
		t.Fatalf("summary = %+v", got)
	}
	if !reflect.DeepEqual(got[1].Rows, []int64{0, 1, 2, 3, 4}) || !reflect.DeepEqual(got[0].Rows, []int64{10, 20, 30, 40, 50}) {
		t.Errorf("first rows = %v and %v", got[1].Rows, got[0].Rows)
	}
	if s.Total() != 1101 {
		t.Errorf("total = %d", s.Total())
	}
}

func TestStatusCountsWarningsAndSummarisesIssues(t *testing.T) {
	p := UploadProgress{Upload: UploadEvent{ID: "u", Partner: "p", Mode: ModeDelta, Compression: CompressionGzip, Charset: CharsetEUCKR}}
	var a, b NormaliseRecord
	a = NormaliseRecord{Read: 3, Accepted: 2, Rejected: 1, Warnings: 2}
	a.Issues.Add(Issue{Row: 1, Field: "gtin", Code: CodeGTINCheckDigit, Severity: SeverityWarning})
	a.Issues.Add(Issue{Row: 2, Field: "gtin", Code: CodeGTINCheckDigit, Severity: SeverityWarning})
	a.Issues.Add(Issue{Row: 3, Field: "title", Code: CodeMissingTitle, Severity: SeverityError})
	b = NormaliseRecord{Read: 1, Unchanged: 1, Warnings: 1}
	b.Issues.Add(Issue{Row: 1001, Field: "gtin", Code: CodeGTINCheckDigit, Severity: SeverityWarning})
	p.Normalise.Add(a)
	p.Normalise.Add(b)
	p.Index.Add(IndexRecord{Indexed: 1, Rejections: []Issue{{Row: 2, Field: "index", Code: CodeIndexRefused, Severity: SeverityError}}})
	s := p.Status()
	if c := s.Counts; c.Read != 4 || c.Accepted != 1 || c.Unchanged != 1 || c.Rejected != 2 || c.Warnings != 3 || c.Read != c.Accepted+c.Unchanged+c.Rejected {
		t.Errorf("counts = %+v", c)
	}
	want := IssueSummary{
		{Code: CodeIndexRefused, Field: "index", Severity: SeverityError, Count: 1, Rows: []int64{2}},
		{Code: CodeMissingTitle, Field: "title", Severity: SeverityError, Count: 1, Rows: []int64{3}},
		{Code: CodeGTINCheckDigit, Field: "gtin", Severity: SeverityWarning, Count: 3, Rows: []int64{1, 2, 1001}},
	}
	if !reflect.DeepEqual(s.IssueSummary, want) {
		t.Errorf("summary =\n%+v\nwant\n%+v", s.IssueSummary, want)
	}
	if s.Compression != CompressionGzip || s.Charset != CharsetEUCKR {
		t.Errorf("status does not say how the file was read: %q %q", s.Compression, s.Charset)
	}
	if empty := (UploadProgress{}).Status(); empty.IssueSummary == nil {
		t.Error("an upload without issues answers a null summary")
	}
}

// Merchant Center reads headers in any case, with or without the g:
// namespace, with spaces for underscores.
func TestGoogleMerchantHeadersAsMerchantCenterAcceptsThem(t *testing.T) {
	columns := []string{"g:ID", "Title", "g:price", "Image Link", "Additional_Image_Link", "AVAILABILITY", "g:gtin", "Product Type", "link"}
	rm := NewRowMapper(Mapping{Preset: PresetGoogleMerchant}, "shop", columns, batchTime)
	p, issues := rm.Map(RawRow{Row: 1, Values: []string{"T-1", "Tent", "99.00 USD", "https://img.example/1.jpg", "https://img.example/2.jpg",
		"out of stock", "4006381333931", "Camping > Tents", "https://shop.example/t-1"}})
	if len(issues) > 0 {
		t.Fatalf("issues: %+v", issues)
	}
	if p.SKU != "T-1" || p.Price != 9900 || len(p.ImageURLs) != 2 || p.Availability != OutOfStock || p.GTIN != "4006381333931" ||
		!reflect.DeepEqual(p.Category, []string{"Camping", "Tents"}) || p.URL != "https://shop.example/t-1" {
		t.Errorf("Map = %+v", p)
	}
	for in, want := range map[string]string{"g:price": "price", "Image Link": "image_link", " IMAGE-LINK ": "image_link", "shipping.price": "shipping.price"} {
		if got := ColumnKey(in); got != want {
			t.Errorf("ColumnKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNaverEPSummaryRowsUpdateOnlyWhatTheyCarry(t *testing.T) {
	columns := []string{"id", "title", "price_pc", "normal_price", "link", "image_link", "category_name1", "brand", "shipping", "class", "update_time"}
	rm := NewRowMapper(Mapping{Preset: PresetNaverEP}, "han", columns, batchTime)
	row := func(n int64, v ...string) RawRow { return RawRow{Row: n, Values: v} }

	full, issues := rm.Map(row(1, "100", "니트 가디건", "12900", "15900", "https://han.example/100", "https://img.example/100.jpg", "패션", "한샵", "0", "I", "2026-02-27 09:15:00"))
	if len(issues) > 0 || full.Price != 15900 || full.SalePrice == nil || *full.SalePrice != 12900 {
		t.Fatalf("I row: %+v %+v", full, issues)
	}
	if rm.Operation(row(2, "100", "", "", "", "", "", "", "", "", "U", "")) != OpUpdate {
		t.Fatal("class U is not an update")
	}
	if sku, del := rm.Deleted(row(3, "100", "", "", "", "", "", "", "", "", "D", "")); !del || sku != "100" {
		t.Fatal("class D is not a deletion")
	}

	// A U row with a new selling price only: the regular price, title and
	// everything else stay.
	upd, issues := rm.MapUpdate(row(4, "100", "", "11900", "", "", "", "", "", "2500", "U", "2026-02-28 08:00:00"), full)
	if len(issues) > 0 {
		t.Fatalf("U row issues: %+v", issues)
	}
	if upd.Title != "니트 가디건" || upd.Price != 15900 || upd.SalePrice == nil || *upd.SalePrice != 11900 || upd.URL != full.URL ||
		!reflect.DeepEqual(upd.ImageURLs, full.ImageURLs) || !reflect.DeepEqual(upd.Category, full.Category) || upd.Brand != "한샵" {
		t.Errorf("U row = %+v", upd)
	}
	if upd.Attributes["shipping"] != "2500" || !upd.UpdatedAt.Equal(time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("U row shipping %q, updated %v (want 08:00 Korea time)", upd.Attributes["shipping"], upd.UpdatedAt)
	}
	if full.Attributes["shipping"] != "0" {
		t.Error("MapUpdate changed the product it started from")
	}
	// Both prices: the sale ends when the selling price reaches the regular one.
	upd, _ = rm.MapUpdate(row(5, "100", "", "15900", "15900", "", "", "", "", "", "U", ""), full)
	if upd.Price != 15900 || upd.SalePrice != nil {
		t.Errorf("U row ending the sale: %d %v", upd.Price, upd.SalePrice)
	}
	// An unparseable price rejects the U row; the product stays as it was.
	if _, issues = rm.MapUpdate(row(6, "100", "", "abc", "", "", "", "", "", "", "U", ""), full); !HasError(issues) || issues[0].Code != CodePriceUnparseable {
		t.Errorf("U row with a bad price: %+v", issues)
	}
	// An operation no one knows is an error.
	if _, issues = rm.Map(row(7, "101", "x", "1000", "", "", "", "", "", "", "X", "")); !HasError(issues) || issues[0].Code != CodeOperationUnknown {
		t.Errorf("class X: %+v", issues)
	}
}

func TestMappingCheckColumns(t *testing.T) {
	m := Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}, "deleted": {"gone"}}, Defaults: map[string]string{"currency": "EUR"}}
	if err := m.CheckColumns([]string{"SKU", "Name", "Price"}); err != nil {
		t.Errorf("matching columns: %v", err)
	}
	err := m.CheckColumns([]string{"id", "name", "cost", "stock"})
	if !errors.Is(err, ErrColumnsMismatch) || !strings.Contains(err.Error(), `id is mapped to column "sku"`) ||
		!strings.Contains(err.Error(), `price is mapped to column "price"`) || !strings.Contains(err.Error(), `"cost"`) || strings.Contains(err.Error(), "title is") {
		t.Errorf("mismatching columns: %v", err)
	}
	// A deletion-only delta file needs the id alone.
	if err := m.CheckColumns([]string{"sku", "gone"}); err != nil {
		t.Errorf("deletions file: %v", err)
	}
	// So does a Naver summary EP, whose U rows carry a few fields.
	if err := (Mapping{Preset: PresetNaverEP}).CheckColumns([]string{"id", "price_pc", "class", "update_time"}); err != nil {
		t.Errorf("summary EP: %v", err)
	}
	if err := (Mapping{Preset: PresetNaverEP}).CheckColumns([]string{"id", "price_pc", "update_time"}); err == nil {
		t.Error("an EP without titles or classes passes")
	}
	// A default stands in for the column.
	m.Defaults["title"] = "Untitled"
	if err := m.CheckColumns([]string{"sku", "price"}); err != nil {
		t.Errorf("title with a default: %v", err)
	}
}

func TestMappingCharsetAndTimezone(t *testing.T) {
	base := Mapping{Fields: map[string]FieldSource{"id": {"a"}, "title": {"b"}, "price": {"c"}}}
	for _, ok := range []Mapping{
		{Fields: base.Fields, Charset: "CP949", Timezone: "Asia/Seoul"},
		{Fields: base.Fields, Charset: "windows-1252", Timezone: "+09:00"},
		{Fields: base.Fields, Charset: "utf-16le"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []Mapping{{Fields: base.Fields, Charset: "klingon"}, {Fields: base.Fields, Timezone: "Mars/Olympus"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if r := (Mapping{Preset: PresetNaverEP}).Resolve(); r.Timezone != "Asia/Seoul" {
		t.Errorf("naver_ep time zone %q", r.Timezone)
	}
	loc, err := parseTimezone("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := parseUpdatedAt("2026-07-01 09:00:00", loc); !ok || !got.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Korea time in July = %v (no daylight saving time)", got)
	}
	if got, ok := parseUpdatedAt("20260701090000", loc); !ok || got.Hour() != 0 {
		t.Errorf("compact Korea time = %v %v", got, ok)
	}
}
