package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
	"feedline/topology"
)

// previewBody is a multipart body with a mapping part and a file part.
func previewBody(t *testing.T, mapping, file string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if mapping != "" {
		fw, err := w.CreateFormFile("mapping", "mapping.json")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, mapping)
	}
	if file != "" {
		fw, err := w.CreateFormFile("file", "sample.csv")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, file)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

func TestMappingPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	other := e.createPartner(t, "other")
	preview := func(t *testing.T, key, mapping, file string, want int) response {
		t.Helper()
		body, ctype := previewBody(t, mapping, file)
		req := request(http.MethodPost, "/v1/partners/acme/mapping/preview", key, body)
		req.Header.Set("Content-Type", ctype)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != want {
			t.Fatalf("preview: %d %s, want %d", r.StatusCode, r.body, want)
		}
		return r
	}
	mapping := `{"fields": {"id": "sku", "title": "name", "price": "price", "brand": "brand", "availability": "stock", "category": "cat"},
		"defaults": {"currency": "EUR"},
		"rules": [
			{"kind": "map", "field": "availability", "table": {"1": "in stock", "0": "out of stock"}},
			{"kind": "map", "field": "brand", "table": {"acme inc": "Acme"}, "ignore_case": true},
			{"kind": "exclude", "when": {"field": "brand", "equals": "sample"}},
			{"kind": "category", "table": {"Shoes": "Apparel > Footwear"}}
		]}`
	var file strings.Builder
	file.WriteString("sku,name,price,brand,stock,cat\n")
	file.WriteString("A1,Kettle,10.00,ACME Inc,1,Kitchen\n")
	file.WriteString("A2,Free sample,0.00,Sample,1,\n") // excluded before its zero price counts
	file.WriteString("A3,,5.00,Acme,0,\n")              // rejected: no title
	file.WriteString("A4,Boot,x,Acme,1,Shoes\n")        // rejected: price
	file.WriteString("A5,Old boot,30,Acme,1,Shoes\n")   // replaced by the next row
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&file, "A%d,Boot %d,%d.50,Acme,0,Shoes > Hiking\n", 5+i, i, 20+i)
	}

	r := preview(t, key, mapping, file.String(), 200)
	var pv schemas.Preview
	r.decode(t, &pv)
	if pv.Format != schemas.FormatCSV || len(pv.Columns) != 6 || pv.Truncated {
		t.Errorf("preview of %s, columns %q, truncated %v", pv.Format, pv.Columns, pv.Truncated)
	}
	want := schemas.PreviewCounts{Read: 35, Valid: 31, Rejected: 2, Excluded: 1, Duplicates: 1, Warnings: 1}
	if pv.Counts != want {
		t.Errorf("counts %+v, want %+v", pv.Counts, want)
	}
	if len(pv.Products) != schemas.PreviewProducts {
		t.Fatalf("%d products, want the first %d", len(pv.Products), schemas.PreviewProducts)
	}
	first, second := pv.Products[0], pv.Products[1]
	if first.ID != "acme:A1" || first.Brand != "Acme" || first.Availability != schemas.InStock || first.Price != 1000 {
		t.Errorf("first product %+v", first)
	}
	if second.SKU != "A5" || second.Title != "Boot 0" || strings.Join(second.Category, " > ") != "Apparel > Footwear" || second.Availability != schemas.OutOfStock {
		t.Errorf("second product %+v: want the last row of A5, mapped through the category and availability tables", second)
	}
	codes := map[string]int64{}
	for _, c := range pv.IssueSummary {
		codes[c.Code] = c.Count
	}
	if codes[schemas.CodeMissingTitle] != 1 || codes[schemas.CodePriceUnparseable] != 1 || codes[schemas.CodeDuplicateID] != 1 || codes[schemas.CodePriceZero] != 0 {
		t.Errorf("issue summary %+v", pv.IssueSummary)
	}
	if len(pv.Rejections) != 2 || pv.Rejections[0].Row != 3 || pv.Rejections[1].SourceID != "A4" {
		t.Errorf("rejections %+v", pv.Rejections)
	}

	// Nothing was stored: no mapping version, no upload, no file.
	r = e.send(t, request(http.MethodGet, "/v1/partners/acme/mapping", key, nil))
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("a preview stored a mapping: %d %s", r.StatusCode, r.body)
	}
	uploads, err := e.bus.KV(context.Background(), topology.BucketUploads)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := uploads.ListKeys(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		for k := range keys.Keys() {
			t.Errorf("a preview recorded %s in the uploads bucket", k)
		}
	}
	if _, err := e.files.Store.List(context.Background()); err == nil || !strings.Contains(err.Error(), jetstream.ErrNoObjectsFound.Error()) {
		t.Errorf("a preview stored a file (%v)", err)
	}

	// Errors name what to fix.
	p := preview(t, key, `{"fields": {"id": "sku", "title": "name", "price": "price"}, "rules": [{"kind": "replace", "field": "title", "pattern": "(", "with": ""}]}`, file.String(), 422).problem(t)
	if !strings.Contains(p.Detail, `rule 1 (replace title): pattern "(" is not a valid regular expression`) || !strings.Contains(p.Detail, "preview it again") {
		t.Errorf("bad pattern: %s", p.Detail)
	}
	p = preview(t, key, `{"fields": {"id": "Artikel", "title": "name", "price": "price"}}`, file.String(), 422).problem(t)
	if !strings.Contains(p.Detail, `id is mapped to column "Artikel"`) {
		t.Errorf("columns mismatch: %s", p.Detail)
	}
	preview(t, key, mapping, "", 400)
	preview(t, key, "", file.String(), 400)
	preview(t, key, `{"felds": {}}`, file.String(), 400)
	preview(t, key, mapping, "\x00\x01\x02\x03binary", 415)
	preview(t, other, mapping, file.String(), 403)
	req := request(http.MethodPost, "/v1/partners/acme/mapping/preview", key, strings.NewReader(file.String()))
	req.Header.Set("Content-Type", "text/csv")
	if r := e.send(t, req); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, `"mapping" part`) {
		t.Errorf("a body that is not multipart: %d %s", r.StatusCode, r.body)
	}
}

