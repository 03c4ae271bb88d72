package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"feedline/api"
	"feedline/connectors/redisfeed"
	"feedline/connectors/redisfeed/redistest"
	"feedline/schemas"
	"feedline/stages/fanout"
)

// shopper is one signed-in shopper of a test system.
type shopper struct {
	ts    *testSystem
	id    string
	token string
}

func (ts *testSystem) shopper(id string) *shopper {
	ts.t.Helper()
	tok, err := api.SignToken([]byte(testTokenKey), id, time.Hour, time.Now())
	if err != nil {
		ts.t.Fatal(err)
	}
	return &shopper{ts: ts, id: id, token: tok}
}

func (s *shopper) do(method, path, body string) response {
	s.ts.t.Helper()
	if body == "" {
		return s.ts.do(method, path, s.token, nil, "")
	}
	return s.ts.do(method, path, s.token, strings.NewReader(body), "application/json")
}

func (s *shopper) post(text string) string {
	s.ts.t.Helper()
	r := s.do(http.MethodPost, "/v1/posts", fmt.Sprintf(`{"text": %q}`, text))
	if r.Status != http.StatusAccepted {
		s.ts.t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	var a struct{ ID string }
	r.json(s.ts.t, &a)
	return a.ID
}

func (s *shopper) follow(kind, id string) {
	s.ts.t.Helper()
	r := s.do(http.MethodPut, "/v1/follows/"+kind+"/"+id, "")
	if r.Status != http.StatusAccepted && r.Status != http.StatusOK {
		s.ts.t.Fatalf("follow %s/%s: %d %s", kind, id, r.Status, r.Body)
	}
}

func (s *shopper) page(cursor string, limit int) schemas.FeedPage {
	s.ts.t.Helper()
	path := fmt.Sprintf("/v1/feed?limit=%d", limit)
	if cursor != "" {
		path += "&cursor=" + cursor
	}
	r := s.do(http.MethodGet, path, "")
	if r.Status != http.StatusOK {
		s.ts.t.Fatalf("feed: %d %s", r.Status, r.Body)
	}
	var p schemas.FeedPage
	r.json(s.ts.t, &p)
	return p
}

// feedIDs walks the whole feed and returns the item ids in order.
func (s *shopper) feedIDs() []string {
	s.ts.t.Helper()
	var ids []string
	cursor := ""
	for {
		p := s.page(cursor, 100)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// eachFeedBackend runs test on the embedded feed store and, when a test
// Redis and Redis Cluster are configured (.ci/run starts them), on both.
func eachFeedBackend(t *testing.T, test func(t *testing.T, tune func(*serveConfig))) {
	t.Run("embedded", func(t *testing.T) { test(t, func(*serveConfig) {}) })
	t.Run("redis", func(t *testing.T) {
		base := os.Getenv("FEEDLINE_TEST_REDIS")
		if base == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("FEEDLINE_TEST_REDIS is not set; .ci/run starts a Redis for these tests")
			}
			t.Skip("FEEDLINE_TEST_REDIS is not set")
		}
		// Database 7 is this package's own, emptied for each test.
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/7"
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			t.Fatal(err)
		}
		rc := redis.NewClient(opt)
		defer rc.Close()
		if err := rc.FlushDB(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		test(t, func(c *serveConfig) { c.RedisURL = u.String() })
	})
	t.Run("redis-cluster", func(t *testing.T) {
		u := redistest.URL(t, redistest.ClusterEnv)
		// A cluster has one database: the feed state's own keys go.
		emptyFeedState(t, u)
		test(t, func(c *serveConfig) { c.RedisURL = u })
	})
}

// emptyFeedState deletes the keys feedline keeps in the Redis (or Redis
// Cluster) at url.
func emptyFeedState(t *testing.T, url string) {
	t.Helper()
	rc, err := redisfeed.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := redisfeed.DeleteKeys(t.Context(), rc, redisfeed.DefaultPrefix+"*"); err != nil {
		t.Fatal(err)
	}
}

func TestFeedFollowPostReadUnfollowAndDelete(t *testing.T) {
	eachFeedBackend(t, testFeedFollowPostReadUnfollowAndDelete)
}

func testFeedFollowPostReadUnfollowAndDelete(t *testing.T, tune func(*serveConfig)) {
	ts := startTestSystemWith(t, t.TempDir(), tune)
	alice, bob, carol := ts.shopper("alice"), ts.shopper("bob"), ts.shopper("carol")

	bob.follow("user", "alice")
	carol.follow("user", "alice")
	eventually(t, "alice's two followers", func() bool {
		var p schemas.FollowPage
		r := bob.do(http.MethodGet, "/v1/users/alice/followers", "")
		r.json(t, &p)
		return len(p.Items) == 2
	})
	if r := bob.do(http.MethodPut, "/v1/follows/user/alice", ""); r.Status != http.StatusOK {
		t.Errorf("following again: %d %s, want 200", r.Status, r.Body)
	}
	// Both read once, so they are active readers the fan-out writes to.
	bob.page("", 20)
	carol.page("", 20)

	first := alice.post("first post")
	second := alice.post("second post")
	eventually(t, "both posts in bob's feed, newest first", func() bool {
		return slices.Equal(bob.feedIDs(), []string{second, first})
	})
	p := bob.page("", 20)
	it := p.Items[0]
	if it.Kind != schemas.FeedKindPost || it.Author != "user:alice" || it.Post == nil || it.Post.Text != "second post" || it.Time.IsZero() {
		t.Errorf("hydrated item %+v post %+v", it, it.Post)
	}
	if ids := alice.feedIDs(); !slices.Equal(ids, []string{second, first}) {
		t.Errorf("the author's own feed %v", ids)
	}

	// Reading is by token only: nobody reads another's feed.
	if r := ts.do(http.MethodGet, "/v1/feed", "", nil, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.Status)
	}
	forged, _ := api.SignToken([]byte("another-key-0123456789"), "bob", time.Hour, time.Now())
	if r := ts.do(http.MethodGet, "/v1/feed", forged, nil, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("forged token: %d", r.Status)
	}
	dave := ts.shopper("dave")
	if ids := dave.feedIDs(); len(ids) != 0 {
		t.Errorf("dave follows nobody but reads %v", ids)
	}

	// Only the author deletes; a deletion leaves every feed and the timeline.
	if r := carol.do(http.MethodDelete, "/v1/posts/"+first, ""); r.Status != http.StatusForbidden {
		t.Errorf("carol deleting alice's post: %d", r.Status)
	}
	if r := alice.do(http.MethodDelete, "/v1/posts/"+first, ""); r.Status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	eventually(t, "the deleted post gone from every feed", func() bool {
		return slices.Equal(bob.feedIDs(), []string{second}) && slices.Equal(carol.feedIDs(), []string{second}) &&
			slices.Equal(alice.feedIDs(), []string{second})
	})
	var posts schemas.FeedPage
	alice.do(http.MethodGet, "/v1/users/alice/posts", "").json(t, &posts)
	if len(posts.Items) != 1 || posts.Items[0].ID != second {
		t.Errorf("alice's posts after the delete: %+v", posts.Items)
	}
	// The post leaves its store when the delete is applied, which may come
	// after the feeds: until then a second delete is accepted again.
	eventually(t, "a second delete answered 404", func() bool {
		r := alice.do(http.MethodDelete, "/v1/posts/"+first, "")
		if r.Status != http.StatusNotFound && r.Status != http.StatusAccepted {
			t.Fatalf("deleting twice: %d %s", r.Status, r.Body)
		}
		return r.Status == http.StatusNotFound
	})

	// Unfollowing takes the author's items out of the feed.
	if r := bob.do(http.MethodDelete, "/v1/follows/user/alice", ""); r.Status != http.StatusAccepted {
		t.Fatalf("unfollow: %d %s", r.Status, r.Body)
	}
	eventually(t, "alice's items gone from bob's feed", func() bool { return len(bob.feedIDs()) == 0 })
	if ids := carol.feedIDs(); !slices.Equal(ids, []string{second}) {
		t.Errorf("carol's feed changed by bob's unfollow: %v", ids)
	}
}

