package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var batchTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// germanMapping is the custom mapping of a partner whose file has German headers.
func germanMapping(t *testing.T) Mapping {
	t.Helper()
	var m Mapping
	doc := `{"fields": {"id": "Artikelnummer", "title": "Bezeichnung", "price": "Preis", "currency": "Waehrung", "brand": "Marke", "category": "Kategorie", "url": "URL"}, "defaults": {"currency": "EUR"}}`
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var germanColumns = []string{"Artikelnummer", "Bezeichnung", "Preis", "Waehrung", "Marke", "Kategorie", "URL"}

func TestRowMapperGermanMapping(t *testing.T) {
	rm := NewRowMapper(germanMapping(t), "shop-de", germanColumns, batchTime)
	got, rej := firstError(rm, RawRow{Row: 7, Values: []string{
		"A-1001", "  Kaffeemaschine   Deluxe\t 2000 ", "1.299,00", "", "Brühwerk", "Haushalt > Küche > Kaffee", "https://shop.example.de/a-1001",
	}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	want := Product{
		ID:           "shop-de:A-1001",
		Partner:      "shop-de",
		SKU:          "A-1001",
		Title:        "Kaffeemaschine Deluxe 2000",
		Brand:        "Brühwerk",
		Category:     []string{"Haushalt", "Küche", "Kaffee"},
		Price:        129900,
		Currency:     "EUR",
		Availability: InStock,
		URL:          "https://shop.example.de/a-1001",
		UpdatedAt:    batchTime,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Map =\n%+v\nwant\n%+v", got, want)
	}

	// The currency column, when filled, beats the default.
	got, rej = firstError(rm, RawRow{Row: 8, Values: []string{"A-1002", "Tasse", "12,50", "CHF", "", "", ""}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	if got.Price != 1250 || got.Currency != "CHF" || got.Brand != "" || got.Category != nil || got.URL != "" {
		t.Errorf("Map = %+v, want 1250 CHF and no brand, category or url", got)
	}
}

func TestRowMapperIssues(t *testing.T) {
	m := Mapping{
		Fields: map[string]FieldSource{
			"id": {"sku"}, "title": {"name"}, "price": {"price"}, "sale_price": {"sale"}, "currency": {"cur"},
			"availability": {"stock"}, "url": {"link"}, "gtin": {"ean"}, "image_urls": {"img"}, "updated_at": {"at"},
		},
		Defaults: map[string]string{"currency": "EUR"},
	}
	columns := []string{"sku", "name", "price", "sale", "cur", "stock", "link", "ean", "img", "at"}
	ok := []string{"S1", "Mug", "15.00", "", "", "", "", "", "", ""}
	with := func(i int, v string) []string {
		row := append([]string(nil), ok...)
		row[i] = v
		return row
	}
	long := strings.Repeat("x", 257)
	e, w := SeverityError, SeverityWarning
	tests := []struct {
		name     string
		values   []string
		field    string
		sourceID string
		code     string
		severity string
		reason   string
	}{
		{"empty id", with(0, " "), "id", "", CodeMissingID, e, `id is empty (column "sku")`},
		{"long id", with(0, long), "id", long[:MaxSKUBytes] + "…", CodeIDTooLong, e, "id is 257 bytes long; at most 256 are allowed"},
		{"empty title", with(1, ""), "title", "S1", CodeMissingTitle, e, `title is empty (column "name")`},
		{"long title", with(1, strings.Repeat("가", 501)), "title", "S1", CodeTitleTooLong, e, "title has 501 characters; at most 500 are allowed"},
		{"price not a number", with(2, "abc"), "price", "S1", CodePriceUnparseable, e, `price "abc" is not a number`},
		{"price empty", with(2, ""), "price", "S1", CodeMissingPrice, e, `price is empty (column "price")`},
		{"price negative", with(2, "-3"), "price", "S1", CodePriceUnparseable, e, `price "-3" is negative`},
		{"price zero", with(2, "0,00"), "price", "S1", CodePriceZero, e, `price "0,00" is zero`},
		{"price too precise", with(2, "1.2345"), "price", "S1", CodePriceUnparseable, e, `price "1.2345" has 4 decimal places but EUR has 2`},
		{"price in another currency", with(4, "USD"), "", "", "", "", ""}, // plain "15.00" takes the column's USD
		{"price and currency column disagree", []string{"S1", "Mug", "15.00 GBP", "", "USD", "", "", "", "", ""}, "price", "S1", CodePriceCurrencyMismatch, e, `price "15.00 GBP" is in GBP but the currency column says USD`},
		{"unknown currency", with(4, "XYZ"), "currency", "S1", CodeCurrencyUnknown, e, `currency "XYZ" is not an ISO 4217 code`},
		{"sale above price", with(3, "20.00"), "sale_price", "S1", CodeSalePriceAbovePrice, w, "sale price 20.00 is higher than price 15.00; it is dropped"},
		{"sale not a number", with(3, "n/a"), "sale_price", "S1", CodeSalePriceUnparseable, w, `sale_price "n/a" is not a number; it is dropped`},
		{"sale in another currency", with(3, "$10"), "sale_price", "S1", CodeSalePriceCurrency, w, `sale_price "$10" is in USD but price is in EUR; it is dropped`},
		{"availability", with(5, "maybe"), "availability", "S1", CodeAvailabilityUnknown, w, `availability "maybe" is not one of in stock / out of stock / preorder / backorder; it is ignored`},
		{"url scheme", with(6, "ftp://x"), "url", "S1", CodeURLInvalid, w, `url "ftp://x" is not an http(s) URL; it is dropped`},
		{"url relative", with(6, "/p/1"), "url", "S1", CodeURLInvalid, w, `url "/p/1" is not an http(s) URL; it is dropped`},
		{"gtin length", with(7, "123"), "gtin", "S1", CodeGTINLength, w, `gtin "123" must have 8, 12, 13 or 14 digits; it is dropped`},
		{"gtin letters", with(7, "40063813339X1"), "gtin", "S1", CodeGTINLength, w, `gtin "40063813339X1" must have 8, 12, 13 or 14 digits; it is dropped`},
		{"gtin check digit", with(7, "4006381333932"), "gtin", "S1", CodeGTINCheckDigit, w, `gtin "4006381333932" has check digit 2 but its digits give 1; it is dropped`},
		{"image link", with(8, "https://img.example/1.jpg, /2.jpg"), "image_urls", "S1", CodeImageURLInvalid, w, `1 image link(s) not an http(s) URL and dropped: "/2.jpg"`},
		{"update time", with(9, "yesterday"), "updated_at", "S1", CodeUpdatedAtUnparseable, w, `updated_at "yesterday" is not a date and time; the upload's time is used`},
	}
	rm := NewRowMapper(m, "p", columns, batchTime)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, issues := rm.Map(RawRow{Row: 42, Values: tt.values})
			if tt.code == "" {
				if len(issues) > 0 {
					t.Fatalf("issues: %+v", issues)
				}
				if p.Currency != "USD" || p.Price != 1500 {
					t.Errorf("Map = %d %s, want 1500 USD", p.Price, p.Currency)
				}
				return
			}
			want := Issue{Row: 42, SourceID: tt.sourceID, Field: tt.field, Code: tt.code, Severity: tt.severity, Reason: tt.reason}
			if len(issues) != 1 || issues[0] != want {
				t.Fatalf("issues =\n%+v\nwant\n%+v", issues, want)
			}
			if tt.severity == SeverityError {
				if p.ID != "" {
					t.Errorf("a row with an error became %+v", p)
				}
				return
			}
			// A warning keeps the row with the field dropped.
			if p.ID != "p:S1" || p.Price != 1500 || p.SalePrice != nil || p.GTIN != "" || p.URL != "" || p.Availability != InStock || !p.UpdatedAt.Equal(batchTime) {
				t.Errorf("warned row = %+v", p)
			}
			if tt.field == "image_urls" && !reflect.DeepEqual(p.ImageURLs, []string{"https://img.example/1.jpg"}) {
				t.Errorf("image links = %q, want the valid one kept", p.ImageURLs)
			}
		})
	}

	// Every independent problem of a row is told at once, errors and warnings.
	_, issues := rm.Map(RawRow{Row: 7, Values: []string{"S2", "", "abc", "", "", "maybe", "", "123", "", ""}})
	var codes []string
	for _, i := range issues {
		codes = append(codes, i.Code)
	}
	if want := []string{CodeMissingTitle, CodePriceUnparseable, CodeAvailabilityUnknown, CodeGTINLength}; !reflect.DeepEqual(codes, want) {
		t.Errorf("codes of a row with four problems = %v, want %v", codes, want)
	}
	// A price of a megabyte does not make a reason of a megabyte.
	_, issues = rm.Map(RawRow{Row: 8, Values: with(2, strings.Repeat("9x", 1<<19))})
	if len(issues) != 1 || len(issues[0].Reason) > 300 {
		t.Errorf("reason for a huge price is %d bytes", len(issues[0].Reason))
	}
}

func TestIssueCodesAreDocumentedOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range IssueCodes() {
		if seen[c.Code] || c.Meaning == "" || (c.Severity != SeverityError && c.Severity != SeverityWarning) {
			t.Errorf("code %+v is repeated or incomplete", c)
		}
		seen[c.Code] = true
	}
	if len(seen) < 30 {
		t.Errorf("only %d codes documented", len(seen))
	}
}

func TestRowMapperMissingColumns(t *testing.T) {
	m := germanMapping(t)
	// A file without the price column: every row says which column is missing.
	rm := NewRowMapper(m, "shop-de", []string{"Artikelnummer", "Bezeichnung"}, batchTime)
	_, rej := firstError(rm, RawRow{Row: 1, Values: []string{"A-1", "Tasse"}})
	if rej == nil || rej.Field != "price" || rej.Reason != `column "Preis" (mapped to price) is not in the file` || rej.SourceID != "A-1" {
		t.Errorf("rejection = %+v", rej)
	}
	// Optional columns may be absent: brand, category, url simply stay empty.
	rm = NewRowMapper(m, "shop-de", []string{"Artikelnummer", "Bezeichnung", "Preis"}, batchTime)
	p, rej := firstError(rm, RawRow{Row: 1, Values: []string{"A-1", "Tasse", "4,50"}})
	if rej != nil || p.Price != 450 || p.Currency != "EUR" {
		t.Errorf("Map = %+v, %+v", p, rej)
	}
	// A short row (missing trailing values) reads as empty values.
	_, rej = firstError(rm, RawRow{Row: 2, Values: []string{"A-2"}})
	if rej == nil || rej.Reason != `title is empty (column "Bezeichnung")` {
		t.Errorf("rejection = %+v", rej)
	}
	// Several fallback columns, none in the file.
	rm = NewRowMapper(Mapping{Fields: map[string]FieldSource{"id": {"sku", "id"}}}, "p", []string{"x"}, batchTime)
	if _, rej = firstError(rm, RawRow{Values: []string{"1"}}); rej == nil || rej.Reason != `columns "sku", "id" (mapped to id) are not in the file` {
		t.Errorf("rejection = %+v", rej)
	}
	// An unmapped required field (an unvalidated mapping).
	rm = NewRowMapper(Mapping{Fields: map[string]FieldSource{"id": {"sku"}}}, "p", []string{"sku"}, batchTime)
	if _, rej = firstError(rm, RawRow{Values: []string{"1"}}); rej == nil || rej.Field != "title" || rej.Reason != "title is not mapped to a column" {
		t.Errorf("rejection = %+v", rej)
	}
}

func TestRowMapperHeaderMatching(t *testing.T) {
	m := Mapping{Fields: map[string]FieldSource{"id": {"id"}, "title": {"Title"}, "price": {"price"}}, Defaults: map[string]string{"currency": "USD"}}
	// A BOM before the first header, stray spaces, and a different letter case.
	rm := NewRowMapper(m, "p", []string{"\ufeffid", " TITLE ", "Price"}, batchTime)
	p, rej := firstError(rm, RawRow{Values: []string{"\ufeff7", "Lamp", "$9.50"}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	if p.SKU != "7" || p.Title != "Lamp" || p.Price != 950 || p.Currency != "USD" {
		t.Errorf("Map = %+v", p)
	}
}

func TestRowMapperPrices(t *testing.T) {
	m := Mapping{
		Fields:   map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}, "sale_price": {"s"}},
		Defaults: map[string]string{"currency": "KRW"},
	}
	rm := NewRowMapper(m, "p", []string{"id", "t", "p", "s"}, batchTime)
	tests := []struct {
		price, sale string
		wantPrice   int64
		wantSale    int64 // 0: none
		currency    string
	}{
		{"15000", "12,000원", 15000, 12000, "KRW"},
		{"15000", "", 15000, 0, "KRW"},
		{"15000", "0", 15000, 0, "KRW"},     // zero means no sale
		{"15000", "15000", 15000, 0, "KRW"}, // a sale at full price is no sale
		{"$20.00", "15", 2000, 1500, "USD"}, // the sale price follows the price's currency
	}
	for _, tt := range tests {
		p, rej := firstError(rm, RawRow{Values: []string{"1", "x", tt.price, tt.sale}})
		if rej != nil {
			t.Errorf("%q/%q rejected: %+v", tt.price, tt.sale, rej)
			continue
		}
		var sale int64
		if p.SalePrice != nil {
			sale = *p.SalePrice
		}
		if p.Price != tt.wantPrice || sale != tt.wantSale || p.Currency != tt.currency {
			t.Errorf("%q/%q: price %d sale %d %s, want %d %d %s", tt.price, tt.sale, p.Price, sale, p.Currency, tt.wantPrice, tt.wantSale, tt.currency)
		}
	}
	p, issues := rm.Map(RawRow{Values: []string{"1", "x", "15000", "20000"}})
	if len(issues) != 1 || issues[0].Reason != "sale price 20000 is higher than price 15000; it is dropped" || p.Price != 15000 || p.SalePrice != nil {
		t.Errorf("sale above the price: %+v, issues %+v", p, issues)
	}
}

func TestRowMapperListPrice(t *testing.T) {
	m := Mapping{
		Fields:   map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}, "list_price": {"l"}},
		Defaults: map[string]string{"currency": "KRW"},
	}
	rm := NewRowMapper(m, "p", []string{"id", "t", "p", "l"}, batchTime)
	tests := []struct {
		price, list string
		wantPrice   int64
		wantSale    int64
	}{
		{"12900", "15900", 15900, 12900}, // discounted: the list price is the price
		{"12900", "12900", 12900, 0},
		{"12900", "9900", 12900, 0}, // a lower list price is no discount
		{"12900", "", 12900, 0},
	}
	for _, tt := range tests {
		p, rej := firstError(rm, RawRow{Values: []string{"1", "x", tt.price, tt.list}})
		if rej != nil {
			t.Fatalf("rejected: %+v", rej)
		}
		var sale int64
		if p.SalePrice != nil {
			sale = *p.SalePrice
		}
		if p.Price != tt.wantPrice || sale != tt.wantSale {
			t.Errorf("price %q list %q: got %d/%d, want %d/%d", tt.price, tt.list, p.Price, sale, tt.wantPrice, tt.wantSale)
		}
	}
}

