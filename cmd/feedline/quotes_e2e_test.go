package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// shopFeed is ten valid products for the quoting tests; title replaces the
// title of product 4.
func shopFeed(title string) []catalogRow {
	var rows []catalogRow
	for i := 1; i <= 10; i++ {
		t := fmt.Sprintf("모니터 %d", i)
		if i == 4 {
			t = title
		}
		rows = append(rows, catalogRow{fmt.Sprintf("M%d", i), t, "Acme", []string{"Computers", "Monitors"}, fmt.Sprint(100000 + i), "in stock"})
	}
	return rows
}

// A Naver EP title that starts with an inch mark is an ordinary character
// in TSV: the whole feed goes through and the title keeps its quote.
func TestNaverEPFeedWithAnInchMarkAcceptsEveryRow(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("naver-shop")
	ts.setMapping("naver-shop", key, `{"preset": "naver_ep"}`)
	const title = `"27인치 QHD 모니터`
	st := ts.uploadOK("naver-shop", key, naverEPFile(shopFeed(title)), "mode=full")
	want := schemas.Counts{Read: 10, Accepted: 10, Indexed: 10}
	if st.State != schemas.StateDone || st.Format != schemas.FormatNaverEP || st.Counts != want || len(st.Rejections) != 0 {
		t.Fatalf("upload ended %s as %s with %+v and rejections %+v, want done as naver_ep with %+v", st.State, st.Format, st.Counts, st.Rejections, want)
	}
	r := ts.do("GET", "/v1/products/"+url.PathEscape("naver-shop:M4"), "", nil, "")
	var p schemas.Product
	r.json(t, &p)
	if r.Status != http.StatusOK || p.Title != title {
		t.Errorf("product M4: %d, title %q, want %q", r.Status, p.Title, title)
	}
	if n := len(ts.allProducts("naver-shop")); n != 10 {
		t.Errorf("%d products searchable, want 10", n)
	}
}

// In a CSV a quote opens a quoted field; one never closed rejects its row
// alone, with a reason that says where and what to do, and the rows after
// it still go through.
func TestCSVFeedWithAnUnclosedQuoteRejectsOnlyThatRow(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("csv-shop")
	ts.setMapping("csv-shop", key, customMapping)
	file := delimited(shopFeed("Broken"), ",")
	file = bytes.Replace(file, []byte("M4,Broken,"), []byte(`M4,"27 inch monitor,`), 1)
	st := ts.uploadOK("csv-shop", key, file, "mode=full")
	if st.State != schemas.StateDone || st.Counts.Read != 10 || st.Counts.Accepted != 9 || st.Counts.Rejected != 1 {
		t.Fatalf("upload ended %s (%s) with %+v, want done with 9 accepted and 1 rejected", st.State, st.Error, st.Counts)
	}
	if len(st.Rejections) != 1 {
		t.Fatalf("rejections %+v, want one", st.Rejections)
	}
	rej := st.Rejections[0]
	for _, want := range []string{"line 5: a quoted field starts here and ends on line 6", `stray quote (")`, `""`, `"quoted": false`} {
		if rej.Row != 4 || !strings.Contains(rej.Reason, want) {
			t.Errorf("rejection %+v, want row 4 with a reason saying %q", rej, want)
		}
	}
	got := ts.allProducts("csv-shop")
	for i := 1; i <= 10; i++ {
		if _, ok := got[fmt.Sprintf("csv-shop:M%d", i)]; ok == (i == 4) {
			t.Errorf("product M%d searchable = %v", i, ok)
		}
	}

	// The same stray quote in a later full feed rejects the row again, but
	// its product is listed: it keeps its last accepted version, nothing
	// is deleted, and the issue names it.
	clean := delimited(shopFeed("Broken"), ",")
	if st := ts.uploadOK("csv-shop", key, clean, "mode=full"); st.State != schemas.StateDone || st.Counts.Accepted != 1 {
		t.Fatalf("clean feed: %s %+v", st.State, st.Counts)
	}
	before := ts.allProducts("csv-shop")["csv-shop:M4"]
	again := ts.uploadOK("csv-shop", key, file, "mode=full")
	if again.State != schemas.StateDone || again.Counts.Rejected != 1 || again.Counts.Deleted != 0 {
		t.Fatalf("full feed with the stray quote again: %s %+v", again.State, again.Counts)
	}
	if len(again.Rejections) != 1 || again.Rejections[0].SourceID != "M4" {
		t.Errorf("the issue does not name its product: %+v", again.Rejections)
	}
	after := ts.allProducts("csv-shop")
	if len(after) != 10 || after["csv-shop:M4"].Title != before.Title || after["csv-shop:M4"].Version != before.Version {
		t.Errorf("after the feed: %d products, M4 %+v (was %+v)", len(after), after["csv-shop:M4"], before)
	}
}

// Upload events published on the bus by anyone but the API are refused:
// partner alpha's file does not land in partner beta's catalog, and alpha's
// upload, whose id the forgery reuses, stays done.
func TestForgedUploadEventsLeaveEveryCatalogAlone(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	alphaKey, betaKey := ts.addPartner("alpha"), ts.addPartner("beta")
	ts.setMapping("alpha", alphaKey, `{"preset": "naver_ep"}`)
	ts.setMapping("beta", betaKey, `{"preset": "naver_ep"}`)
	done := ts.uploadOK("alpha", alphaKey, naverEPFile(shopFeed("모니터 4")), "mode=full")
	if done.State != schemas.StateDone || done.Counts.Accepted != 10 {
		t.Fatalf("alpha's upload: %s %+v", done.State, done.Counts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := ts.sys.ledger.Upload(ctx, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	reused := rec
	reused.Partner = "beta"
	fresh := reused
	fresh.ID = "01forged0000000000000000000"
	for i, ev := range []schemas.UploadEvent{reused, fresh} {
		data, _ := json.Marshal(ev)
		md := pipeline.Metadata{schemas.HeaderPartner: ev.Partner, schemas.HeaderUpload: ev.ID}
		if _, err := ts.sys.bus.Publisher().Publish(ctx, pipeline.Outgoing{
			Subject: schemas.Subject(schemas.SubjectUploaded, "beta"), MsgID: fmt.Sprint("forged-", i), Data: data, Metadata: md,
		}); err != nil {
			t.Fatal(err)
		}
	}
	var refused []schemas.DeadLetter
	deadline := time.Now().Add(30 * time.Second)
	for len(refused) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 forged events dead-lettered after 30s", len(refused))
		}
		time.Sleep(200 * time.Millisecond)
		refused = refused[:0]
		if _, err := ts.sys.bus.Replay(ctx, topology.StreamDLQ, schemas.Subject(schemas.SubjectDLQ, "ingest"), func(m *pipeline.Message) error {
			var d schemas.DeadLetter
			if err := json.Unmarshal(m.Data, &d); err != nil {
				return err
			}
			refused = append(refused, d)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range refused {
		if !strings.HasPrefix(d.Error, "upload event refused") || d.Source.Upload != "" {
			t.Errorf("dead letter %+v, want a refusal without a source", d)
		}
	}
	if n := len(ts.allProducts("beta")); n != 0 {
		t.Errorf("beta's catalog holds %d products", n)
	}
	if n := len(ts.allProducts("alpha")); n != 10 {
		t.Errorf("alpha's catalog holds %d products, want 10", n)
	}
	if st := ts.status(done.ID, alphaKey); st.State != schemas.StateDone || st.Counts != done.Counts || st.Error != "" {
		t.Errorf("alpha's upload is now %s (%q) with %+v, was done with %+v", st.State, st.Error, st.Counts, done.Counts)
	}
}
