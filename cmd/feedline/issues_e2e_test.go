package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"feedline/schemas"
)

// merchantTSV is a Google Merchant TSV of 302 rows with Merchant Center's
// own headers: 265 GTINs with a wrong check digit, two rows without a
// price, one unknown availability word, and row 300 repeating row 10's id:
// 88 % of the rows would be lost if a bad GTIN rejected its row.
func merchantTSV() []byte {
	var b bytes.Buffer
	b.WriteString("g:id\tTitle\tg:price\tImage Link\tg:availability\tg:gtin\tlink\tProduct Type\n")
	for row := 1; row <= 302; row++ {
		id := fmt.Sprintf("GM-%03d", row)
		if row == 300 {
			id = "GM-010"
		}
		price, stock, gtin := fmt.Sprintf("%d.00 USD", 10+row), "in stock", "4006381333931"
		switch {
		case row <= 265:
			gtin = "4006381333932" // check digit 2, the digits give 1
		case row == 270 || row == 271:
			price = ""
		case row == 280:
			stock = "ask us"
		}
		fmt.Fprintf(&b, "%s\tTrail item %d\t%s\thttps://img.example/%s.jpg\t%s\t%s\thttps://shop.example/%s\tOutdoor > Camping\n",
			id, row, price, id, stock, gtin, id)
	}
	return b.Bytes()
}

// An optional identifier that is wrong no longer hides a sellable catalog:
// the rows are kept, the GTIN dropped, and the partner told about each one,
// by code, in the summary and the full list.
func TestDiagnosticsOfAMerchantFeed(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("outdoor")
	ts.setMapping("outdoor", key, `{"preset": "google_merchant"}`)
	st := ts.uploadOK("outdoor", key, merchantTSV(), "")
	if st.State != schemas.StateDone || st.Format != schemas.FormatGoogleMerchant {
		t.Fatalf("upload ended %s as %s: %s", st.State, st.Format, st.Error)
	}
	// 302 rows: 2 rejected, row 10 superseded by row 300 (unchanged, warned
	// for that alone: a superseded row is not checked further), 299
	// accepted; 264 + 1 + 1 rows warned.
	want := schemas.Counts{Read: 302, Accepted: 299, Unchanged: 1, Rejected: 2, Warnings: 266, Indexed: 299}
	if st.Counts != want {
		t.Errorf("counts = %+v, want %+v", st.Counts, want)
	}
	summary := map[string]schemas.IssueCount{}
	for _, e := range st.IssueSummary {
		summary[e.Code] = e
	}
	for code, n := range map[string]int64{schemas.CodeGTINCheckDigit: 264, schemas.CodeMissingPrice: 2, schemas.CodeAvailabilityUnknown: 1, schemas.CodeDuplicateID: 1} {
		if summary[code].Count != n {
			t.Errorf("summary of %s: %+v, want %d", code, summary[code], n)
		}
	}
	if len(st.IssueSummary) != 4 || st.IssueSummary[0].Severity != schemas.SeverityError || summary[schemas.CodeDuplicateID].Rows[0] != 10 ||
		fmt.Sprint(summary[schemas.CodeGTINCheckDigit].Rows) != "[1 2 3 4 5]" {
		t.Errorf("summary = %+v", st.IssueSummary)
	}
	if got := ts.search(url.Values{"partner": {"outdoor"}, "limit": {"1"}}).Total; got != 299 {
		t.Errorf("search finds %d products, want 299", got)
	}
	p := ts.allProducts("outdoor")["outdoor:GM-010"]
	if p.Title != "Trail item 300" || p.GTIN != "4006381333931" {
		t.Errorf("GM-010 = %q gtin %q, want the last row's (300)", p.Title, p.GTIN)
	}
	if p := ts.allProducts("outdoor")["outdoor:GM-001"]; p.GTIN != "" || p.Price != 1100 || len(p.ImageURLs) != 1 || p.URL == "" {
		t.Errorf("GM-001 = %+v, want the row with its GTIN dropped", p)
	}

	r := ts.do("GET", "/v1/uploads/"+st.ID+"/issues", key, nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("issues: %d %s", r.Status, r.Body)
	}
	n, codes := 0, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		var i schemas.Issue
		if err := json.Unmarshal(sc.Bytes(), &i); err != nil {
			t.Fatal(err)
		}
		codes[i.Code]++
		n++
	}
	if n != 268 || codes[schemas.CodeGTINCheckDigit] != 264 {
		t.Errorf("issue list: %d issues %v, want 268", n, codes)
	}

	// feedline push prints the summary and writes the whole list.
	file := filepath.Join(t.TempDir(), "feed.tsv")
	if err := os.WriteFile(file, merchantTSV(), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "issues.csv")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"push", file, "--partner", "outdoor", "--api", ts.base, "--key", key, "--quiet", "--issues", list}, &out, &errOut); code != 0 {
		t.Fatalf("push exited %d: %s", code, errOut.String())
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, l := range []string{"warnings 266", "warning gtin_check_digit gtin 264 1, 2, 3, 4, 5", "error missing_price price 2 270, 271", "warning duplicate_id id 1 10"} {
		if !lines[l] {
			t.Errorf("push report lacks the line %q:\n%s", l, out.String())
		}
	}
	f, err := os.Open(list)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != 269 || recs[0][3] != "code" {
		t.Errorf("--issues file: %d records (%v)", len(recs), err)
	}
	if !strings.Contains(errOut.String(), "268 issues written") {
		t.Errorf("push stderr: %s", errOut.String())
	}
	t.Logf("feedline push:\n%s", out.String())
}

// Fifty thousand bad rows: every one is counted and listed, however many.
func TestEveryIssueOfFiftyThousandBadRowsIsListed(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	var b bytes.Buffer
	b.WriteString("sku,name,brand,category,price,currency,stock,url\n")
	for i := 1; i <= 50_010; i++ {
		price := "abc"
		if i%5001 == 0 {
			price = "1000"
		}
		fmt.Fprintf(&b, "S%d,Item %d,Acme,Home,%s,KRW,in stock,https://shop.example/%d\n", i, i, price, i)
	}
	st := ts.uploadOK("acme", key, b.Bytes(), "mode=delta")
	if c := st.Counts; st.State != schemas.StateDone || c.Read != 50_010 || c.Rejected != 50_000 || c.Accepted != 10 {
		t.Fatalf("upload %s: %+v", st.State, c)
	}
	if len(st.IssueSummary) != 1 || st.IssueSummary[0].Count != 50_000 || st.IssueSummary[0].Code != schemas.CodePriceUnparseable || len(st.Rejections) != schemas.MaxReportedRejections {
		t.Errorf("summary %+v, %d rejections listed in the status", st.IssueSummary, len(st.Rejections))
	}
	req, _ := http.NewRequest("GET", ts.base+"/v1/uploads/"+st.ID+"/issues?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ContentLength >= 0 {
		t.Fatalf("issues: %d, length %d; want 200 streamed", res.StatusCode, res.ContentLength)
	}
	r := csv.NewReader(res.Body)
	rows := map[string]bool{}
	for n := 0; ; n++ {
		rec, err := r.Read()
		if err != nil {
			break
		}
		if n > 0 {
			rows[rec[0]] = true
		}
	}
	if len(rows) != 50_000 || !rows["1"] || !rows["50009"] || rows["5001"] || rows["50010"] {
		t.Errorf("%d distinct rows listed, want the 50,000 bad ones", len(rows))
	}
}