func TestRowMapperUpdatedAtAndAttributes(t *testing.T) {
	m := Mapping{
		Fields:     map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}, "updated_at": {"u"}},
		Defaults:   map[string]string{"currency": "EUR"},
		Attributes: map[string]string{"color": "Farbe", "material": "Material", "absent": "nope"},
	}
	rm := NewRowMapper(m, "p", []string{"id", "t", "p", "u", "Farbe", "Material"}, batchTime)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2025-12-24T18:30:00+09:00", time.Date(2025, 12, 24, 9, 30, 0, 0, time.UTC)},
		{"2025-12-24T18:30:00.123Z", time.Date(2025, 12, 24, 18, 30, 0, 123e6, time.UTC)},
		{"2025-12-24 18:30:00", time.Date(2025, 12, 24, 18, 30, 0, 0, time.UTC)},
		{"2025-12-24", time.Date(2025, 12, 24, 0, 0, 0, 0, time.UTC)},
		{"yesterday", batchTime},
		{"", batchTime},
	}
	for _, tt := range tests {
		p, rej := firstError(rm, RawRow{Values: []string{"1", "x", "1", tt.in, "rot", ""}})
		if rej != nil {
			t.Fatalf("rejected: %+v", rej)
		}
		if !p.UpdatedAt.Equal(tt.want) {
			t.Errorf("updated_at %q = %v, want %v", tt.in, p.UpdatedAt, tt.want)
		}
		if want := map[string]string{"color": "rot"}; !reflect.DeepEqual(p.Attributes, want) {
			t.Errorf("attributes = %v, want %v", p.Attributes, want)
		}
	}
	p, _ := firstError(rm, RawRow{Values: []string{"1", "x", "1"}})
	if p.Attributes != nil {
		t.Errorf("attributes = %v, want nil when every attribute column is empty", p.Attributes)
	}
}