// A sample longer than a preview reads is cut at a line and said to be.
func TestMappingPreviewOfALongSample(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.createPartner(t, "acme")
	var file bytes.Buffer
	file.WriteString("sku,name,price,currency\n")
	for i := 0; file.Len() <= schemas.PreviewMaxBytes; i++ {
		fmt.Fprintf(&file, "S%07d,Long product title number %d for the sample,%d.99,EUR\n", i, i, i%500+1)
	}
	body, ctype := previewBody(t, `{"fields": {"id": "sku", "title": "name", "price": "price", "currency": "currency"}}`, file.String())
	req := request(http.MethodPost, "/v1/partners/acme/mapping/preview", key, body)
	req.Header.Set("Content-Type", ctype)
	r := e.send(t, req)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("preview: %d %s", r.StatusCode, r.body)
	}
	var pv schemas.Preview
	r.decode(t, &pv)
	if !pv.Truncated || pv.Counts.Read != schemas.PreviewMaxRows || pv.Counts.Rejected != 0 || pv.Counts.Valid != schemas.PreviewMaxRows {
		t.Errorf("long sample: truncated %v, counts %+v", pv.Truncated, pv.Counts)
	}
}

// Rules are validated when the mapping is stored: a bad one is a 422 that
// names it, and nothing is stored.
func TestPutMappingValidatesRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	put := func(doc string, want int) response {
		t.Helper()
		req := request(http.MethodPut, "/v1/partners/acme/mapping", key, strings.NewReader(doc))
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != want {
			t.Fatalf("PUT %s: %d %s, want %d", doc, r.StatusCode, r.body, want)
		}
		return r
	}
	base := `{"fields": {"id": "sku", "title": "name", "price": "price"}, "defaults": {"currency": "EUR"}, "rules": `
	p := put(base+`[{"kind": "set", "field": "brand", "value": "Acme"}, {"name": "promo", "kind": "replace", "field": "title", "pattern": "*free", "with": ""}]}`, 422).problem(t)
	if !strings.Contains(p.Detail, `rule 2 "promo" (replace title): pattern "*free" is not a valid regular expression`) || len(p.Errors) != 1 {
		t.Errorf("bad regex: %s %q", p.Detail, p.Errors)
	}
	put(base+`[{"kind": "exclude", "when": {"field": "brand", "equals": "x"}, "colour": "red"}]}`, 400)
	var m schemas.Mapping
	put(base+`[{"kind": "exclude", "when": {"field": "brand", "equals": "x"}}, {"kind": "category", "table": {"a": "b"}}]}`, 200).decode(t, &m)
	if m.Version != 1 || len(m.Rules) != 2 || m.Rules[0].When[0].Equals == nil || *m.Rules[0].When[0].Equals != "x" {
		t.Errorf("stored %+v", m)
	}
}
