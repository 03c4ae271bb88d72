package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/unicode"

	"feedline/schemas"
)

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func zipBytes(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var out bytes.Buffer
	w := zip.NewWriter(&out)
	for _, f := range files {
		fw, err := w.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func encoded(t *testing.T, e encoding.Encoding, b []byte) []byte {
	t.Helper()
	out, err := e.NewEncoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// latinCatalog is testCatalog with a French title where the Korean one is,
// for Windows-1252.
func latinCatalog() []catalogRow {
	rows := append([]catalogRow(nil), testCatalog...)
	rows[1].Title = "Écouteurs sans fil — crème"
	return rows
}

// merchantRSS is a Google Merchant RSS feed of the test catalog, items
// times over (every copy with its own ids; the bad rows stay bad).
func merchantRSS(rows []catalogRow, times int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title><link>https://shop.example</link>` + "\n")
	for n := range times {
		for _, r := range rows {
			id := r.SKU
			if n > 0 {
				id = fmt.Sprintf("%s-%d", r.SKU, n)
			}
			price := r.Price
			if price != "abc" {
				price += " KRW"
			}
			fmt.Fprintf(&b, "<item><g:id>%s</g:id><title>%s</title><link>https://shop.example/%s</link><g:price>%s</g:price><g:availability>%s</g:availability>"+
				"<g:brand>%s</g:brand><g:product_type>%s</g:product_type><g:image_link>https://img.example/%s.jpg</g:image_link>"+
				"<g:additional_image_link>https://img.example/%s-2.jpg</g:additional_image_link><g:shipping><g:country>KR</g:country><g:price>2500 KRW</g:price></g:shipping></item>\n",
				id, r.Title, id, price, r.Stock, r.Brand, strings.Join(r.Category, " &gt; "), id, id)
		}
	}
	b.WriteString("</channel></rss>\n")
	return b.Bytes()
}

func merchantAtom(rows []catalogRow) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>` + "\n" + `<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0"><title>Shop</title>` + "\n")
	for _, r := range rows {
		price := r.Price
		if price != "abc" {
			price += " KRW"
		}
		fmt.Fprintf(&b, "<entry><g:id>%s</g:id><g:title>%s</g:title><link rel=\"alternate\" href=\"https://shop.example/%s\"/><g:price>%s</g:price><g:availability>%s</g:availability><g:brand>%s</g:brand><g:product_type>%s</g:product_type></entry>\n",
			r.SKU, r.Title, r.SKU, price, r.Stock, r.Brand, strings.Join(r.Category, " &gt; "))
	}
	b.WriteString("</feed>\n")
	return b.Bytes()
}

// Every format, packing and text encoding end to end: upload, then search
// finds exactly the valid rows, the report counts them and names the two
// bad ones by code, and the status says how the file was read.
func TestEveryFormatPackingAndEncodingEndToEnd(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	bz2, err := os.ReadFile("testdata/catalog.tsv.bz2") // delimited(testCatalog, "\t") packed by bzip2(1)
	if err != nil {
		t.Fatal(err)
	}
	csv, tsv := delimited(testCatalog, ","), delimited(testCatalog, "\t")
	header, body, _ := bytes.Cut(csv, []byte("\n"))
	lines := bytes.SplitAfter(body, []byte("\n"))
	part1 := string(header) + "\n" + string(bytes.Join(lines[:3], nil))
	part2 := string(header) + "\n" + string(bytes.Join(lines[3:], nil))
	// Every third row Korean, the rest ASCII, in EUC-KR: the Korean rows must not be lost.
	var thirds []catalogRow
	for i := range 30 {
		r := testCatalog[i%len(testCatalog)]
		r.SKU = fmt.Sprintf("%s-%d", r.SKU, i)
		if r.Title != "" {
			r.Title = fmt.Sprintf("Plain item %d", i)
			if i%3 == 2 {
				r.Title = fmt.Sprintf("무선 청소기 %d", i)
			}
		}
		thirds = append(thirds, r)
	}
	gmMapping := `{"preset": "google_merchant", "defaults": {"currency": "KRW"}}`
	cases := []struct {
		name, mapping string
		file          []byte
		format        string
		compression   string
		charset       string
		read          int64
		title         string // of A2, where there is one
	}{
		{"csv in gzip", customMapping, gzipBytes(csv), schemas.FormatCSV, schemas.CompressionGzip, schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"tsv in bzip2", customMapping, bz2, schemas.FormatTSV, schemas.CompressionBzip2, schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"two csv parts in a zip", customMapping, zipBytes(t, [2]string{"feed/part-1.csv", part1}, [2]string{"__MACOSX/._part-1.csv", "junk"}, [2]string{"feed/part-2.csv", part2}),
			schemas.FormatCSV, schemas.CompressionZip, schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"ndjson in a zip", ndjsonMapping, zipBytes(t, [2]string{"feed.ndjson", string(ndjsonFile(testCatalog))}), schemas.FormatNDJSON, schemas.CompressionZip, schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"parquet in gzip", customMapping, gzipBytes(parquetFile(t, testCatalog)), schemas.FormatParquet, schemas.CompressionGzip, "", 7, "삼성 무선 이어폰"},
		{"google merchant rss", gmMapping, merchantRSS(testCatalog, 1), schemas.FormatGoogleMerchantXML, "", schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"google merchant rss in gzip", gmMapping, gzipBytes(merchantRSS(testCatalog, 1)), schemas.FormatGoogleMerchantXML, schemas.CompressionGzip, schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"google merchant atom", gmMapping, merchantAtom(testCatalog), schemas.FormatGoogleMerchantXML, "", schemas.CharsetUTF8, 7, "삼성 무선 이어폰"},
		{"utf-16le csv with a bom", customMapping, append([]byte{0xFF, 0xFE}, encoded(t, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), csv)...),
			schemas.FormatCSV, "", schemas.CharsetUTF16LE, 7, "삼성 무선 이어폰"},
		{"utf-16be tsv with a bom", customMapping, append([]byte{0xFE, 0xFF}, encoded(t, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), tsv)...),
			schemas.FormatTSV, "", schemas.CharsetUTF16BE, 7, "삼성 무선 이어폰"},
		{"windows-1252 csv", customMapping, encoded(t, charmap.Windows1252, delimited(latinCatalog(), ",")), schemas.FormatCSV, "", schemas.CharsetWindows1252, 7, "Écouteurs sans fil — crème"},
		{"euc-kr tsv", customMapping, encoded(t, korean.EUCKR, tsv), schemas.FormatTSV, "", schemas.CharsetEUCKR, 7, "삼성 무선 이어폰"},
		{"euc-kr, every third row korean", customMapping, encoded(t, korean.EUCKR, delimited(thirds, "\t")), schemas.FormatTSV, "", schemas.CharsetEUCKR, 30, ""},
		{"declared euc-kr", strings.TrimSuffix(customMapping, "}") + `, "charset": "cp949"}`, encoded(t, korean.EUCKR, tsv), schemas.FormatTSV, "", schemas.CharsetEUCKR, 7, "삼성 무선 이어폰"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.t = t
			partner := fmt.Sprintf("fmt-%d", i)
			key := ts.addPartner(partner)
			ts.setMapping(partner, key, c.mapping)
			st := ts.uploadOK(partner, key, c.file, "")
			if st.State != schemas.StateDone || st.Format != c.format || st.Compression != c.compression || st.Charset != c.charset {
				t.Fatalf("upload ended %s as %s/%s/%s (%s), want done as %s/%s/%s", st.State, st.Format, st.Compression, st.Charset, st.Error, c.format, c.compression, c.charset)
			}
			valid := c.read * 5 / 7 // five valid rows in every seven
			if c.read == 30 {
				valid = 30 - 4 - 4 // rows 3, 4 (and 10, 11, ...) of each seven are bad
			}
			want := schemas.Counts{Read: c.read, Accepted: valid, Rejected: c.read - valid, Indexed: valid}
			if st.Counts != want {
				t.Errorf("counts = %+v, want %+v", st.Counts, want)
			}
			codes := map[string]int64{}
			for _, e := range st.IssueSummary {
				codes[e.Code] += e.Count
			}
			if codes[schemas.CodeMissingTitle] == 0 || codes[schemas.CodePriceUnparseable] == 0 || len(codes) != 2 {
				t.Errorf("issue codes %v, want missing_title and price_unparseable", codes)
			}
			got := ts.allProducts(partner)
			if int64(len(got)) != valid {
				t.Errorf("search finds %d products, want %d", len(got), valid)
			}
			if c.title != "" {
				if p := got[partner+":A2"]; p.Title != c.title {
					t.Errorf("A2 title %q, want %q", p.Title, c.title)
				}
				var ids []string
				for id := range got {
					ids = append(ids, strings.TrimPrefix(id, partner+":"))
				}
				sort.Strings(ids)
				if strings.Join(ids, ",") != strings.Join(validSKUs, ",") {
					t.Errorf("searchable products = %v, want %v", ids, validSKUs)
				}
			}
			if c.read == 30 {
				if res := ts.search(url.Values{"q": {"청소기"}, "partner": {partner}}); res.Total != 8 {
					t.Errorf("%d Korean rows found, want 8", res.Total)
				}
			}
			if c.format == schemas.FormatGoogleMerchantXML && c.name != "google merchant atom" {
				p := got[partner+":A1"]
				if len(p.ImageURLs) != 2 || p.Attributes["shipping.price"] != "2500 KRW" || p.URL != "https://shop.example/A1" {
					t.Errorf("A1 from XML = %+v", p)
				}
			}
		})
	}
}