func TestRowMapperDefaults(t *testing.T) {
	m := Mapping{
		Fields: map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}, "availability": {"a"}, "category": {"c"}, "image_url": {"i"}},
		Defaults: map[string]string{
			"currency": "JPY", "availability": "preorder", "category": "Books > Comics",
			"image_url": "https://cdn.example.jp/placeholder.png", "brand": "Acme",
		},
	}
	rm := NewRowMapper(m, "p", []string{"id", "t", "p", "a", "c", "i"}, batchTime)
	p, rej := firstError(rm, RawRow{Values: []string{"1", "x", "500", "", "", ""}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	if p.Currency != "JPY" || p.Price != 500 || p.Availability != Preorder || p.Brand != "Acme" ||
		!reflect.DeepEqual(p.Category, []string{"Books", "Comics"}) ||
		!reflect.DeepEqual(p.ImageURLs, []string{"https://cdn.example.jp/placeholder.png"}) {
		t.Errorf("Map = %+v", p)
	}
	p, _ = firstError(rm, RawRow{Values: []string{"1", "x", "500", "sold out", "Manga", "https://cdn.example.jp/1.png"}})
	if p.Availability != OutOfStock || !reflect.DeepEqual(p.Category, []string{"Manga"}) ||
		!reflect.DeepEqual(p.ImageURLs, []string{"https://cdn.example.jp/1.png"}) {
		t.Errorf("Map = %+v", p)
	}

	// Without an availability default an empty value means in stock.
	rm = NewRowMapper(Mapping{Fields: map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}}}, "p", []string{"id", "t", "p"}, batchTime)
	if p, rej = firstError(rm, RawRow{Values: []string{"1", "x", "15 USD"}}); rej != nil || p.Availability != InStock {
		t.Errorf("Map = %+v, %+v", p, rej)
	}
	// Without a currency anywhere the price cannot be read.
	if _, rej = firstError(rm, RawRow{Values: []string{"1", "x", "15"}}); rej == nil || rej.Field != "price" || !strings.Contains(rej.Reason, "no default currency") {
		t.Errorf("rejection = %+v", rej)
	}
}