func TestFeedRefusesBadWritesClearly(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	bob := ts.shopper("bob")
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/v1/posts", `{"text": ""}`, http.StatusUnprocessableEntity},
		{http.MethodPost, "/v1/posts", `{"text": "x", "image_urls": ["ftp://x"]}`, http.StatusUnprocessableEntity},
		{http.MethodPost, "/v1/posts", `{"text": "x", "product_id": "nopartner"}`, http.StatusUnprocessableEntity},
		{http.MethodPost, "/v1/posts", `{"txt": "x"}`, http.StatusBadRequest},
		{http.MethodPut, "/v1/follows/group/x", "", http.StatusNotFound},
		{http.MethodPut, "/v1/follows/user/Bad!", "", http.StatusBadRequest},
		{http.MethodPut, "/v1/follows/user/bob", "", http.StatusUnprocessableEntity},
		{http.MethodGet, "/v1/feed?limit=500", "", http.StatusBadRequest},
		{http.MethodGet, "/v1/feed?cursor=bogus", "", http.StatusBadRequest},
	} {
		r := bob.do(tc.method, tc.path, tc.body)
		if r.Status != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, r.Status, r.Body, tc.status)
			continue
		}
		r.problem(t)
	}
}

func TestFollowLimitRefusesTheNextFollowee(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	ctx := context.Background()
	for i := range schemas.MaxFollowees {
		edge := schemas.FollowEdge{ID: fanout.EntryID(time.Now(), "f", fmt.Sprint(i)), User: "bob", Author: schemas.Author(schemas.FolloweeShop, fmt.Sprintf("shop-%d", i))}
		if _, _, err := ts.sys.feeds.Follow(ctx, edge); err != nil {
			t.Fatal(err)
		}
	}
	bob := ts.shopper("bob")
	r := bob.do(http.MethodPut, "/v1/follows/user/alice", "")
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "5000") {
		t.Fatalf("the 5,001st follow: %d %s", r.Status, r.Body)
	}
	r.problem(t)
	// One already followed is still fine: following is idempotent.
	if r := bob.do(http.MethodPut, "/v1/follows/shop/shop-7", ""); r.Status != http.StatusOK {
		t.Errorf("re-following a followee at the limit: %d %s", r.Status, r.Body)
	}
}

