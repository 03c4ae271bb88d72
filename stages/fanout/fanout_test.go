package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"feedline/connectors/feedstore"
	"feedline/connectors/natskv"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// crashingStore fails one feed write part-way through a fan-out, as a
// worker killed mid-chunk would: earlier chunks are written, later ones not.
type crashingStore struct {
	schemas.FeedStore
	failAt  int32
	calls   atomic.Int32
	crashed atomic.Bool
}

func (s *crashingStore) AddToFeeds(ctx context.Context, readers []string, e schemas.FeedEntry, max int) error {
	if s.calls.Add(1) == s.failAt && s.crashed.CompareAndSwap(false, true) {
		return errors.New("worker killed mid-chunk")
	}
	return s.FeedStore.AddToFeeds(ctx, readers, e, max)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testBus(t *testing.T) *pipeline.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	return b
}

func newID() string { return strings.ToLower(ulid.Make().String()) }

// TestRedeliveryAfterACrashMidChunkLeavesNoDuplicateOrGap fans one post out
// to 5,000 followers in chunks of 700; the third chunk fails once. The
// redelivered event finishes the job: every follower holds the post once.
func TestRedeliveryAfterACrashMidChunkLeavesNoDuplicateOrGap(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testRedelivery(t, feedstore.New()) })
	t.Run("redis", func(t *testing.T) { testRedelivery(t, redisStore(t)) })
	t.Run("redis-cluster", func(t *testing.T) { testRedelivery(t, redisClusterStore(t)) })
}