func TestParseAvailability(t *testing.T) {
	tests := map[Availability][]string{
		InStock: {"in stock", "In Stock", "in_stock", "INSTOCK", "available", "Y", "yes", "true", "1",
			"재고있음", "재고 있음", "판매중", "있음", "https://schema.org/InStock", "http://schema.org/LimitedAvailability"},
		OutOfStock: {"out of stock", "out_of_stock", "Out-Of-Stock", "N", "no", "false", "0", "sold out", "SOLD_OUT",
			"품절", "재고없음", "없음", "https://schema.org/OutOfStock", "schema.org/Discontinued"},
		Preorder:  {"preorder", "pre-order", "Pre Order", "예약판매", "예약", "https://schema.org/PreOrder"},
		Backorder: {"backorder", "back order", "Back-Order", "https://schema.org/BackOrder"},
	}
	for want, inputs := range tests {
		for _, in := range inputs {
			if got, ok := ParseAvailability(in); !ok || got != want {
				t.Errorf("ParseAvailability(%q) = %q, %v; want %q", in, got, ok, want)
			}
		}
	}
	for _, in := range []string{"maybe", "", "2", "in stock soon", strings.Repeat("x", 40), "https://schema.org/Maybe"} {
		if got, ok := ParseAvailability(in); ok {
			t.Errorf("ParseAvailability(%q) = %q, want not recognised", in, got)
		}
	}
}

