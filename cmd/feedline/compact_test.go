package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"feedline/connectors/embedsearch"
	"feedline/schemas"
	"feedline/stages/index"
	"feedline/topology"
)

// reuploads is a partner's catalog as it changes from one daily upload to
// the next: some prices fall by half (news), some rise, a few products go
// and a few come.
type reuploads struct {
	rows map[string]catalogRow
	next int
}

func newReuploads(n int) *reuploads {
	r := &reuploads{rows: map[string]catalogRow{}}
	for _, row := range numbered(n, 20000) {
		r.rows[row.SKU] = row
	}
	r.next = n
	return r
}

// change makes upload k's changes and answers what a full upload of the
// result counts: changed or new products accepted, the rest unchanged, the
// products left out deleted.
func (r *reuploads) change(k int) (accepted, unchanged, deleted int64) {
	for i, sku := range slices.Sorted(maps.Keys(r.rows)) {
		row := r.rows[sku]
		switch (i + 7*k) % 40 {
		case 0: // a drop of half: news
			p := 0
			fmt.Sscan(row.Price, &p)
			row.Price = fmt.Sprint(p / 2)
		case 1, 2:
			p := 0
			fmt.Sscan(row.Price, &p)
			row.Price = fmt.Sprint(p + 100)
		case 3:
			delete(r.rows, sku)
			deleted++
			continue
		default:
			unchanged++
			continue
		}
		r.rows[sku] = row
		accepted++
	}
	for range 4 {
		sku := fmt.Sprintf("P%04d", r.next)
		r.rows[sku] = catalogRow{sku, fmt.Sprintf("Kettle model %d", r.next), "Acme", []string{"Home", "Kitchen"}, fmt.Sprint(30000 + r.next), "in stock"}
		r.next++
		accepted++
	}
	return accepted, unchanged, deleted
}

// compactMapping is customMapping with the partner's update time.
const compactMapping = `{"fields": {"id": "sku", "title": "name", "brand": "brand", "category": "category",
  "price": "price", "currency": "currency", "availability": "stock", "updated_at": "updated"}}`

// file is the catalog as uploaded on day k: every row says it was updated
// that day, so the news of changes made then is dated then.
func (r *reuploads) file(k int) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "sku,name,brand,category,price,currency,stock,updated")
	day := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, k).Format(time.RFC3339)
	for _, sku := range slices.Sorted(maps.Keys(r.rows)) {
		row := r.rows[sku]
		fmt.Fprintf(&b, "%s,%q,%s,%s,%s,KRW,%s,%s\n", row.SKU, row.Title, row.Brand, strings.Join(row.Category, " > "), row.Price, row.Stock, day)
	}
	return b.Bytes()
}

// caughtUp waits until every stage has acknowledged the whole product log.
func (ts *testSystem) caughtUp() {
	ts.t.Helper()
	ctx := context.Background()
	eventually(ts.t, "every stage through the product log", func() bool {
		last, err := ts.sys.bus.LastSequence(ctx, topology.StreamProducts)
		if err != nil {
			ts.t.Fatal(err)
		}
		floor, ok, err := ts.sys.bus.ConsumedFloor(ctx, topology.StreamProducts)
		if err != nil {
			ts.t.Fatal(err)
		}
		return ok && floor >= last
	})
}

// indexPages is every page of a search, read from ix directly.
func indexPages(t *testing.T, ix schemas.ProductIndex, r schemas.SearchRequest) []schemas.Product {
	t.Helper()
	var out []schemas.Product
	for {
		res, err := ix.Search(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Hits...)
		if res.NextCursor == "" {
			return out
		}
		r.Cursor = res.NextCursor
	}
}

// shown is what the system shows: every product, a search, and each
// reader's feed.
type shown struct {
	Products map[string]schemas.Product
	Kettles  []string
	Feeds    map[string][]schemas.FeedEntry
}

func (ts *testSystem) shown(readers []string) shown {
	ts.t.Helper()
	s := shown{Products: ts.allProducts("acme"), Feeds: map[string][]schemas.FeedEntry{}}
	for _, p := range ts.search(url.Values{"q": {"kettle model"}, "limit": {"50"}}).Hits {
		s.Kettles = append(s.Kettles, p.ID)
	}
	for _, r := range readers {
		feed, err := ts.sys.feeds.Feed(context.Background(), r, "", 1000)
		if err != nil {
			ts.t.Fatal(err)
		}
		s.Feeds[r] = feed
	}
	return s
}

