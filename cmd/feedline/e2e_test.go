package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"feedline/connectors/decode"
	"feedline/connectors/parquetsink"
	"feedline/schemas"
)

// catalogRow is one product line of a test feed.
type catalogRow struct {
	SKU, Title, Brand string
	Category          []string
	Price             string // as the partner writes it
	Stock             string
}

// testCatalog has five valid rows and two a partner must be told about.
var testCatalog = []catalogRow{
	{"A1", "Wireless Earbuds Pro", "Sonic", []string{"Audio", "Earbuds"}, "12900", "in stock"},
	{"A2", "삼성 무선 이어폰", "Samsung", []string{"Audio", "Earbuds"}, "25000", "in stock"},
	{"A3", "Electric Kettle", "Acme", []string{"Home", "Kitchen"}, "15000", "in stock"},
	{"A4", "Bad Price Toaster", "Acme", []string{"Home", "Kitchen"}, "abc", "in stock"},
	{"A5", "", "Acme", []string{"Home"}, "1000", "in stock"},
	{"A6", "Coffee Grinder", "Acme", []string{"Home", "Kitchen"}, "30000", "out of stock"},
	{"A7", "Toaster Oven", "Acme", []string{"Home", "Kitchen"}, "45000", "in stock"},
}

var validSKUs = []string{"A1", "A2", "A3", "A6", "A7"}

const customMapping = `{"fields": {"id": "sku", "title": "name", "brand": "brand", "category": "category",
  "price": "price", "currency": "currency", "availability": "stock", "url": "url"}}`

const ndjsonMapping = `{"fields": {"id": "sku", "title": "name", "brand": "brand", "category": "category",
  "price": "offer.price", "currency": "offer.currency", "availability": "offer.stock"}}`

func delimited(rows []catalogRow, sep string) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, strings.Join([]string{"sku", "name", "brand", "category", "price", "currency", "stock", "url"}, sep))
	for _, r := range rows {
		title := r.Title
		if sep == "," && strings.Contains(title, " ") {
			title = `"` + title + `"`
		}
		fmt.Fprintln(&b, strings.Join([]string{r.SKU, title, r.Brand, strings.Join(r.Category, " > "), r.Price, "KRW", r.Stock,
			"https://shop.example/" + r.SKU}, sep))
	}
	return b.Bytes()
}

