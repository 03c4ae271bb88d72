package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
	"feedline/topology"
)

// TestEndToEnd drives every route over real stores and holds every answer,
// errors included, to the OpenAPI document.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	call := func(t *testing.T, req *http.Request, want int) response {
		t.Helper()
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.URL, r.StatusCode, want, r.body)
		}
		return r
	}
	get := func(target, key string) *http.Request { return request(http.MethodGet, target, key, nil) }

	t.Run("operations", func(t *testing.T) {
		var h healthStatus
		call(t, get("/healthz", ""), 200).decode(t, &h)
		if h.Status != "ok" {
			t.Errorf("healthz status %q", h.Status)
		}
		call(t, get("/readyz", ""), 200).decode(t, &h)
		if h.Status != "ready" {
			t.Errorf("readyz status %q", h.Status)
		}
		if r := call(t, get("/openapi.json", ""), 200); !bytes.Equal(r.body, openAPIDocument) {
			t.Error("GET /openapi.json is not the embedded document")
		}
		call(t, get("/docs", ""), 200)
		if r := call(t, get("/metrics", ""), 200); !strings.Contains(string(r.body), "go_goroutines") {
			t.Errorf("metrics lack the Go collector: %.200s", r.body)
		}
	})

	var acmeKey, otherKey string
	t.Run("partners", func(t *testing.T) {
		newPartner := func(key string, body any) *http.Request {
			return request(http.MethodPost, "/v1/partners", key, jsonBody(body))
		}
		call(t, newPartner("", map[string]string{"id": "acme"}), 401)
		call(t, newPartner("fl_acme_guessed", map[string]string{"id": "acme"}), 401)

		var created createPartnerResponse
		call(t, newPartner(testAdminKey, map[string]string{"id": "acme"}), 201).decode(t, &created)
		if created.ID != "acme" || !strings.HasPrefix(created.APIKey, "fl_acme_") {
			t.Fatalf("created %+v", created)
		}
		acmeKey = created.APIKey

		if p := call(t, newPartner(testAdminKey, map[string]string{"id": "acme"}), 409).problem(t); !strings.Contains(p.Detail, `"acme"`) {
			t.Errorf("conflict detail %q does not name the partner", p.Detail)
		}
		call(t, newPartner(testAdminKey, map[string]string{"id": "Acme Shop"}), 422)
		call(t, newPartner(testAdminKey, map[string]string{"id": strings.Repeat("a", 64)}), 422)
		call(t, request(http.MethodPost, "/v1/partners", testAdminKey, strings.NewReader(`{"id": `)), 400)
		if p := call(t, newPartner(testAdminKey, map[string]any{"id": "x", "name": "X"}), 400).problem(t); !strings.Contains(p.Detail, `"name"`) {
			t.Errorf("unknown field detail %q does not name the field", p.Detail)
		}
		huge := `{"id": "` + strings.Repeat("a", maxJSONBody) + `"}`
		call(t, request(http.MethodPost, "/v1/partners", testAdminKey, strings.NewReader(huge)), 413)
		call(t, newPartner(acmeKey, map[string]string{"id": "sneaky"}), 403)

		otherKey = e.createPartner(t, "other_shop-2")
		if otherKey == acmeKey || !strings.HasPrefix(otherKey, "fl_other_shop-2_") {
			t.Fatalf("other key %q", otherKey)
		}
	})

	mappingPath := "/v1/partners/acme/mapping"
	german := map[string]any{
		"fields":   map[string]string{"id": "Artikelnummer", "title": "Bezeichnung", "price": "Preis", "currency": "Waehrung", "brand": "Marke", "category": "Kategorie", "url": "URL"},
		"defaults": map[string]string{"currency": "EUR"},
		"quoted":   false,
	}
	t.Run("mappings", func(t *testing.T) {
		call(t, get(mappingPath, acmeKey), 404)

		var m schemas.Mapping
		call(t, request(http.MethodPut, mappingPath, acmeKey, jsonBody(map[string]string{"preset": "google_merchant"})), 200).decode(t, &m)
		if m.Version != 1 || m.Preset != "google_merchant" || m.UpdatedAt.IsZero() {
			t.Errorf("first mapping %+v", m)
		}
		call(t, request(http.MethodPut, mappingPath, acmeKey, jsonBody(german)), 200).decode(t, &m)
		if m.Version != 2 || m.Fields["id"][0] != "Artikelnummer" || m.Defaults["currency"] != "EUR" || m.Quoted == nil || *m.Quoted {
			t.Errorf("second mapping %+v", m)
		}
		notBool := map[string]any{"preset": "naver_ep", "quoted": "no"}
		if p := call(t, request(http.MethodPut, mappingPath, acmeKey, jsonBody(notBool)), 400).problem(t); !strings.Contains(p.Detail, `"quoted"`) {
			t.Errorf("a quoting setting that is not a boolean: %q does not name the field", p.Detail)
		}

		bad := map[string]any{"fields": map[string]string{"id": "sku", "colour": "Farbe"}}
		p := call(t, request(http.MethodPut, mappingPath, acmeKey, jsonBody(bad)), 422).problem(t)
		if len(p.Errors) < 2 || !strings.Contains(p.Detail, `"colour"`) {
			t.Errorf("invalid mapping problem %+v: want every problem, naming the unknown field", p)
		}
		call(t, request(http.MethodPut, mappingPath, otherKey, jsonBody(german)), 403)
		call(t, request(http.MethodPut, "/v1/partners/ghost/mapping", testAdminKey, jsonBody(german)), 404)

		m = schemas.Mapping{}
		call(t, get(mappingPath, acmeKey), 200).decode(t, &m)
		if m.Version != 2 || m.Quoted == nil || *m.Quoted {
			t.Errorf("current mapping %+v, want version 2 with quoting off (an invalid one is not stored)", m)
		}
		req := get(mappingPath, "")
		req.Header.Set("X-API-Key", acmeKey)
		call(t, req, 200)
		call(t, get(mappingPath, testAdminKey), 200)
	})

	csv := "id,title,price,currency\nSKU-1,Trail shoe,89.99,EUR\nSKU-2,Road shoe,129.99,EUR\n"
	upload := func(partner, query, key string, body io.Reader, contentType string) *http.Request {
		req := request(http.MethodPost, "/v1/partners/"+partner+"/uploads"+query, key, body)
		req.Header.Set("Content-Type", contentType)
		return req
	}
	var uploadID string
	t.Run("uploads", func(t *testing.T) {
		p := call(t, upload("other_shop-2", "", otherKey, strings.NewReader(csv), "text/csv"), 422).problem(t)
		want := `partner "other_shop-2" has no mapping: PUT /v1/partners/other_shop-2/mapping first, e.g. {"preset": "google_merchant"}`
		if p.Detail != want {
			t.Errorf("no-mapping detail\n%s\nwant\n%s", p.Detail, want)
		}
		if p := call(t, upload("acme", "?mode=sideways", acmeKey, strings.NewReader(csv), "text/csv"), 400).problem(t); !strings.Contains(p.Detail, "full, delta") {
			t.Errorf("bad mode detail %q does not list the modes", p.Detail)
		}
		if p := call(t, upload("acme", "?format=xlsx", acmeKey, strings.NewReader(csv), "text/csv"), 400).problem(t); !strings.Contains(p.Detail, "ndjson") {
			t.Errorf("bad format detail %q does not list the formats", p.Detail)
		}
		call(t, upload("acme", "?delimiter=x", acmeKey, strings.NewReader(csv), "text/csv"), 400)
		call(t, upload("acme", "", acmeKey, strings.NewReader(""), "text/csv"), 422)
		call(t, upload("acme", "", acmeKey, bytes.NewReader([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}), "application/octet-stream"), 415)
		call(t, upload("acme", "?format=ndjson", acmeKey, strings.NewReader(csv), "text/csv"), 415)
		call(t, upload("ghost", "", testAdminKey, strings.NewReader(csv), "text/csv"), 404)
		call(t, upload("acme", "", otherKey, strings.NewReader(csv), "text/csv"), 403)
		call(t, upload("acme", "", "", strings.NewReader(csv), "text/csv"), 401)

		r := call(t, upload("acme", "?mode=delta&filename=products.csv", acmeKey, strings.NewReader(csv), "text/csv"), 202)
		var acc uploadAccepted
		r.decode(t, &acc)
		uploadID = acc.UploadID
		if loc := r.Header.Get("Location"); loc != "/v1/uploads/"+uploadID {
			t.Errorf("Location %q", loc)
		}
		ev := checkStored(t, e, uploadID, csv)
		if ev.Partner != "acme" || ev.Mode != schemas.ModeDelta || ev.Format != schemas.FormatCSV || ev.Delimiter != "," ||
			ev.MappingVersion != 2 || ev.Filename != "products.csv" || ev.Object != uploadID || ev.ReceivedAt.IsZero() {
			t.Errorf("recorded upload %+v", ev)
		}

		tsv := "id\ttitle\tprice\nA1\tMug\t9.50\n"
		body, ctype := multipartBody(t, "feed.tsv", tsv)
		r = call(t, upload("acme", "?filename=ignored.txt", acmeKey, body, ctype), 202)
		r.decode(t, &acc)
		ev = checkStored(t, e, acc.UploadID, tsv)
		if ev.Mode != schemas.ModeFull || ev.Format != schemas.FormatTSV || ev.Delimiter != "\t" || ev.Filename != "feed.tsv" {
			t.Errorf("multipart upload recorded as %+v", ev)
		}
		if acc.UploadID == uploadID {
			t.Error("two uploads share an id")
		}

		r = call(t, upload("acme", "?delimiter=semicolon", testAdminKey, strings.NewReader(csv), "text/csv"), 202)
		r.decode(t, &acc)
		if ev := checkStored(t, e, acc.UploadID, csv); ev.Delimiter != ";" {
			t.Errorf("named delimiter recorded as %q", ev.Delimiter)
		}
	})

	t.Run("upload status", func(t *testing.T) {
		var st schemas.UploadStatus
		r := call(t, get("/v1/uploads/"+uploadID, acmeKey), 200)
		r.decode(t, &st)
		if st.ID != uploadID || st.Partner != "acme" || st.State != schemas.StateReceived || st.MappingVersion != 2 ||
			st.Size != int64(len(csv)) || st.Mode != schemas.ModeDelta || st.Format != schemas.FormatCSV {
			t.Errorf("status %+v", st)
		}
		if !strings.Contains(string(r.body), `"rejections":[]`) {
			t.Errorf("rejections must be an array, even empty: %s", r.body)
		}
		call(t, get("/v1/uploads/"+uploadID, testAdminKey), 200)
		hidden := call(t, get("/v1/uploads/"+uploadID, otherKey), 404).problem(t)
		missing := call(t, get("/v1/uploads/01hzzzzzzzzzzzzzzzzzzzzzzz", otherKey), 404).problem(t)
		if strings.ReplaceAll(hidden.Detail, uploadID, "ID") != strings.ReplaceAll(missing.Detail, "01hzzzzzzzzzzzzzzzzzzzzzzz", "ID") {
			t.Errorf("another partner's upload is told apart from a missing one:\n%s\n%s", hidden.Detail, missing.Detail)
		}
		call(t, get("/v1/uploads/"+uploadID, ""), 401)
	})

	t.Run("search", func(t *testing.T) {
		indexProducts(t, e)
		var res schemas.SearchResult
		call(t, get("/v1/search?q=running", ""), 200).decode(t, &res)
		if res.Total != 2 || len(res.Hits) != 2 {
			t.Errorf("q=running: %d hits of %d, want 2", len(res.Hits), res.Total)
		}
		call(t, get("/v1/search?brand=Stride&brand=Knit", ""), 200).decode(t, &res)
		if ids := hitIDs(res); res.Total != 2 || !slices.Contains(ids, "acme:SKU-1") || !slices.Contains(ids, "acme:SKU-3") {
			t.Errorf("brand=Stride&brand=Knit (any of): %v", ids)
		}
		call(t, get("/v1/search?category=Shoes&availability=in_stock&max_price=9500&partner=acme&currency=EUR", ""), 200).decode(t, &res)
		if ids := hitIDs(res); !slices.Equal(ids, []string{"acme:SKU-1"}) {
			t.Errorf("filters all apply: %v", ids)
		}
		if facet := res.Facets["brand"]; len(facet) != 1 || facet[0] != (schemas.FacetCount{Value: "Stride", Count: 1}) {
			t.Errorf("brand facet %+v", facet)
		}

		var page1, page2 schemas.SearchResult
		call(t, get("/v1/search?sort=price_asc&limit=2&currency=eur", ""), 200).decode(t, &page1)
		if len(page1.Hits) != 2 || page1.NextCursor == "" || page1.Hits[0].ID != "acme:SKU-3" {
			t.Fatalf("first page %v next %q", hitIDs(page1), page1.NextCursor)
		}
		call(t, get("/v1/search?sort=price_asc&limit=2&currency=EUR&cursor="+url.QueryEscape(page1.NextCursor), ""), 200).decode(t, &page2)
		if len(page2.Hits) == 0 || slices.Contains(hitIDs(page1), page2.Hits[0].ID) {
			t.Errorf("second page %v repeats the first %v", hitIDs(page2), hitIDs(page1))
		}
		// The cursor of a EUR price search does not continue one in KRW.
		if p := call(t, get("/v1/search?sort=price_asc&limit=2&currency=KRW&cursor="+url.QueryEscape(page1.NextCursor), ""), 400).problem(t); !strings.Contains(p.Detail, "cursor") {
			t.Errorf("EUR cursor in a KRW search: %q", p.Detail)
		}

		// Prices compare in one currency: the request's, else the
		// service's default (KRW here); the answer says which.
		var priced searchAnswer
		for query, want := range map[string]struct {
			currency string
			ids      []string
		}{
			"max_price=2000":                       {"KRW", []string{"acme:SKU-5"}},
			"max_price=2000&currency=eur":          {"EUR", []string{"acme:SKU-3"}},
			"min_price=1000&currency=USD":          {"USD", nil},
			"sort=price_desc&currency=KRW":         {"KRW", []string{"acme:SKU-5"}},
			"sort=price_desc&limit=1&currency=EUR": {"EUR", []string{"acme:SKU-2"}},
		} {
			priced = searchAnswer{}
			call(t, get("/v1/search?"+query, ""), 200).decode(t, &priced)
			if priced.PriceCurrency != want.currency || !slices.Equal(answerIDs(priced), want.ids) {
				t.Errorf("?%s: price_currency %q, hits %v; want %q, %v", query, priced.PriceCurrency, answerIDs(priced), want.currency, want.ids)
			}
		}
		// Without a price filter or sort every currency is found, and
		// the answer names none.
		for _, query := range []string{"", "currency=USD", "q=socks&currency=krw"} {
			r := call(t, get("/v1/search?"+query, ""), 200)
			priced = searchAnswer{}
			r.decode(t, &priced)
			if strings.Contains(string(r.body), "price_currency") || (query == "" && priced.Total != 5) {
				t.Errorf("?%s: %d found, answer %.300s", query, priced.Total, r.body)
			}
		}
		if !slices.Equal(answerIDs(priced), []string{"acme:SKU-3", "acme:SKU-5"}) && !slices.Equal(answerIDs(priced), []string{"acme:SKU-5", "acme:SKU-3"}) {
			t.Errorf("q=socks&currency=krw: %v, want the EUR and the KRW socks", answerIDs(priced))
		}

		for query, param := range map[string]string{
			"limit=0":                 "limit",
			"limit=101":               "limit",
			"limit=ten":               "limit",
			"min_price=abc":           "min_price",
			"max_price=-1":            "max_price",
			"min_price=9&max_price=1": "min_price",
			"sort=cheapest":           "sort",
			"availability=soon":       "availability",
			"cursor=not-a-cursor":     "cursor",
			"currency=EURO":           "currency",
			"currency=E1&min_price=1": "currency",
			"currency=ABC":            "ISO 4217",
			"currency=XXX":            "such as KRW or USD",
		} {
			if p := call(t, get("/v1/search?"+query, ""), 400).problem(t); !strings.Contains(p.Detail, param) {
				t.Errorf("?%s: detail %q does not name %s", query, p.Detail, param)
			}
		}

		call(t, get("/v1/search?q=wool+socks&brand=Knit", ""), 200)
		ev := searchEvent(t, e, "wool socks")
		if ev.Results != 1 || ev.Filters != "brand=Knit" || ev.Sort != schemas.SortRelevance || ev.ID == "" || ev.At.IsZero() {
			t.Errorf("search event %+v", ev)
		}
		call(t, get("/v1/search?q=wool+gift&max_price=2000&currency=eur", ""), 200)
		if ev := searchEvent(t, e, "wool gift"); ev.Filters != "currency=EUR&max_price=2000" {
			t.Errorf("priced search event filters %q", ev.Filters)
		}
	})

	t.Run("products", func(t *testing.T) {
		var p schemas.Product
		call(t, get("/v1/products/acme%3ASKU-1", ""), 200).decode(t, &p)
		if p.ID != "acme:SKU-1" || p.Title != "Trail running shoe" {
			t.Errorf("product %+v", p)
		}
		call(t, get("/v1/products/"+url.PathEscape("acme:SKU/4"), ""), 200).decode(t, &p)
		if p.SKU != "SKU/4" {
			t.Errorf("product with a slash in its SKU: %+v", p)
		}
		call(t, get("/v1/products/acme%3Anope", ""), 404)
	})

	t.Run("router errors", func(t *testing.T) {
		call(t, get("/v1/nothing", ""), 404)
		call(t, request(http.MethodDelete, "/v1/search", "", nil), 405)
		call(t, request(http.MethodPost, "/healthz", "", strings.NewReader("{}")), 405)
	})
}