func TestIdempotencyKeyAnswersTheFirstPost(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	alice := ts.shopper("alice")
	send := func(key, text string) response {
		req := strings.NewReader(fmt.Sprintf(`{"text": %q}`, text))
		httpReq, _ := http.NewRequest(http.MethodPost, ts.base+"/v1/posts", req)
		httpReq.Header.Set("Authorization", "Bearer "+alice.token)
		httpReq.Header.Set("Idempotency-Key", key)
		res, err := http.DefaultClient.Do(httpReq)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body [4096]byte
		n, _ := res.Body.Read(body[:])
		return response{Status: res.StatusCode, Header: res.Header, Body: body[:n]}
	}
	first := send("k-1", "once")
	again := send("k-1", "once")
	if first.Status != http.StatusAccepted || again.Status != http.StatusAccepted || string(first.Body) != string(again.Body) {
		t.Fatalf("retry answered %d %s, first %d %s", again.Status, again.Body, first.Status, first.Body)
	}
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("a replayed answer is not marked")
	}
	if r := send("k-1", "another text"); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("the key reused for another post: %d %s", r.Status, r.Body)
	}
	other := send("k-2", "once")
	if other.Status != http.StatusAccepted || string(other.Body) == string(first.Body) {
		t.Errorf("a new key must make a new post: %s", other.Body)
	}
	eventually(t, "two posts on alice's timeline", func() bool { return len(alice.feedIDs()) == 2 })
}

// TestFeedPagesStayStableWhilePostsArrive walks the feed page by page while
// new posts keep arriving: every item older than the first page is
// returned exactly once.
func TestFeedPagesStayStableWhilePostsArrive(t *testing.T) {
	eachFeedBackend(t, testFeedPagesStayStableWhilePostsArrive)
}