func TestSplitCategory(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"A > B > C", []string{"A", "B", "C"}},
		{"A>B>C", []string{"A", "B", "C"}},
		{"A / B / C", []string{"A", "B", "C"}},
		{"T-Shirts/Tops", []string{"T-Shirts/Tops"}},
		{"Men > T-Shirts / Tops", []string{"Men", "T-Shirts / Tops"}},
		{"A|B|C", []string{"A", "B", "C"}},
		{" A >  > B > ", []string{"A", "B"}},
		{"Home & Garden", []string{"Home & Garden"}},
		{">", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitCategory(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCategory(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCategoryFromSeveralColumns(t *testing.T) {
	m := Mapping{
		Fields:   map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}, "category": {"c1", "c2", "c3", "c4"}},
		Defaults: map[string]string{"currency": "KRW"},
	}
	// c4 is not in this file; that is fine for levels.
	rm := NewRowMapper(m, "p", []string{"id", "t", "p", "c1", "c2", "c3"}, batchTime)
	p, rej := firstError(rm, RawRow{Values: []string{"1", "x", "1000", " 패션의류 ", "", "여성의류"}})
	if rej != nil {
		t.Fatal(rej)
	}
	if want := []string{"패션의류", "여성의류"}; !reflect.DeepEqual(p.Category, want) {
		t.Errorf("category = %q, want %q", p.Category, want)
	}
	// A level holding '>' stays one level: each column is one level.
	p, _ = firstError(rm, RawRow{Values: []string{"1", "x", "1000", "A > B", "C"}})
	if want := []string{"A > B", "C"}; !reflect.DeepEqual(p.Category, want) {
		t.Errorf("category = %q, want %q", p.Category, want)
	}
}

func TestAppendImageURLs(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"https://a/1.jpg"}, []string{"https://a/1.jpg"}},
		{[]string{"https://a/1.jpg,https://a/2.jpg"}, []string{"https://a/1.jpg", "https://a/2.jpg"}},
		{[]string{"https://a/1.jpg|https://a/2.jpg\nhttps://a/3.jpg https://a/4.jpg"},
			[]string{"https://a/1.jpg", "https://a/2.jpg", "https://a/3.jpg", "https://a/4.jpg"}},
		{[]string{"https://a/1.jpg", "https://a/2.jpg, https://a/1.jpg"}, []string{"https://a/1.jpg", "https://a/2.jpg"}},
		{[]string{"ftp://a/1.jpg | /rel.jpg | HTTP://A/2.JPG | data:image/png;base64,xyz"}, []string{"HTTP://A/2.JPG"}},
		{[]string{"", " , "}, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range tt.in {
			got, _ = appendImageURLs(got, nil, s)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("appendImageURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckGTIN(t *testing.T) {
	valid := []string{
		"4006381333931",  // EAN-13
		"036000291452",   // UPC-A
		"73513537",       // EAN-8
		"00036000291452", // GTIN-14, the UPC-A padded
		"9780306406157",  // ISBN-13
	}
	for _, s := range valid {
		if _, err := checkGTIN(s); err != nil {
			t.Errorf("checkGTIN(%q): %v", s, err)
		}
	}
	invalid := []string{"4006381333932", "036000291453", "73513536", "123", "1234567", "123456789", "4006381333931 ", "400638133393A"}
	for _, s := range invalid {
		if _, err := checkGTIN(s); err == nil {
			t.Errorf("checkGTIN(%q) accepted", s)
		}
	}
}

func TestCollapseSpace(t *testing.T) {
	tests := map[string]string{
		"Kaffee Maschine":      "Kaffee Maschine",
		"Kaffee  Maschine":     "Kaffee Maschine",
		"Kaffee\tMaschine\n2":  "Kaffee Maschine 2",
		"커피\u3000머신":           "커피 머신",
		"a\u00a0\u00a0b":       "a b",
		"Ünïcödé without runs": "Ünïcödé without runs",
	}
	for in, want := range tests {
		if got := collapseSpace(in); got != want {
			t.Errorf("collapseSpace(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsHTTPURL(t *testing.T) {
	for s, want := range map[string]bool{
		"https://shop.example/p/1": true,
		"http://shop.example":      true,
		"HTTPS://SHOP.EXAMPLE/":    true,
		"ftp://x":                  false,
		"https://":                 false,
		"https:///path":            false,
		"https://a b":              false,
		"shop.example/p/1":         false,
		"javascript:alert(1)":      false,
	} {
		if got := isHTTPURL(s); got != want {
			t.Errorf("isHTTPURL(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestRowMapperSKUWithColon(t *testing.T) {
	m := Mapping{Fields: map[string]FieldSource{"id": {"id"}, "title": {"t"}, "price": {"p"}}, Defaults: map[string]string{"currency": "EUR"}}
	rm := NewRowMapper(m, "shop", []string{"id", "t", "p"}, batchTime)
	p, rej := firstError(rm, RawRow{Values: []string{"A:1/ß", "x", "1"}})
	if rej != nil {
		t.Fatal(rej)
	}
	if partner, sku := SplitProductID(p.ID); p.ID != "shop:A:1/ß" || p.SKU != "A:1/ß" || partner != "shop" || sku != p.SKU {
		t.Errorf("id %q sku %q split into %q and %q", p.ID, p.SKU, partner, sku)
	}
	if _, rej := firstError(rm, RawRow{Values: []string{strings.Repeat("x", MaxSKUBytes), "x", "1"}}); rej != nil {
		t.Errorf("a SKU of exactly %d bytes rejected: %v", MaxSKUBytes, rej.Reason)
	}
}

func TestRowMapperDeleted(t *testing.T) {
	m := Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "title": {"t"}, "price": {"p"}, "deleted": {"gone"}}, Defaults: map[string]string{"currency": "EUR"}}
	if err := m.Validate(); err != nil {
		t.Fatalf("a mapping with a deleted column is valid: %v", err)
	}
	rm := NewRowMapper(m, "acme", []string{"sku", "t", "p", "gone"}, time.Time{})
	for _, c := range []struct {
		value string
		want  bool
	}{{"1", true}, {"TRUE", true}, {"yes", true}, {"Delete", true}, {"", false}, {"0", false}, {"no", false}} {
		sku, got := rm.Deleted(RawRow{Row: 1, Values: []string{"S1", "x", "1", c.value}})
		if got != c.want || (got && sku != "S1") {
			t.Errorf("deleted %q = %v %q, want %v", c.value, got, sku, c.want)
		}
	}
	plain := NewRowMapper(Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "title": {"t"}, "price": {"p"}}}, "acme", []string{"sku", "t", "p", "gone"}, time.Time{})
	if _, got := plain.Deleted(RawRow{Row: 1, Values: []string{"S1", "x", "1", "1"}}); got {
		t.Error("a mapping without a deleted column deletes nothing")
	}
}

// firstError maps a row and returns its first error, nil when it is valid.
func firstError(rm *RowMapper, row RawRow) (Product, *Issue) {
	p, issues := rm.Map(row)
	for i := range issues {
		if issues[i].IsError() {
			return p, &issues[i]
		}
	}
	return p, nil
}
