package fanout

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"feedline/connectors/feedstore"
	"feedline/connectors/natskv"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// newestOfAll is the brute-force answer: every timeline read whole,
// sorted newest first, duplicates dropped.
func newestOfAll(t *testing.T, store schemas.FeedStore, authors []string, n int) []schemas.FeedEntry {
	t.Helper()
	tls, err := store.Timelines(t.Context(), authors, "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(tls...)
	slices.SortFunc(all, func(a, b schemas.FeedEntry) int { return cmp.Compare(b.ID, a.ID) })
	all = slices.CompactFunc(all, func(a, b schemas.FeedEntry) bool { return a.ID == b.ID })
	return all[:min(n, len(all))]
}

func firstDifference(a, b []schemas.FeedEntry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// socialEvents applies shopper writes to a stage the way the log delivers
// them.
type socialEvents struct {
	t     *testing.T
	st    *Stage
	posts natskv.Posts
	at    time.Time
}

func (s *socialEvents) apply(ev schemas.SocialEvent) {
	s.t.Helper()
	s.at = s.at.Add(time.Second)
	if ev.ID == "" {
		ev.ID = EntryID(s.at, ev.Kind, ev.User, ev.Target)
	}
	ev.At = s.at
	data, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.st.HandleSocial(s.t.Context(), &pipeline.Message{Subject: "social.x." + ev.User, Data: data}); err != nil {
		s.t.Fatalf("%s by %s: %v", ev.Kind, ev.User, err)
	}
}

func (s *socialEvents) follow(user, author string) {
	s.apply(schemas.SocialEvent{Kind: schemas.SocialFollow, User: user, Target: schemas.Author(schemas.FolloweeUser, author)})
}

func (s *socialEvents) unfollow(user, author string) {
	s.apply(schemas.SocialEvent{Kind: schemas.SocialUnfollow, User: user, Target: schemas.Author(schemas.FolloweeUser, author)})
}

func (s *socialEvents) post(author string) string {
	s.t.Helper()
	p := schemas.Post{ID: EntryID(s.at.Add(time.Second), "post", author), Author: author, Text: "hi", CreatedAt: s.at}
	if err := s.posts.Put(s.t.Context(), p); err != nil {
		s.t.Fatal(err)
	}
	s.apply(schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: author, Post: &p})
	return p.ID
}

func (s *socialEvents) deletePost(author, id string) {
	s.apply(schemas.SocialEvent{Kind: schemas.SocialPostDelete, User: author, PostID: id})
}

func wholeFeed(t *testing.T, store schemas.FeedStore, reader string) []schemas.FeedEntry {
	t.Helper()
	got, err := store.Feed(t.Context(), reader, "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRebuildGivesWhatFanOutGave: one reader reads all along and gets
// every entry by fan-out, another of the same followees reads for the
// first time at the end and gets the feed rebuilt; both hold the same,
// full feed, through a busy author, deletions and an unfollow.
func TestRebuildGivesWhatFanOutGave(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testRebuildGivesWhatFanOutGave(t, feedstore.New()) })
	t.Run("redis", func(t *testing.T) { testRebuildGivesWhatFanOutGave(t, redisStore(t)) })
	t.Run("redis-cluster", func(t *testing.T) { testRebuildGivesWhatFanOutGave(t, redisClusterStore(t)) })
}

func testRebuildGivesWhatFanOutGave(t *testing.T, store schemas.FeedStore) {
	ctx := context.Background()
	bus := testBus(t)
	kv, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		t.Fatal(err)
	}
	posts := natskv.Posts{KV: kv, JS: bus.JetStream()}
	now := time.Now()
	pol := feed.Policy{FeedCap: 60, TimelineCap: 60}
	st := &Stage{Store: store, Posts: posts, Policy: pol, Log: quiet()}
	ev := &socialEvents{t: t, st: st, posts: posts, at: now.Add(-time.Hour)}
	if err := store.MarkRead(ctx, "active", now); err != nil {
		t.Fatal(err)
	}
	authors := []string{"busy", "quiet", "gone", "rare"}
	for _, r := range []string{"active", "idle"} {
		for _, a := range authors {
			ev.follow(r, a)
		}
	}
	var deleted []string
	for i := range 200 {
		a := "busy"
		switch {
		case i%5 == 1:
			a = "quiet"
		case i%3 == 2:
			a = "gone"
		case i%40 == 7:
			a = "rare"
		}
		id := ev.post(a)
		if i%17 == 0 {
			deleted = append(deleted, id)
			ev.deletePost(a, id)
		}
	}
	for range 70 { // more than a third of the newest entries are busy's
		ev.post("busy")
	}
	ev.post("active") // the readers' own posts are in their feeds
	ev.post("idle")
	ev.unfollow("active", "gone")
	ev.unfollow("idle", "gone")

	fanned := wholeFeed(t, store, "active")
	if len(fanned) != pol.FeedCap {
		t.Fatalf("after the unfollow the active reader's feed holds %d entries, want it filled to the cap %d", len(fanned), pol.FeedCap)
	}
	for _, e := range fanned {
		if e.Author == "user:gone" || slices.Contains(deleted, e.ID) || e.Author == "user:idle" {
			t.Fatalf("the active reader's feed holds %+v", e)
		}
	}
	if raw := wholeFeed(t, store, "idle"); len(raw) != 0 {
		t.Fatalf("the idle reader's feed holds %d entries: fan-out should have skipped them", len(raw))
	}
	r := &feed.Reader{Store: store, Posts: posts, Policy: pol}
	if _, err := r.Feed(ctx, "idle", "", 20); err != nil {
		t.Fatal(err)
	}
	rebuilt := wholeFeed(t, store, "idle")
	own := func(feed []schemas.FeedEntry, self string) []schemas.FeedEntry {
		return slices.DeleteFunc(slices.Clone(feed), func(e schemas.FeedEntry) bool { return e.Author == "user:"+self })
	}
	if !slices.Equal(own(rebuilt, "idle"), own(fanned, "active")) {
		t.Errorf("the rebuilt feed (%d entries) differs from the fanned-out one (%d) at %d", len(rebuilt), len(fanned), firstDifference(own(rebuilt, "idle"), own(fanned, "active")))
	}
	want := newestOfAll(t, store, []string{"user:idle", "user:busy", "user:quiet", "user:rare"}, pol.FeedCap)
	if !slices.Equal(rebuilt, want) {
		t.Errorf("the rebuilt feed is not the newest %d entries of the reader's own and followees' timelines", pol.FeedCap)
	}
}