func testFeedPagesStayStableWhilePostsArrive(t *testing.T, tune func(*serveConfig)) {
	ts := startTestSystemWith(t, t.TempDir(), tune)
	alice, carol, bob := ts.shopper("alice"), ts.shopper("carol"), ts.shopper("bob")
	bob.follow("user", "alice")
	bob.follow("user", "carol")
	eventually(t, "bob's follows", func() bool {
		var p schemas.FollowPage
		bob.do(http.MethodGet, "/v1/users/bob/following", "").json(t, &p)
		return len(p.Items) == 2
	})
	bob.page("", 1)
	var before []string
	for i := range 120 {
		if i%2 == 0 {
			before = append(before, alice.post(fmt.Sprint("a", i)))
		} else {
			before = append(before, carol.post(fmt.Sprint("c", i)))
		}
	}
	eventually(t, "120 posts fanned out", func() bool { return len(bob.feedIDs()) == 120 })

	var stop atomic.Bool
	var wg sync.WaitGroup
	var during atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() && i < 400; i++ {
			alice.post(fmt.Sprint("late", i))
			during.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var walked []string
	cursor := ""
	for {
		p := bob.page(cursor, 7)
		for _, it := range p.Items {
			walked = append(walked, it.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		time.Sleep(3 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if during.Load() == 0 {
		t.Fatal("no post arrived during the walk")
	}
	seen := map[string]int{}
	for _, id := range walked {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("item %s returned %d times", id, n)
		}
	}
	for _, id := range before {
		if id < walked[0] && seen[id] != 1 {
			t.Errorf("item %s older than the first page returned %d times", id, seen[id])
		}
	}
	if !slices.IsSortedFunc(walked, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Error("the walk is not newest first")
	}
}

// TestCelebrityIsMergedAtReadTime: an author above the threshold is not
// fanned out, yet shows in followers' feeds in order.
func TestCelebrityIsMergedAtReadTime(t *testing.T) {
	eachFeedBackend(t, testCelebrityIsMergedAtReadTime)
}

func testCelebrityIsMergedAtReadTime(t *testing.T, tune func(*serveConfig)) {
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { tune(c); c.Feed.CelebrityFollowers = 2 })
	star, eve := ts.shopper("star"), ts.shopper("eve")
	fans := []*shopper{ts.shopper("bob"), ts.shopper("carol"), ts.shopper("dan")}
	for _, f := range fans {
		f.follow("user", "star")
		f.follow("user", "eve")
	}
	eventually(t, "star's followers", func() bool {
		var p schemas.FollowPage
		star.do(http.MethodGet, "/v1/users/star/followers", "").json(t, &p)
		return len(p.Items) == 3
	})
	for _, f := range fans {
		f.page("", 1)
	}
	e1 := eve.post("eve before")
	s1 := star.post("star news")
	e2 := eve.post("eve after")
	want := []string{e2, s1, e1}
	for _, f := range fans {
		eventually(t, f.id+"'s merged feed", func() bool { return slices.Equal(f.feedIDs(), want) })
	}
	// The star's post reached no feed cache: it was merged at read time.
	ctx := context.Background()
	for _, f := range fans {
		raw, err := ts.sys.feeds.Feed(ctx, f.id, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range raw {
			if e.ID == s1 {
				t.Errorf("the celebrity's post was fanned out to %s", f.id)
			}
		}
	}
	celebs, err := ts.sys.feeds.Celebrities(ctx)
	if err != nil || !slices.Contains(celebs, "user:star") {
		t.Errorf("celebrities %v %v", celebs, err)
	}
	// Paging across the merge: limit 1 walks the same three items.
	var walked []string
	cursor := ""
	for {
		p := fans[0].page(cursor, 1)
		for _, it := range p.Items {
			walked = append(walked, it.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if !slices.Equal(walked, want) {
		t.Errorf("paged one by one: %v, want %v", walked, want)
	}
}

// TestFeedsAreRebuiltFromTheLogAtStart: the embedded feed state is derived;
// a restart rebuilds it from JetStream.
func TestFeedsAreRebuiltFromTheLogAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startTestSystem(t, dir)
	alice, bob := ts.shopper("alice"), ts.shopper("bob")
	bob.follow("user", "alice")
	eventually(t, "the follow", func() bool {
		var p schemas.FollowPage
		bob.do(http.MethodGet, "/v1/users/bob/following", "").json(t, &p)
		return len(p.Items) == 1
	})
	bob.page("", 1)
	ids := []string{alice.post("one"), alice.post("two")}
	slices.Reverse(ids)
	eventually(t, "two posts", func() bool { return slices.Equal(bob.feedIDs(), ids) })
	ts.stop()

	ts = startTestSystem(t, dir)
	bob = ts.shopper("bob")
	if got := bob.feedIDs(); !slices.Equal(got, ids) {
		t.Errorf("after restart bob's feed is %v, want %v", got, ids)
	}
	var p schemas.FollowPage
	bob.do(http.MethodGet, "/v1/users/alice/followers", "").json(t, &p)
	if len(p.Items) != 1 || p.Items[0].User != "bob" {
		t.Errorf("followers after restart %+v", p.Items)
	}
}

// TestShopNewsReachesFollowersHydrated: a followed shop's new products and
// a price drop become feed items carrying the product snapshot.
func TestShopNewsReachesFollowersHydrated(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	bob := ts.shopper("bob")
	bob.follow("shop", "acme")
	eventually(t, "bob follows acme", func() bool {
		var p schemas.FollowPage
		bob.do(http.MethodGet, "/v1/users/bob/following", "").json(t, &p)
		return len(p.Items) == 1 && p.Items[0].Author == "shop:acme"
	})
	bob.page("", 1)
	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")
	eventually(t, "five new-product items", func() bool { return len(bob.feedIDs()) == len(validSKUs) })

	cheaper := slices.Clone(testCatalog)
	for i := range cheaper {
		if cheaper[i].SKU == "A1" {
			cheaper[i].Price = "1000" // from 12,900: far more than 10 % off
		}
	}
	ts.uploadOK("acme", key, delimited(cheaper, ","), "mode=full")
	eventually(t, "the price drop", func() bool { return len(bob.feedIDs()) == len(validSKUs)+1 })
	p := bob.page("", 20)
	top := p.Items[0]
	if top.Kind != schemas.FeedKindPriceDrop || top.Author != "shop:acme" || top.Product == nil || top.Product.ID != "acme:A1" || top.Product.Price != 1000 {
		t.Errorf("newest item %+v product %+v, want acme:A1's price drop with its new price", top, top.Product)
	}
	for _, it := range p.Items[1:] {
		if it.Kind != schemas.FeedKindProduct || it.Product == nil || it.Product.Partner != "acme" {
			t.Errorf("item %+v, want a hydrated new product", it)
		}
	}
}

// TestReplayFeedsRefillsRedisFromTheLog: the Redis feed state is derived;
// "feedline replay feeds" rebuilds it after it was lost.
func TestReplayFeedsRefillsRedisFromTheLog(t *testing.T) {
	eachFeedBackend(t, func(t *testing.T, tune func(*serveConfig)) {
		var cfg serveConfig
		tune(&cfg)
		if cfg.RedisURL == "" {
			t.Skip("the embedded feed state is rebuilt at start (TestFeedsAreRebuiltFromTheLogAtStart)")
		}
		ts := startTestSystemWith(t, t.TempDir(), tune)
		alice, bob := ts.shopper("alice"), ts.shopper("bob")
		bob.follow("user", "alice")
		eventually(t, "the follow", func() bool {
			var p schemas.FollowPage
			bob.do(http.MethodGet, "/v1/users/bob/following", "").json(t, &p)
			return len(p.Items) == 1
		})
		post := alice.post("kept in the log")
		eventually(t, "the post", func() bool { return slices.Equal(bob.feedIDs(), []string{post}) })

		emptyFeedState(t, cfg.RedisURL)
		var out, errOut strings.Builder
		err := replayCmd(t.Context(), []string{"feeds", "--redis", cfg.RedisURL, "--data", ts.dir, "--nats", ts.sys.bus.ClientURL()}, &out, &errOut)
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, errOut.String())
		}
		if !strings.Contains(out.String(), "the last reads of 1 readers, 2 shopper writes") {
			t.Errorf("replay said %q", out.String())
		}
		// Bob's read came back from the log first, so the replay wrote
		// the post to his feed as live delivery had.
		if raw, err := ts.sys.feeds.Feed(t.Context(), "bob", "", 10); err != nil || len(raw) != 1 || raw[0].ID != post {
			t.Errorf("after replay and before a read bob's stored feed holds %+v (%v)", raw, err)
		}
		if got := bob.feedIDs(); !slices.Equal(got, []string{post}) {
			t.Errorf("after replay bob's feed is %v", got)
		}
	})
}

// TestRedisPrefixKeepsFeedStatesApart: two deployments on one Redis, each
// with its own --redis-prefix, see only their own follows, and every key
// written starts with its deployment's prefix.
func TestRedisPrefixKeepsFeedStatesApart(t *testing.T) {
	url := redistest.URL(t, redistest.ServerEnv)
	for _, st := range settings {
		t.Setenv(st.Env, "")
	}
	ctx := t.Context()
	run := fmt.Sprintf("%08x", rand.Uint32())
	rc, err := redisfeed.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	open := func(prefix string) schemas.FeedStore {
		cfg, err := parseServeConfig([]string{"--redis", url, "--redis-prefix", prefix}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		st, err := openFeedStore(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = st.Close()
			if _, err := redisfeed.DeleteKeys(context.Background(), rc, prefix+"*"); err != nil {
				t.Error(err)
			}
		})
		return st
	}
	prefixA, prefixB := "fl-a-"+run+":", "fl-b-"+run+":"
	a, b := open(prefixA), open(prefixB)
	bob, alice := "bob-"+run, schemas.Author(schemas.FolloweeUser, "alice-"+run)
	if _, _, err := a.Follow(ctx, schemas.FollowEdge{ID: fanout.EntryID(time.Now(), "follow", bob, alice), User: bob, Author: alice}); err != nil {
		t.Fatal(err)
	}
	if following, _, err := a.FollowCounts(ctx, bob, ""); err != nil || following != 1 {
		t.Errorf("the deployment that followed: %s follows %d (%v), want 1", bob, following, err)
	}
	if following, followers, err := b.FollowCounts(ctx, bob, alice); err != nil || following != 0 || followers != 0 {
		t.Errorf("the other deployment: %s follows %d, %s has %d followers (%v), want none", bob, following, alice, followers, err)
	}
	keys, err := rc.Keys(ctx, "*"+run+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("the follow wrote no key")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefixA) {
			t.Errorf("key %s is outside the prefix %s", k, prefixA)
		}
	}
}