// A Google Merchant RSS feed of thousands of items, decoded token by token.
func TestGoogleMerchantXMLOfThousandsOfItems(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("big")
	ts.setMapping("big", key, `{"preset": "google_merchant", "defaults": {"currency": "KRW"}}`)
	st := ts.uploadOK("big", key, merchantRSS(testCatalog, 500), "format=google_merchant") // 3,500 items
	if st.State != schemas.StateDone || st.Format != schemas.FormatGoogleMerchantXML || st.Counts.Read != 3500 || st.Counts.Accepted != 2500 || st.Counts.Rejected != 1000 {
		t.Fatalf("upload %s %s %+v %s", st.State, st.Format, st.Counts, st.Error)
	}
	if n := ts.search(url.Values{"partner": {"big"}, "limit": {"1"}}).Total; n != 2500 {
		t.Errorf("search finds %d, want 2500", n)
	}
}

// Duplicate SKUs in one file, across batches: the last row wins everywhere,
// the product is counted once, the earlier rows are warned.
func TestDuplicateSKUsAcrossBatches(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("dup")
	ts.setMapping("dup", key, customMapping)
	var b bytes.Buffer
	b.WriteString("sku,name,brand,category,price,currency,stock,url\n")
	for i := 1; i <= 3000; i++ {
		sku, price := fmt.Sprintf("D%d", i), 1000
		if i > 2500 {
			sku, price = fmt.Sprintf("D%d", i-2500), 2000 // rows 2501..3000 repeat D1..D500, in another batch
		}
		fmt.Fprintf(&b, "%s,Item %s,Acme,Home,%d,KRW,in stock,https://shop.example/%s\n", sku, sku, price, sku)
	}
	st := ts.uploadOK("dup", key, b.Bytes(), "")
	want := schemas.Counts{Read: 3000, Accepted: 2500, Unchanged: 500, Warnings: 500, Indexed: 2500}
	if st.Counts != want {
		t.Errorf("counts = %+v, want %+v", st.Counts, want)
	}
	if len(st.IssueSummary) != 1 || st.IssueSummary[0].Code != schemas.CodeDuplicateID || st.IssueSummary[0].Count != 500 || st.IssueSummary[0].Rows[0] != 1 {
		t.Errorf("summary %+v", st.IssueSummary)
	}
	all := ts.allProducts("dup")
	if len(all) != 2500 || all["dup:D1"].Price != 2000 || all["dup:D500"].Price != 2000 || all["dup:D501"].Price != 1000 {
		t.Errorf("%d products; D1 %d, D500 %d, D501 %d", len(all), all["dup:D1"].Price, all["dup:D500"].Price, all["dup:D501"].Price)
	}
}