// checkStored reads back what an accepted upload left in each store: the
// file, the ledger record and the event on the UPLOADS stream.
func checkStored(t *testing.T, e *env, id, content string) schemas.UploadEvent {
	t.Helper()
	ctx := context.Background()
	rc, err := e.files.Open(ctx, id)
	if err != nil {
		t.Fatalf("stored file: %v", err)
	}
	stored, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || string(stored) != content {
		t.Fatalf("stored file %q (%v), want %q", stored, err, content)
	}
	rec, err := e.ledger.Upload(ctx, id)
	if err != nil {
		t.Fatalf("ledger record: %v", err)
	}
	if rec.Size != int64(len(content)) {
		t.Errorf("recorded size %d, want %d", rec.Size, len(content))
	}
	stream, err := e.bus.JetStream().Stream(ctx, topology.StreamUploads)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, schemas.Subject(schemas.SubjectUploaded, rec.Partner))
	if err != nil {
		t.Fatalf("upload event: %v", err)
	}
	var ev schemas.UploadEvent
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if !ev.ReceivedAt.Equal(rec.ReceivedAt) {
		t.Errorf("event received at %v, ledger %v", ev.ReceivedAt, rec.ReceivedAt)
	}
	ev.ReceivedAt = rec.ReceivedAt
	if fmt.Sprint(ev) != fmt.Sprint(rec) {
		t.Errorf("event %+v differs from ledger record %+v", ev, rec)
	}
	h := msg.Header
	if h.Get(schemas.HeaderPartner) != rec.Partner || h.Get(schemas.HeaderUpload) != id || h.Get(jetstream.MsgIDHeader) != id {
		t.Errorf("event headers %v", h)
	}
	return rec
}