// sameShown reports, briefly, what got shows that want does not.
func sameShown(t *testing.T, what string, got, want shown) {
	t.Helper()
	for id, p := range want.Products {
		if g, ok := got.Products[id]; !ok || !reflect.DeepEqual(g, p) {
			t.Errorf("%s: product %s is %+v (%v), the running system's %+v", what, id, g, ok, p)
			return
		}
	}
	if len(got.Products) != len(want.Products) {
		t.Errorf("%s: %d products, the running system %d", what, len(got.Products), len(want.Products))
	}
	if !slices.Equal(got.Kettles, want.Kettles) {
		t.Errorf("%s: the search answers %v, the running system %v", what, got.Kettles, want.Kettles)
	}
	for r, feed := range want.Feeds {
		for _, e := range feed {
			if !slices.Contains(got.Feeds[r], e) {
				t.Errorf("%s: %s's feed (%d entries, the running system's %d) lacks %+v", what, r, len(got.Feeds[r]), len(feed), e)
				break
			}
		}
		for _, e := range got.Feeds[r] {
			if !slices.Contains(feed, e) {
				t.Errorf("%s: %s's feed (%d entries, the running system's %d) has %+v more", what, r, len(got.Feeds[r]), len(feed), e)
				break
			}
		}
		if !slices.Equal(got.Feeds[r], feed) {
			t.Errorf("%s: %s's feed differs", what, r)
		}
	}
}

// TestCompactionRebuildsWhatTheRunningSystemShows: after ten re-uploads
// with changes, compaction shrinks the product log, and a rebuild from
// the compacted log (normalise's catalog and the feeds replayed whole at a
// start without checkpoints, the search index rebuilt) shows exactly what
// the running system showed, and judges the next upload alike.
func TestCompactionRebuildsWhatTheRunningSystemShows(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	// Short timelines fill within the test's days of news.
	quiet := func(cfg *serveConfig) {
		cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
		cfg.Feed.TimelineCap, cfg.Feed.FeedCap = 12, 12
	}
	ts := startTestSystemWith(t, dir, quiet)
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, compactMapping)
	bob, eve := ts.shopper("bob"), ts.shopper("eve")
	bob.follow("shop", "acme")
	eve.follow("shop", "acme")
	eventually(t, "the follows", func() bool { return bob.following()+eve.following() == 2 })
	bob.page("", 1) // bob reads: catalog news reaches his feed
	eve.page("", 1)
	cat := newReuploads(300)
	ts.uploadOK("acme", key, cat.file(0), "mode=full")
	for k := 1; k <= 10; k++ {
		cat.change(k)
		ts.uploadOK("acme", key, cat.file(k), "mode=full")
	}
	ts.caughtUp()
	ctx := context.Background()
	msgs, bytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ts.sys.norm.Compact(ctx, ts.sys.compaction)
	if err != nil {
		t.Fatal(err)
	}
	ts.caughtUp()
	afterMsgs, afterBytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	if afterMsgs >= msgs || afterBytes >= bytes {
		t.Fatalf("compaction left %d of %d messages, %d of %d bytes (%+v)", afterMsgs, msgs, afterBytes, bytes, res)
	}
	t.Logf("product log: %d messages, %d bytes; compacted: %d messages, %d bytes (%+v)", msgs, bytes, afterMsgs, afterBytes, res)

	readers := []string{"bob", "eve"}
	running := ts.shown(readers)
	if len(running.Products) == 0 || len(running.Feeds["bob"]) == 0 {
		t.Fatalf("the running system shows %d products and %d entries in bob's feed: the test's data is off", len(running.Products), len(running.Feeds["bob"]))
	}
	// The search index rebuilt from the compacted log holds what the
	// running one holds.
	fresh, err := embedsearch.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := index.Rebuild(ctx, ts.sys.bus, fresh, 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []schemas.SearchRequest{
		{Partners: []string{"acme"}, Sort: "price_asc", Limit: 100},
		{Text: "kettle model", Limit: 50},
	} {
		if got, want := indexPages(t, fresh, r), indexPages(t, ts.sys.index, r); !reflect.DeepEqual(got, want) {
			t.Errorf("search %+v on an index rebuilt from the compacted log: %d hits, the running index %d", r, len(got), len(want))
		}
	}
	ts.stop()

	// Checkpoints are off: the start replays the whole compacted log into
	// normalise's catalog and the feeds.
	ts = startTestSystemWith(t, dir, quiet)
	sameShown(t, "after a rebuild from the compacted log", ts.shown(readers), running)
	accepted, unchanged, deleted := cat.change(11)
	st := ts.uploadOK("acme", key, cat.file(11), "mode=full")
	if st.Counts.Accepted != accepted || st.Counts.Unchanged != unchanged || st.Counts.Deleted != deleted {
		t.Errorf("the upload after the rebuild counts %+v; its changes are %d accepted, %d unchanged, %d deleted", st.Counts, accepted, unchanged, deleted)
	}
}