// A Naver summary EP (delta): D deletes, U changes only the fields it
// carries, times are Korea time; price_mobile, mobile_link and shipping are
// kept as attributes.
func TestNaverEPDeltaEndToEnd(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("han")
	ts.setMapping("han", key, `{"preset": "naver_ep"}`)
	full := "id\ttitle\tprice_pc\tprice_mobile\tnormal_price\tlink\tmobile_link\timage_link\tcategory_name1\tcategory_name2\tbrand\tshipping\tclass\tupdate_time\n" +
		"100\t니트 가디건\t12900\t12500\t15900\thttps://han.example/100\thttps://m.han.example/100\thttps://img.example/100.jpg\t패션\t니트\t한샵\t0\tI\t2026-02-27 09:15:00\n" +
		"200\t울 양말 3켤레\t9900\t9900\t\thttps://han.example/200\thttps://m.han.example/200\thttps://img.example/200.jpg\t패션\t양말\t한샵\t2500\tI\t2026-02-27 09:15:00\n" +
		"300\t캐시미어 목도리\t39000\t39000\t\thttps://han.example/300\thttps://m.han.example/300\thttps://img.example/300.jpg\t패션\t목도리\t한샵\t0\tI\t2026-02-27 09:15:00\n"
	st := ts.uploadOK("han", key, encoded(t, korean.EUCKR, []byte(full)), "")
	if st.State != schemas.StateDone || st.Counts.Accepted != 3 || st.Charset != schemas.CharsetEUCKR {
		t.Fatalf("full EP: %s %+v %s", st.State, st.Counts, st.Charset)
	}
	first := ts.allProducts("han")
	before := first["han:100"]
	if before.Attributes["price_mobile"] != "12500" || before.Attributes["mobile_link"] != "https://m.han.example/100" || before.Attributes["shipping"] != "0" ||
		!before.UpdatedAt.Equal(time.Date(2026, 2, 27, 0, 15, 0, 0, time.UTC)) {
		t.Fatalf("100 = %+v", before)
	}
	summary := "id\tprice_pc\tprice_mobile\tnormal_price\tshipping\tclass\tupdate_time\n" +
		"100\t11900\t11500\t\t\tU\t2026-02-28 08:00:00\n" +
		"200\t\t\t\t\tD\t2026-02-28 08:00:00\n" +
		"400\t5000\t\t\t\tU\t2026-02-28 08:00:00\n"
	st = ts.uploadOK("han", key, []byte(summary), "mode=delta")
	if c := st.Counts; st.State != schemas.StateDone || c.Read != 3 || c.Accepted != 2 || c.Rejected != 1 || c.Deleted != 1 {
		t.Fatalf("summary EP: %s %+v %s %+v", st.State, st.Counts, st.Error, st.IssueSummary)
	}
	if len(st.IssueSummary) != 1 || st.IssueSummary[0].Code != schemas.CodeMissingTitle || st.IssueSummary[0].Rows[0] != 3 {
		t.Errorf("an update of an unknown product without a title: %+v", st.IssueSummary)
	}
	all := ts.allProducts("han")
	if _, ok := all["han:200"]; ok || len(all) != 2 {
		t.Errorf("after D: %d products, 200 present %v", len(all), ok)
	}
	if r := ts.do("GET", "/v1/products/han:200", "", nil, ""); r.Status != http.StatusNotFound {
		t.Errorf("deleted product answers %d", r.Status)
	}
	p := all["han:100"]
	if p.Title != "니트 가디건" || p.Price != 15900 || p.SalePrice == nil || *p.SalePrice != 11900 || p.Attributes["price_mobile"] != "11500" ||
		p.Attributes["mobile_link"] != "https://m.han.example/100" || p.URL != before.URL || len(p.ImageURLs) != 1 || p.Brand != "한샵" ||
		!p.UpdatedAt.Equal(time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("100 after U = %+v", p)
	}
	if res := ts.search(url.Values{"q": {"가디건"}, "partner": {"han"}}); res.Total != 1 || res.Hits[0].Price != 15900 {
		t.Errorf("search after U: %+v", res)
	}
	if all["han:300"].Version != first["han:300"].Version || all["han:300"].Price != 39000 {
		t.Errorf("300, not listed in the delta, changed: %+v", all["han:300"])
	}
}