func multipartBody(t *testing.T, filename, content string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.WriteField("note", "weekly feed"); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(fw, content)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

// indexProducts writes a small catalog straight into the index.
func indexProducts(t *testing.T, e *env) {
	t.Helper()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sale := int64(9999)
	products := []schemas.Product{
		{SKU: "SKU-1", Title: "Trail running shoe", Brand: "Stride", Category: []string{"Shoes", "Running"}, Price: 8999, Availability: schemas.InStock},
		{SKU: "SKU-2", Title: "Road running shoe", Brand: "Pace", Category: []string{"Shoes", "Running"}, Price: 12999, SalePrice: &sale, Availability: schemas.InStock},
		{SKU: "SKU-3", Title: "Wool socks", Brand: "Knit", Category: []string{"Apparel", "Socks"}, Price: 1299, Availability: schemas.OutOfStock},
		{SKU: "SKU/4", Title: "Gift card", Brand: "Acme", Price: 5000, Availability: schemas.InStock, Attributes: map[string]string{"kind": "voucher"}},
		{SKU: "SKU-5", Title: "Bamboo socks", Brand: "Knot", Category: []string{"Apparel", "Socks"}, Price: 1500, Currency: "KRW", Availability: schemas.InStock},
	}
	changes := make([]schemas.ProductChange, len(products))
	for i, p := range products {
		p.Partner, p.ID, p.Currency, p.UpdatedAt, p.Version = "acme", schemas.ProductID("acme", p.SKU), cmp.Or(p.Currency, "EUR"), at, 1
		changes[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: 1, Product: &p}
	}
	if _, err := e.index.Apply(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
}

func hitIDs(r schemas.SearchResult) []string {
	ids := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		ids[i] = h.ID
	}
	return ids
}

// answerIDs are the ids of an answer's hits.
func answerIDs(a searchAnswer) []string {
	ids := make([]string, len(a.Hits))
	for i, h := range a.Hits {
		ids[i] = h.ID
	}
	return ids
}

// searchEvent waits for the analytics event of a search: events are
// published after the answer, in no particular order.
func searchEvent(t *testing.T, e *env, query string) schemas.SearchQueryEvent {
	t.Helper()
	ctx := context.Background()
	stream, err := e.bus.JetStream().Stream(ctx, topology.StreamAnalytics)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			msg, err := stream.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			var ev schemas.SearchQueryEvent
			if err := json.Unmarshal(msg.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if msg.Subject != schemas.SubjectSearch || ev.Query != query {
				continue
			}
			if id := msg.Header.Get(jetstream.MsgIDHeader); id != ev.ID {
				t.Errorf("search event Nats-Msg-Id %q, want its id %q", id, ev.ID)
			}
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no analytics event for the search %q; log:\n%s", query, e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