// changeShare makes upload k's changes on a larger catalog: pct percent
// of the prices change (a fifth of them halve), one product in a thousand
// goes and added come.
func (r *reuploads) changeShare(k, pct, added int) {
	for i, sku := range slices.Sorted(maps.Keys(r.rows)) {
		row := r.rows[sku]
		slot := (i + 7919*k) % 1000
		switch {
		case slot == 999:
			delete(r.rows, sku)
			continue
		case slot >= 10*pct:
			continue
		}
		p := 0
		fmt.Sscan(row.Price, &p)
		if slot%5 == 0 {
			row.Price = fmt.Sprint(p / 2)
		} else {
			row.Price = fmt.Sprint(p + 100)
		}
		r.rows[sku] = row
	}
	for range added {
		sku := fmt.Sprintf("P%07d", r.next)
		r.rows[sku] = catalogRow{sku, fmt.Sprintf("Kettle model %d", r.next), "Acme", []string{"Home", "Kitchen"}, fmt.Sprint(30000 + r.next), "in stock"}
		r.next++
	}
}

// TestCompactionMeasure measures the product log of the whole system
// after a first upload and daily re-uploads, before and after a
// compaction pass, for BENCHMARKS.md; FEEDLINE_COMPACT_ROWS sets the
// catalog's size (it runs only then), FEEDLINE_COMPACT_REUPLOADS (10)
// the re-uploads, each changing 5 % of the prices.
func TestCompactionMeasure(t *testing.T) {
	rows, _ := strconv.Atoi(os.Getenv("FEEDLINE_COMPACT_ROWS"))
	if rows <= 0 {
		t.Skip("a measurement: set FEEDLINE_COMPACT_ROWS")
	}
	reups, _ := strconv.Atoi(os.Getenv("FEEDLINE_COMPACT_REUPLOADS"))
	if reups <= 0 {
		reups = 10
	}
	ts := startTestSystemWith(t, t.TempDir(), nil)
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, compactMapping)
	cat := &reuploads{rows: map[string]catalogRow{}}
	for i := range rows {
		sku := fmt.Sprintf("P%07d", i)
		cat.rows[sku] = catalogRow{sku, fmt.Sprintf("Kettle model %d", i), "Acme", []string{"Home", "Kitchen"}, fmt.Sprint(20000 + i*10), "in stock"}
	}
	cat.next = rows
	start := time.Now()
	ts.uploadOK("acme", key, cat.file(0), "mode=full")
	for k := 1; k <= reups; k++ {
		cat.changeShare(k, 5, rows/2000)
		ts.uploadOK("acme", key, cat.file(k), "mode=full")
	}
	ts.caughtUp()
	uploaded := time.Since(start)
	ctx := context.Background()
	msgs, bytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res, err := ts.sys.norm.Compact(ctx, ts.sys.compaction)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	ts.caughtUp()
	after, afterBytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	if after >= msgs || afterBytes >= bytes {
		t.Errorf("compaction left %d of %d messages, %d of %d bytes", after, msgs, afterBytes, bytes)
	}
	t.Logf("%d products, %d re-uploads (%s): PRODUCTS %d messages, %d bytes; after one pass (%s): %d messages, %d bytes; %+v",
		rows, reups, uploaded.Round(time.Second), msgs, bytes, took.Round(time.Millisecond), after, afterBytes, res)
}