// Files that cannot be read fail once, with the reason.
func TestUnreadableFilesFailWithTheReason(t *testing.T) {
	t.Parallel()
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { c.MaxFileBytes = 4 << 20 })
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)

	// A Parquet file whose schema is not the mapping's: one reason, no rows.
	type other struct {
		Article string `parquet:"article"`
		Label   string `parquet:"label"`
	}
	st := ts.uploadOK("acme", key, parquetOf(t, []other{{"1", "x"}, {"2", "y"}}), "")
	if st.State != schemas.StateFailed || !strings.Contains(st.Error, "columns do not match the mapping") || !strings.Contains(st.Error, `"article"`) || st.Counts.Read != 0 {
		t.Errorf("parquet of another schema: %s %q %+v", st.State, st.Error, st.Counts)
	}
	// A zip bomb is refused by what it declares.
	bomb := zipBytes(t, [2]string{"feed.csv", "sku,name\n" + strings.Repeat("1,"+strings.Repeat("a", 4000)+"\n", 20_000)})
	st = ts.uploadOK("acme", key, bomb, "")
	if st.State != schemas.StateFailed || !strings.Contains(st.Error, "unpacks to more than") {
		t.Errorf("zip bomb: %s %q", st.State, st.Error)
	}
	// A file over the size limit is refused at the door: the answer comes
	// while the client has sent a first part of the 9 MiB it announced, and
	// the connection is closed (a client still writing sees it reset).
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/partners/acme/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", key, 9<<20, strings.Repeat("sku,name\n", 20_000))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "4194304 bytes") {
		t.Errorf("file over the limit: %d %s", res.StatusCode, body)
	}
	// A gzip file that unpacks past the limit fails the upload, not the service.
	big := gzipBytes(bytes.Repeat([]byte("1,"+strings.Repeat("b", 200)+"\n"), 50_000)) // 10 MB from ~50 KB: ratio 200
	st = ts.uploadOK("acme", key, append(gzipBytes([]byte("sku,name,price\n")), big...), "")
	if st.State != schemas.StateFailed || !strings.Contains(st.Error, "unpacks to more than") {
		t.Errorf("gzip past the limit: %s %q", st.State, st.Error)
	}
	if r := ts.do("GET", "/healthz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("healthz: %d", r.Status)
	}
}

// parquetOf writes rows as a Parquet file.
func parquetOf[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