func testRedelivery(t *testing.T, backend schemas.FeedStore) {
	ctx := context.Background()
	bus := testBus(t)
	kv, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		t.Fatal(err)
	}
	posts := natskv.Posts{KV: kv, JS: bus.JetStream()}
	store := &crashingStore{FeedStore: backend, failAt: 3}
	now := time.Now()
	const followers = 5000
	for i := range followers {
		reader := fmt.Sprintf("u%04d", i)
		if _, _, err := store.Follow(ctx, schemas.FollowEdge{ID: newID(), User: reader, Author: "user:alice"}); err != nil {
			t.Fatal(err)
		}
		if err := store.MarkRead(ctx, reader, now); err != nil {
			t.Fatal(err)
		}
	}
	st := &Stage{Store: store, Posts: posts, Policy: feed.Policy{Chunk: 700}, Log: quiet()}
	runner, err := pipeline.NewRunner(bus, pipeline.NewMetrics(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.Configs()[0]
	cfg.Backoff = func(uint64) time.Duration { return 50 * time.Millisecond }
	if _, err := runner.Consumer(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = runner.Run(runCtx, cfg) }()
	defer func() { stop(); wg.Wait() }()

	p := schemas.Post{ID: newID(), Author: "alice", Text: "hello", CreatedAt: now}
	if err := posts.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: "alice", Post: &p, At: now})
	if _, err := bus.Publisher().Publish(ctx, pipeline.Outgoing{Subject: schemas.Subject(schemas.SubjectPost, "alice"), MsgID: p.ID, Data: data}); err != nil {
		t.Fatal(err)
	}
	// Done when every follower holds the post, after the crash.
	reached := func() int {
		n := 0
		for i := range followers {
			feed, err := store.Feed(ctx, fmt.Sprintf("u%04d", i), "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(feed) > 1 || (len(feed) == 1 && feed[0].ID != p.ID) {
				t.Fatalf("follower %d holds %+v, want the post once", i, feed)
			}
			n += len(feed)
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for !store.crashed.Load() || reached() != followers {
		if time.Now().After(deadline) {
			t.Fatalf("fan-out reached %d of %d followers (crashed %v)", reached(), followers, store.crashed.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCatalogNewsCollapsesAndIsCapped(t *testing.T) {
	ctx := context.Background()
	store := feedstore.New()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, u := range []string{"bob", "carol"} {
		if _, _, err := store.Follow(ctx, schemas.FollowEdge{ID: newID(), User: u, Author: "shop:acme"}); err != nil {
			t.Fatal(err)
		}
		if err := store.MarkRead(ctx, u, now); err != nil {
			t.Fatal(err)
		}
	}
	st := &Stage{Store: store, Policy: feed.Policy{NewProductsPerDay: 3, PriceDropPercent: 10}, Now: func() time.Time { return now }, Log: quiet()}
	product := func(sku string, at time.Time) *schemas.Product {
		return &schemas.Product{ID: "acme:" + sku, Partner: "acme", SKU: sku, Title: sku, UpdatedAt: at}
	}
	handle := func(b schemas.ProductBatch) {
		t.Helper()
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.HandleCatalog(ctx, &pipeline.Message{Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	var news []schemas.ProductChange
	for i := range 5 {
		news = append(news, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: fmt.Sprint("acme:n", i), Version: 1, New: true, Product: product(fmt.Sprint("n", i), now)})
	}
	first := schemas.ProductBatch{Upload: "u1", Partner: "acme", At: now, Changes: news}
	handle(first)
	handle(first) // redelivered
	drop := func(v uint64, old, new int64, at time.Time) schemas.ProductChange {
		return schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: "acme:d1", Version: v, Product: product("d1", at), Price: &schemas.PriceChange{Old: old, New: new, Currency: "KRW"}}
	}
	handle(schemas.ProductBatch{Upload: "u2", Partner: "acme", At: now, Changes: []schemas.ProductChange{
		drop(2, 10000, 9500, now.Add(time.Minute)), // 5 %: not news
		drop(3, 9500, 8000, now.Add(2*time.Minute)),
		drop(4, 8000, 7000, now.Add(3*time.Minute)), // same product, same day: collapses
	}})
	handle(schemas.ProductBatch{Upload: "u3", Partner: "acme", At: now, Changes: []schemas.ProductChange{drop(5, 7000, 5000, now.Add(25*time.Hour))}})

	feed, err := store.Feed(ctx, "bob", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var drops []string
	for _, e := range feed {
		kinds[e.Kind]++
		if e.Kind == schemas.FeedKindPriceDrop {
			drops = append(drops, fmt.Sprintf("%d→%d", e.PriceOld, e.PriceNew))
		}
		if e.Author != "shop:acme" {
			t.Errorf("entry %+v not from the shop", e)
		}
	}
	if kinds[schemas.FeedKindProduct] != 3 || kinds[schemas.FeedKindPriceDrop] != 2 || len(feed) != 5 {
		t.Errorf("bob's feed %+v: want 3 new products (the daily cap) and 2 price drops (one per day)", feed)
	}
	// Newest first: each drop carries the prices of the change that made it.
	if want := []string{"7000→5000", "9500→8000"}; !slices.Equal(drops, want) {
		t.Errorf("price drops %v, want %v", drops, want)
	}
	carol, _ := store.Feed(ctx, "carol", "", 100)
	if len(carol) != len(feed) {
		t.Errorf("carol got %d entries, bob %d", len(carol), len(feed))
	}
}

func TestEntryIDIsDeterministicAndTimeOrdered(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	a, b := EntryID(at, "x", "1"), EntryID(at, "x", "1")
	if a != b {
		t.Errorf("same parts, different ids %s %s", a, b)
	}
	if EntryID(at, "x", "2") == a {
		t.Error("different parts, same id")
	}
	if later := EntryID(at.Add(time.Millisecond), "a"); later <= a {
		t.Errorf("a later id %s sorts before %s", later, a)
	}
	if u, err := ulid.ParseStrict(a); err != nil || !ulid.Time(u.Time()).Equal(at) {
		t.Errorf("id %s: %v", a, err)
	}
}

// TestInactiveReaderIsSkippedThenRebuiltOnRead: a follower idle for longer
// than InactiveAfter gets nothing on write, and their next read rebuilds
// the feed from the followees' timelines.
func TestInactiveReaderIsSkippedThenRebuiltOnRead(t *testing.T) {
	ctx := context.Background()
	bus := testBus(t)
	kv, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		t.Fatal(err)
	}
	posts := natskv.Posts{KV: kv, JS: bus.JetStream()}
	store := feedstore.New()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	pol := feed.Policy{InactiveAfter: 30 * 24 * time.Hour}
	for _, u := range []string{"bob", "carol"} {
		if _, _, err := store.Follow(ctx, schemas.FollowEdge{ID: newID(), User: u, Author: "user:alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.MarkRead(ctx, "bob", now.Add(-40*24*time.Hour)); err != nil { // idle for 40 days
		t.Fatal(err)
	}
	if err := store.MarkRead(ctx, "carol", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	st := &Stage{Store: store, Posts: posts, Policy: pol, Now: clock, Log: quiet()}
	p := schemas.Post{ID: newID(), Author: "alice", Text: "hi", CreatedAt: now}
	if err := posts.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: "alice", Post: &p, At: now})
	if err := st.HandleSocial(ctx, &pipeline.Message{Subject: "social.post.alice", Data: data}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := store.Feed(ctx, "bob", "", 10); len(raw) != 0 {
		t.Fatalf("the idle reader's feed was written: %+v", raw)
	}
	if raw, _ := store.Feed(ctx, "carol", "", 10); len(raw) != 1 {
		t.Fatalf("the active reader's feed %+v", raw)
	}
	r := &feed.Reader{Store: store, Posts: posts, Policy: pol, Now: clock}
	page, err := r.Feed(ctx, "bob", "", 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Post == nil || page.Items[0].Post.Text != "hi" {
		t.Fatalf("bob's first read after idling: %+v", page.Items)
	}
	if raw, _ := store.Feed(ctx, "bob", "", 10); len(raw) != 1 {
		t.Errorf("the rebuilt feed was not stored: %+v", raw)
	}
	if last, _ := store.LastRead(ctx, []string{"bob"}); !last[0].Equal(now) {
		t.Errorf("the read was not noted: %v", last[0])
	}
}

// TestStagesAskTheStoreBeforeResuming: after an outage the paused fan-out
// stages poll a store that reports its health (Redis) before fetching
// again; the embedded store has nothing to report.
func TestStagesAskTheStoreBeforeResuming(t *testing.T) {
	for _, c := range (&Stage{Store: feedstore.New()}).Configs() {
		if c.Gate != nil {
			t.Errorf("stage %s gates on the embedded store", c.Name)
		}
	}
	for _, c := range (&Stage{Store: redisStore(t)}).Configs() {
		if c.Gate == nil {
			t.Errorf("stage %s does not ask Redis before resuming", c.Name)
			continue
		}
		if err := c.Gate(t.Context()); err != nil {
			t.Errorf("stage %s: gate with Redis up: %v", c.Name, err)
		}
	}
}

// A compacted batch announces nothing; NewsShown keeps every batch that
// could make news until the shop's timeline is full, then only those
// whose news is dated on or after the day of its oldest entry.
func TestCompactedBatchesAndTheNewsTheyHold(t *testing.T) {
	ctx := context.Background()
	store := feedstore.New()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 9, 0, 0, 0, time.UTC) }
	st := &Stage{Store: store, Policy: feed.Policy{NewProductsPerDay: 3, PriceDropPercent: 10, TimelineCap: 4, FeedCap: 4}, Now: func() time.Time { return day(20) }, Log: quiet()}
	dropOn := func(d int, sku string) schemas.ProductBatch {
		return schemas.ProductBatch{Upload: fmt.Sprint("u", d), Partner: "acme", At: day(d), Changes: []schemas.ProductChange{{
			Kind: schemas.ChangeUpsert, ID: "acme:" + sku, Version: uint64(d), Price: &schemas.PriceChange{Old: 1000, New: 500, Currency: "KRW"},
			Product: &schemas.Product{ID: "acme:" + sku, Partner: "acme", SKU: sku, UpdatedAt: day(d)},
		}}}
	}
	handle := func(b schemas.ProductBatch) {
		t.Helper()
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.HandleCatalog(ctx, &pipeline.Message{Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	compacted := dropOn(1, "c")
	compacted.Compacted = 7
	handle(compacted)
	if tl, _ := store.Timelines(ctx, []string{"shop:acme"}, "", 10); len(tl[0]) != 0 {
		t.Fatalf("a compacted batch made news: %+v", tl[0])
	}
	shown := func(b schemas.ProductBatch) bool {
		t.Helper()
		ok, err := st.NewsShown(ctx)(&b)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	quiet := schemas.ProductBatch{Partner: "acme", At: day(1), Changes: []schemas.ProductChange{{Kind: schemas.ChangeUpsert, ID: "acme:q", Version: 1,
		Price: &schemas.PriceChange{Old: 1000, New: 1100}, Product: &schemas.Product{ID: "acme:q"}}}}
	if shown(quiet) || !shown(dropOn(1, "a")) || shown(compacted) {
		t.Fatal("before the timeline fills, only a batch that could make news is shown")
	}
	for d := 2; d <= 5; d++ {
		handle(dropOn(d, fmt.Sprint("s", d)))
	}
	// Full: its oldest entry is of day 2.
	if shown(dropOn(1, "a")) || !shown(dropOn(2, "b")) || !shown(dropOn(6, "z")) {
		t.Error("once the timeline is full, news of the days before its oldest entry's is not shown, the rest is")
	}
	st.Policy.FeedCap = 8
	if !shown(dropOn(1, "a")) {
		t.Error("with feeds longer than timelines, old news may still be in a feed")
	}
}