// TestCompactionUnderCheckpoints: with checkpoints on, compaction stays
// within what they cover, may take batches whose news the feeds
// checkpoint holds, and a start from checkpoints written before the pass
// (the log after them replayed, compacted batches included) shows what
// the running system showed.
func TestCompactionUnderCheckpoints(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	ts := startTestSystemWith(t, dir, checkpointed(logs))
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, compactMapping)
	bob := ts.shopper("bob")
	bob.follow("shop", "acme")
	eventually(t, "the follow", func() bool { return bob.following() == 1 })
	bob.page("", 1)
	cat := newReuploads(300)
	ts.uploadOK("acme", key, cat.file(0), "mode=full")
	for k := 1; k <= 10; k++ {
		cat.change(k)
		ts.uploadOK("acme", key, cat.file(k), "mode=full")
	}
	ts.caughtUp()
	ctx := context.Background()
	if err := ts.sys.checkpoints.Write(ctx, ts.sys.checkpointSources...); err != nil {
		t.Fatal(err)
	}
	covered, ok := ts.sys.checkpoints.Covered(topology.StreamProducts)
	if !ok {
		t.Fatal("the checkpoints cover nothing of the product log")
	}
	early := copyDir(t, checkpointDir(dir))
	msgs, bytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ts.sys.norm.Compact(ctx, ts.sys.compaction)
	if err != nil {
		t.Fatal(err)
	}
	ts.caughtUp()
	after, afterBytes, err := ts.sys.bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	// The timeline is far from full, so only the feeds checkpoint lets
	// batches that made news go.
	if res.Horizon > covered {
		t.Errorf("the pass went to %d, past what the checkpoints cover (%d)", res.Horizon, covered)
	}
	if after >= msgs || afterBytes >= bytes || res.Removed < 10 {
		t.Fatalf("compaction left %d of %d messages, %d of %d bytes (%+v)", after, msgs, afterBytes, bytes, res)
	}
	readers := []string{"bob"}
	running := ts.shown(readers)
	ts.stop()
	if err := os.RemoveAll(checkpointDir(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(checkpointDir(dir), os.DirFS(early)); err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	ts = startTestSystemWith(t, dir, checkpointed(logs))
	for _, name := range []string{"normalise-catalog", "feeds"} {
		if logLine(logs, `msg="checkpoint loaded"`, "checkpoint="+name) == "" {
			t.Fatalf("the restart did not load the %s checkpoint:\n%s", name, logs)
		}
	}
	sameShown(t, "after a start from checkpoints", ts.shown(readers), running)
	accepted, unchanged, deleted := cat.change(11)
	st := ts.uploadOK("acme", key, cat.file(11), "mode=full")
	if st.Counts.Accepted != accepted || st.Counts.Unchanged != unchanged || st.Counts.Deleted != deleted {
		t.Errorf("the upload after the restart counts %+v; its changes are %d accepted, %d unchanged, %d deleted", st.Counts, accepted, unchanged, deleted)
	}
}

// TestCompactCommand: feedline compact, beside a running system, removes
// batches that make no news and keeps those that could; the running
// system's catalog follows, and a start replaying the whole compacted log
// shows the same.
func TestCompactCommand(t *testing.T) {
	dir := t.TempDir()
	ts := startTestSystem(t, dir)
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, compactMapping)
	bob := ts.shopper("bob")
	bob.follow("shop", "acme")
	eventually(t, "the follow", func() bool { return bob.following() == 1 })
	bob.page("", 1)
	cat := newReuploads(300)
	ts.uploadOK("acme", key, cat.file(0), "mode=full")
	// Prices only rise: the re-uploads make no news.
	for k := 1; k <= 5; k++ {
		for sku, row := range cat.rows {
			if sku[len(sku)-1] == byte('0'+k) {
				p := 0
				fmt.Sscan(row.Price, &p)
				row.Price = fmt.Sprint(p + 100)
				cat.rows[sku] = row
			}
		}
		ts.uploadOK("acme", key, cat.file(k), "mode=full")
	}
	ts.caughtUp()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"compact", "--data", dir, "--nats-listen", ts.natsListen()}, &out, &errOut); code != 0 {
		t.Fatalf("feedline compact exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "batches removed") || strings.Contains(out.String(), " 0 batches removed") {
		t.Fatalf("feedline compact says %q", out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
	ts.caughtUp()
	readers := []string{"bob"}
	accepted, unchanged, deleted := cat.change(6)
	st := ts.uploadOK("acme", key, cat.file(6), "mode=full")
	if st.Counts.Accepted != accepted || st.Counts.Unchanged != unchanged || st.Counts.Deleted != deleted {
		t.Errorf("the upload after feedline compact counts %+v; its changes are %d accepted, %d unchanged, %d deleted", st.Counts, accepted, unchanged, deleted)
	}
	ts.caughtUp()
	running := ts.shown(readers)
	ts.stop()
	ts = startTestSystem(t, dir)
	sameShown(t, "after a start replaying the log feedline compact compacted", ts.shown(readers), running)
}
