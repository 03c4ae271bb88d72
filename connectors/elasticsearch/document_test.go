package elasticsearch

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"testing"
	"time"

	"feedline/schemas"
)

func TestDocumentEncoding(t *testing.T) {
	t.Parallel()
	sale := int64(990)
	products := []schemas.Product{
		{
			ID: "shop1:x", Partner: "shop1", SKU: "x", Title: "Ｗｉｄｅ \"quoted\" <b>&</b>", Description: "line\nbreak\ttab\x01",
			Brand: "삼성", Category: []string{`A "q"`, "B\\C", "무선"}, Price: 1000, SalePrice: &sale, Currency: "KRW",
			Availability: schemas.Preorder, URL: "https://shop.example/x?a=1&b=2", ImageURLs: []string{"https://img.example/1.jpg"},
			GTIN: "8801234567890", Attributes: map[string]string{"색상": "검정", "b": "2", "a": "1"},
			UpdatedAt: time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.FixedZone("KST", 9*3600)), Version: 12,
		},
		{ID: "", Partner: "shop2", SKU: "bad\xffutf8", Title: "invalid \xff byte", Price: 5, Currency: "USD", Availability: schemas.InStock},
	}
	var enc docEncoder
	for _, p := range products {
		id := p.ID
		if id == "" {
			id = schemas.ProductID(p.Partner, p.SKU)
		}
		pc := p
		start := enc.buf.Len()
		if err := enc.document(&schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: id, Version: 12, Product: &pc}); err != nil {
			t.Fatal(err)
		}
		doc := enc.buf.Bytes()[start:]
		if !stdjson.Valid(doc) {
			t.Fatalf("invalid JSON %s", doc)
		}
		// The product part reads back as encoding/json writes it.
		want := p
		want.ID = id
		wantJSON, _ := stdjson.Marshal(want)
		var gotP, wantP schemas.Product
		_ = stdjson.Unmarshal(doc, &gotP)
		_ = stdjson.Unmarshal(wantJSON, &wantP)
		if !reflect.DeepEqual(gotP, wantP) {
			t.Errorf("product\n got %+v\nwant %+v", gotP, wantP)
		}
		var derived struct {
			CategoryPaths  []string `json:"category_paths"`
			EffectivePrice int64    `json:"effective_price"`
			Deleted        *bool    `json:"deleted"`
		}
		if err := stdjson.Unmarshal(doc, &derived); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(derived.CategoryPaths, p.CategoryPaths()) && !(len(p.Category) == 0 && len(derived.CategoryPaths) == 0) {
			t.Errorf("category_paths %q, want %q", derived.CategoryPaths, p.CategoryPaths())
		}
		if derived.EffectivePrice != p.EffectivePrice() || derived.Deleted == nil || *derived.Deleted {
			t.Errorf("derived fields %+v", derived)
		}
	}

	start := enc.buf.Len()
	if err := enc.document(&schemas.ProductChange{Kind: schemas.ChangeDelete, ID: `shop1:"del"`, Version: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	var tomb map[string]any
	d := stdjson.NewDecoder(bytes.NewReader(enc.buf.Bytes()[start:]))
	d.UseNumber()
	if err := d.Decode(&tomb); err != nil {
		t.Fatal(err)
	}
	if tomb["id"] != `shop1:"del"` || tomb["deleted"] != true || tomb["version"] != stdjson.Number("4611686018427387904") || len(tomb) != 3 {
		t.Errorf("tombstone %v", tomb)
	}
}