func ndjsonFile(rows []catalogRow) []byte {
	var b bytes.Buffer
	for _, r := range rows {
		line, _ := json.Marshal(map[string]any{
			"sku": r.SKU, "name": r.Title, "brand": r.Brand, "category": strings.Join(r.Category, " > "),
			"offer": map[string]any{"price": priceValue(r.Price), "currency": "KRW", "stock": r.Stock},
		})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// priceValue writes numbers as JSON numbers and keeps a bad price a string.
func priceValue(s string) any {
	for _, c := range s {
		if c < '0' || c > '9' {
			return s
		}
	}
	return json.Number(s)
}

type parquetRow struct {
	SKU      string `parquet:"sku"`
	Name     string `parquet:"name"`
	Brand    string `parquet:"brand"`
	Category string `parquet:"category"`
	Price    string `parquet:"price"`
	Currency string `parquet:"currency"`
	Stock    string `parquet:"stock"`
}

func parquetFile(t *testing.T, rows []catalogRow) []byte {
	var b bytes.Buffer
	w := parquet.NewGenericWriter[parquetRow](&b)
	for _, r := range rows {
		if _, err := w.Write([]parquetRow{{r.SKU, r.Title, r.Brand, strings.Join(r.Category, " > "), r.Price, "KRW", r.Stock}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func googleMerchantFile(rows []catalogRow) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tbrand\tproduct_type")
	for _, r := range rows {
		price := r.Price
		if price != "abc" {
			price += " KRW"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\thttps://shop.example/%s\thttps://img.example/%s.jpg\t%s\t%s\t%s\t%s\n",
			r.SKU, r.Title, "A fine "+r.Title, r.SKU, r.SKU, r.Stock, price, r.Brand, strings.Join(r.Category, " > "))
	}
	return b.Bytes()
}

func naverEPFile(rows []catalogRow) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "id\ttitle\tprice_pc\tlink\timage_link\tcategory_name1\tcategory_name2\tbrand")
	for _, r := range rows {
		c2 := ""
		if len(r.Category) > 1 {
			c2 = r.Category[1]
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\thttps://shop.example/%s\thttps://img.example/%s.jpg\t%s\t%s\t%s\n",
			r.SKU, r.Title, r.Price, r.SKU, r.SKU, r.Category[0], c2, r.Brand)
	}
	return b.Bytes()
}

func TestCatalogEndToEndEveryFormat(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	cases := []struct {
		format  string
		mapping string
		file    []byte
	}{
		{schemas.FormatCSV, customMapping, delimited(testCatalog, ",")},
		{schemas.FormatTSV, customMapping, delimited(testCatalog, "\t")},
		{schemas.FormatNDJSON, ndjsonMapping, ndjsonFile(testCatalog)},
		{schemas.FormatParquet, customMapping, parquetFile(t, testCatalog)},
		{schemas.FormatGoogleMerchant, `{"preset": "google_merchant", "defaults": {"currency": "KRW"}}`, googleMerchantFile(testCatalog)},
		{schemas.FormatNaverEP, `{"preset": "naver_ep"}`, naverEPFile(testCatalog)},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			ts.t = t
			partner := "shop-" + strings.ReplaceAll(c.format, "_", "-")
			key := ts.addPartner(partner)
			ts.setMapping(partner, key, c.mapping)
			st := ts.uploadOK(partner, key, c.file, "")
			if st.State != schemas.StateDone || st.Format != c.format {
				t.Fatalf("upload ended %s as %s (%s), want done as %s", st.State, st.Format, st.Error, c.format)
			}
			want := schemas.Counts{Read: 7, Accepted: 5, Rejected: 2, Indexed: 5}
			if st.Counts != want {
				t.Errorf("counts = %+v, want %+v", st.Counts, want)
			}
			if len(st.Rejections) != 2 || st.Rejections[0].Row != 4 || st.Rejections[0].Field != "price" ||
				st.Rejections[1].Row != 5 || st.Rejections[1].Field != "title" || st.Rejections[0].SourceID != "A4" {
				t.Errorf("rejections = %+v, want row 4 price (A4) and row 5 title", st.Rejections)
			}
			for _, r := range st.Rejections {
				if r.Reason == "" {
					t.Errorf("rejection of row %d has no reason", r.Row)
				}
			}
			got := ts.allProducts(partner)
			var ids []string
			for id := range got {
				ids = append(ids, strings.TrimPrefix(id, partner+":"))
			}
			sort.Strings(ids)
			if strings.Join(ids, ",") != strings.Join(validSKUs, ",") {
				t.Errorf("searchable products = %v, want %v", ids, validSKUs)
			}
			p := got[partner+":A1"]
			if p.Price != 12900 || p.Currency != "KRW" || p.Title != "Wireless Earbuds Pro" || p.Brand != "Sonic" {
				t.Errorf("A1 = %+v", p)
			}
			// Naver EP lists only sellable items: it has no stock column.
			if g := got[partner+":A6"]; c.format != schemas.FormatNaverEP && g.Availability != schemas.OutOfStock {
				t.Errorf("A6 availability = %q, want out_of_stock", g.Availability)
			}
			res := ts.search(url.Values{"q": {"무선"}, "partner": {partner}})
			if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != partner+":A2" {
				t.Errorf("search 무선 = %+v, want only A2", res)
			}
			res = ts.search(url.Values{"q": {"earbuds"}, "partner": {partner}, "category": {"Audio"}})
			if res.Total != 1 || res.Hits[0].ID != partner+":A1" {
				t.Errorf("search earbuds in Audio = %d hits, want A1", res.Total)
			}
			r := ts.do("GET", "/v1/products/"+url.PathEscape(partner+":A3"), "", nil, "")
			if r.Status != http.StatusOK {
				t.Errorf("get product: %d %s", r.Status, r.Body)
			}
		})
	}
}

func TestReuploadChangesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	file := delimited(testCatalog, ",")
	first := ts.uploadOK("acme", key, file, "mode=full")
	if first.Counts.Accepted != 5 {
		t.Fatalf("first upload accepted %d, want 5", first.Counts.Accepted)
	}
	before := ts.allProducts("acme")

	again := ts.uploadOK("acme", key, file, "mode=full")
	if again.Counts.Accepted != 0 || again.Counts.Unchanged != 5 || again.Counts.Deleted != 0 || again.Counts.Rejected != 2 {
		t.Errorf("re-upload counts = %+v, want 0 accepted, 5 unchanged, 2 rejected", again.Counts)
	}
	after := ts.allProducts("acme")
	for id, p := range before {
		if after[id].Version != p.Version {
			t.Errorf("%s got a new version on an unchanged re-upload: %d → %d", id, p.Version, after[id].Version)
		}
	}

	// A7 leaves the feed, A1 gets cheaper.
	changed := []catalogRow{}
	for _, r := range testCatalog {
		switch r.SKU {
		case "A7":
			continue
		case "A1":
			r.Price = "9900"
		}
		changed = append(changed, r)
	}
	third := ts.uploadOK("acme", key, delimited(changed, ","), "mode=full")
	if third.Counts.Accepted != 1 || third.Counts.Unchanged != 3 || third.Counts.Deleted != 1 {
		t.Errorf("third upload counts = %+v, want 1 accepted, 3 unchanged, 1 deleted", third.Counts)
	}
	now := ts.allProducts("acme")
	if _, ok := now["acme:A7"]; ok || len(now) != 4 {
		t.Errorf("after a full upload without A7: %d products, A7 present = %v", len(now), ok)
	}
	if now["acme:A1"].Price != 9900 {
		t.Errorf("A1 price in search = %d, want 9900", now["acme:A1"].Price)
	}

	// A delta upload only touches what it lists.
	delta := ts.uploadOK("acme", key, delimited([]catalogRow{{"B1", "Blender", "Acme", []string{"Home"}, "50000", "in stock"}}, ","), "mode=delta")
	if delta.Counts.Accepted != 1 || delta.Counts.Deleted != 0 {
		t.Errorf("delta counts = %+v", delta.Counts)
	}
	if n := len(ts.allProducts("acme")); n != 5 {
		t.Errorf("after delta: %d products, want 5", n)
	}
	// A delta row flagged deleted removes just that product.
	ts.setMapping("acme", key, `{"fields": {"id": "sku", "title": "name", "price": "price", "deleted": "deleted"}, "defaults": {"currency": "KRW"}}`)
	del := ts.uploadOK("acme", key, []byte("sku,name,price,deleted\nA3,Electric Kettle,15000,yes\nZZ,Never listed,1,yes\n"), "mode=delta")
	if del.Counts.Accepted != 1 || del.Counts.Unchanged != 1 || del.Counts.Deleted != 1 {
		t.Errorf("delta delete counts = %+v, want 1 accepted (A3), 1 unchanged (unknown ZZ), 1 deleted", del.Counts)
	}
	left := ts.allProducts("acme")
	if _, ok := left["acme:A3"]; ok || len(left) != 4 {
		t.Errorf("after deleting A3: %d products, A3 present = %v", len(left), ok)
	}
	if r := ts.do("GET", "/v1/products/acme:A3", "", nil, ""); r.Status != http.StatusNotFound {
		t.Errorf("deleted product answers %d", r.Status)
	}

	// Price history reaches the analytics files.
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := parquetsink.ReadTable[schemas.PriceHistoryRow](ts.dir+"/analytics", schemas.TablePriceHistory)
		if err == nil {
			found := false
			for _, r := range rows {
				if r.ProductID == "acme:A1" && r.OldPrice == 12900 && r.NewPrice == 9900 && r.Currency == "KRW" {
					found = true
				}
			}
			if found {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("price history has no A1 12900→9900 row (err %v, rows %+v)", err, rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Each table's files are written on their own, so the runs may come later.
	for {
		runs, err := parquetsink.ReadTable[schemas.UploadRunRow](ts.dir+"/analytics", schemas.TableUploadRuns)
		if err == nil && len(runs) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload runs = %d (err %v), want at least 3", len(runs), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadInputIsExplainedAndServiceKeepsServing(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	noMap := ts.addPartner("nomap")

	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/3)
	}
	cases := []struct {
		name    string
		partner string
		key     string
		file    []byte
		query   string
		status  int
	}{
		{"empty file", "acme", key, nil, "", http.StatusUnprocessableEntity},
		{"binary garbage", "acme", key, garbage, "", http.StatusUnsupportedMediaType},
		{"csv sent as parquet", "acme", key, delimited(testCatalog, ","), "format=parquet", http.StatusUnsupportedMediaType},
		{"unknown format", "acme", key, delimited(testCatalog, ","), "format=xlsx", http.StatusBadRequest},
		{"unknown mode", "acme", key, delimited(testCatalog, ","), "mode=sometimes", http.StatusBadRequest},
		{"unknown partner", "ghost", testAdminKey, delimited(testCatalog, ","), "", http.StatusNotFound},
		{"missing mapping", "nomap", noMap, delimited(testCatalog, ","), "", http.StatusUnprocessableEntity},
		{"another partner's key", "acme", noMap, delimited(testCatalog, ","), "", http.StatusForbidden},
		{"no key", "acme", "", delimited(testCatalog, ","), "", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.t = t
			r := ts.upload(c.partner, c.key, c.file, c.query)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			r.problem(t)
		})
	}
	ts.t = t

	// A 10 MB single line is one rejected row; the rows around it go through.
	var big bytes.Buffer
	big.WriteString("sku,name,brand,category,price,currency,stock,url\n")
	big.WriteString("X1,Before,Acme,Home,1000,KRW,Y,https://shop.example/x1\n")
	big.WriteString("X2," + strings.Repeat("y", 10<<20) + ",Acme,Home,1000,KRW,Y,https://shop.example/x2\n")
	big.WriteString("X3,After,Acme,Home,1000,KRW,Y,https://shop.example/x3\n")
	st := ts.uploadOK("acme", key, big.Bytes(), "mode=delta")
	if st.State != schemas.StateDone || st.Counts.Accepted != 2 || st.Counts.Rejected != 1 || len(st.Rejections) != 1 || st.Rejections[0].Row != 2 {
		t.Errorf("10 MB line: state %s counts %+v rejections %+v", st.State, st.Counts, st.Rejections)
	}

	if r := ts.do("GET", "/healthz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("healthz after bad input: %d", r.Status)
	}
	if r := ts.do("GET", "/readyz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("readyz after bad input: %d %s", r.Status, r.Body)
	}
	ok := ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=delta")
	if ok.Counts.Accepted != 5 {
		t.Errorf("a good upload after bad ones accepted %d, want 5", ok.Counts.Accepted)
	}
}

// A second process-like system joins the first one's JetStream with --nats
// and the credentials `feedline nats credentials` prints, and runs another
// normalise worker on the same durable consumer.
func TestWorkersShareAStageOverOutsideNATS(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	worker, err := startSystem(ctx, serveConfig{
		DataDir: t.TempDir(),
		NATS:    ts.natsURL(),
		Stages:  []string{"normalise", "ingest"},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := worker.Stop(sctx); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	}()
	if worker.bus.Embedded() {
		t.Fatal("the worker embedded its own server instead of joining")
	}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, decode.GeneratedMapping)
	var file bytes.Buffer
	if err := decode.GenerateCSV(&file, 20_000, 3); err != nil {
		t.Fatal(err)
	}
	st := ts.uploadOK("acme", key, file.Bytes(), "")
	c := st.Counts
	if st.State != schemas.StateDone || c.Read != 20_000 || c.Accepted+c.Rejected != c.Read || c.Indexed != c.Accepted {
		t.Fatalf("upload with two normalise workers: %s %+v", st.State, c)
	}
	if got := ts.productCount(url.Values{"partner": {"acme"}}); int64(got) != c.Accepted {
		t.Errorf("index holds %d products, want %d", got, c.Accepted)
	}
	// 20 raw batches and the closing one, each acknowledged by exactly one
	// of the two workers.
	here := testutil.ToFloat64(ts.sys.metrics.Processed.WithLabelValues("normalise"))
	there := testutil.ToFloat64(worker.metrics.Processed.WithLabelValues("normalise"))
	if here+there != 21 {
		t.Errorf("normalise acknowledged %v here and %v in the worker, want 21 in all", here, there)
	}
	t.Logf("normalise batches: %v in the serving process, %v in the worker", here, there)

	// Each worker follows what the other published: a re-upload is all
	// unchanged, and a shorter full upload deletes exactly what it left out,
	// whichever worker closes it.
	again := ts.uploadOK("acme", key, file.Bytes(), "")
	if again.Counts.Accepted != 0 || again.Counts.Unchanged != c.Accepted {
		t.Errorf("re-upload through two workers: %+v, want %d unchanged", again.Counts, c.Accepted)
	}
	var half bytes.Buffer
	if err := decode.GenerateCSV(&half, 10_000, 3); err != nil {
		t.Fatal(err)
	}
	// It deletes half the catalog, so it is held until confirmed; whichever
	// worker normalised a batch staged it, whichever closes it applies all.
	sub := ts.uploadOK("acme", key, half.Bytes(), "")
	if sub.State != schemas.StateHeld || sub.Hold == nil || sub.Hold.WouldDelete != c.Accepted-sub.Counts.Unchanged {
		t.Fatalf("shorter full upload: %s %+v, want held with %d to delete", sub.State, sub.Hold, c.Accepted-sub.Counts.Unchanged)
	}
	if got := ts.productCount(url.Values{"partner": {"acme"}}); int64(got) != c.Accepted {
		t.Errorf("index holds %d products while the shorter upload is held, want %d", got, c.Accepted)
	}
	sub = ts.decide(sub.ID, key, schemas.DecisionConfirm)
	if sub.State != schemas.StateDone || sub.Counts.Accepted != 0 || sub.Counts.Deleted != c.Accepted-sub.Counts.Unchanged {
		t.Errorf("shorter full upload: %+v, want %d deleted", sub.Counts, c.Accepted-sub.Counts.Unchanged)
	}
	if got := ts.productCount(url.Values{"partner": {"acme"}}); int64(got) != sub.Counts.Unchanged {
		t.Errorf("index holds %d products after the shorter upload, want %d", got, sub.Counts.Unchanged)
	}
}

// A file that passes the first look but cannot be decoded fails its upload
// with the reason, lands on the dead-letter stream, and `feedline dlq` shows it.
func TestCorruptFileFailsUploadAndIsDeadLettered(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	corrupt := append([]byte("PAR1"), bytes.Repeat([]byte{0x15, 0x04, 0x15, 0x80}, 2000)...)
	corrupt = append(corrupt, []byte("PAR1")...)
	st := ts.uploadOK("acme", key, corrupt, "")
	if st.State != schemas.StateFailed || st.Error == "" {
		t.Fatalf("corrupt Parquet upload ended %s (%q), want failed with a reason", st.State, st.Error)
	}
	var out, errOut bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	for {
		out.Reset()
		errOut.Reset()
		code := run(context.Background(), []string{"dlq", "--data", ts.dir, "--nats-listen", ts.natsListen(), "--stage", "ingest"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("feedline dlq exited %d: %s", code, errOut.String())
		}
		if strings.Contains(out.String(), st.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("feedline dlq does not list upload %s:\n%s", st.ID, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("feedline dlq:\n%s", out.String())
	if !strings.Contains(out.String(), "acme") || !strings.Contains(out.String(), "ingest") {
		t.Errorf("dead-letter listing lacks the partner or stage:\n%s", out.String())
	}
	if r := ts.do("GET", "/healthz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("healthz after a corrupt file: %d", r.Status)
	}
}
