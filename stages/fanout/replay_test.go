package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"feedline/connectors/feedstore"
	"feedline/connectors/natskv"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// logged is a live system's feed side over a real bus: every write is
// published to the log and applied as delivery would apply it.
type logged struct {
	t     *testing.T
	bus   *pipeline.Bus
	pub   pipeline.JetStreamPublisher
	posts natskv.Posts
	reads natskv.ReadLog
	st    *Stage
}

func newLogged(t *testing.T, store schemas.FeedStore) *logged {
	ctx := t.Context()
	bus := testBus(t)
	kvPosts, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		t.Fatal(err)
	}
	kvReaders, err := bus.KV(ctx, topology.BucketReaders)
	if err != nil {
		t.Fatal(err)
	}
	l := &logged{t: t, bus: bus, pub: bus.Publisher(), posts: natskv.Posts{KV: kvPosts, JS: bus.JetStream()}, reads: natskv.ReadLog{KV: kvReaders}}
	l.st = l.stage(store)
	return l
}

func (l *logged) stage(store schemas.FeedStore) *Stage {
	return &Stage{Store: store, Posts: l.posts, Reads: l.reads, Log: quiet()}
}

func (l *logged) reader(store schemas.FeedStore) *feed.Reader {
	return &feed.Reader{Store: store, Posts: l.posts, Reads: l.reads}
}

func (l *logged) write(subject string, ev schemas.SocialEvent) {
	l.t.Helper()
	ev.At = time.Now()
	data, err := json.Marshal(ev)
	if err != nil {
		l.t.Fatal(err)
	}
	subject = schemas.Subject(subject, ev.User)
	if _, err := l.pub.Publish(l.t.Context(), pipeline.Outgoing{Subject: subject, MsgID: ev.ID, Data: data}); err != nil {
		l.t.Fatal(err)
	}
	if err := l.st.HandleSocial(l.t.Context(), &pipeline.Message{Subject: subject, Data: data}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *logged) follow(user, author string) {
	l.write(schemas.SubjectFollow, schemas.SocialEvent{ID: newID(), Kind: schemas.SocialFollow, User: user, Target: schemas.Author(schemas.FolloweeUser, author)})
}

func (l *logged) post(author string) string {
	l.t.Helper()
	p := schemas.Post{ID: newID(), Author: author, Text: "hi", CreatedAt: time.Now()}
	if err := l.posts.Put(l.t.Context(), p); err != nil {
		l.t.Fatal(err)
	}
	l.write(schemas.SubjectPost, schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: author, Post: &p})
	return p.ID
}

// TestReplayRestoresReadersBeforeFanningOut: after a restart the log
// replayed into an empty store gives the reader who read before it the
// same feed fan-out gave them, without a rebuild; a reader who never read
// is skipped as live delivery skipped them and rebuilt on the first read.
func TestReplayRestoresReadersBeforeFanningOut(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		testReplayRestoresReaders(t, feedstore.New(), feedstore.New())
	})
	// Redis keeps activity itself; replay feeds refills a Redis that lost
	// everything.
	t.Run("redis", func(t *testing.T) { testReplayRestoresReaders(t, redisStore(t), redisStore(t)) })
	t.Run("redis-cluster", func(t *testing.T) {
		testReplayRestoresReaders(t, redisClusterStore(t), redisClusterStore(t))
	})
}

func testReplayRestoresReaders(t *testing.T, live, restarted schemas.FeedStore) {
	ctx := context.Background()
	l := newLogged(t, live)
	for _, r := range []string{"ann", "ben"} {
		l.follow(r, "alice")
		l.follow(r, "carol")
	}
	if _, err := l.reader(live).Feed(ctx, "ann", "", 20); err != nil {
		t.Fatal(err)
	}
	for i := range 130 {
		if i%3 == 0 {
			l.post("carol")
		} else {
			l.post("alice")
		}
	}
	before := wholeFeed(t, live, "ann")
	if len(before) != 130 {
		t.Fatalf("ann's feed holds %d of 130 posts before the restart", len(before))
	}
	if raw := wholeFeed(t, live, "ben"); len(raw) != 0 {
		t.Fatalf("ben never read, yet fan-out wrote %d entries to his feed", len(raw))
	}

	st := l.stage(restarted)
	got, err := st.Replay(ctx, l.bus)
	if err != nil {
		t.Fatal(err)
	}
	if got.Readers != 1 || got.Social != 4+130 {
		t.Errorf("replayed %+v, want 1 reader and 134 shopper writes", got)
	}
	if last, _ := restarted.LastRead(ctx, []string{"ann", "ben"}); last[0].IsZero() || !last[1].IsZero() {
		t.Errorf("last reads after the replay %v: want ann's restored and ben's none", last)
	}
	if after := wholeFeed(t, restarted, "ann"); !slices.Equal(after, before) {
		t.Fatalf("after the replay ann's feed holds %d entries, %d before", len(after), len(before))
	}
	if raw := wholeFeed(t, restarted, "ben"); len(raw) != 0 {
		t.Fatalf("the replay wrote %d entries to the feed of ben, who never read", len(raw))
	}
	if _, err := l.reader(restarted).Feed(ctx, "ben", "", 20); err != nil {
		t.Fatal(err)
	}
	if rebuilt := wholeFeed(t, restarted, "ben"); !slices.Equal(rebuilt, before) {
		t.Errorf("ben's first read rebuilt %d entries, want the %d ann has", len(rebuilt), len(before))
	}
}

// postingStore runs during, when set, right after the first timeline read
// of a rebuild: a post fanned out while the rebuild works.
type postingStore struct {
	schemas.FeedStore
	during func()
	done   atomic.Bool
}

func (s *postingStore) Timelines(ctx context.Context, authors []string, before string, limit int) ([][]schemas.FeedEntry, error) {
	out, err := s.FeedStore.Timelines(ctx, authors, before, limit)
	if s.during != nil && s.done.CompareAndSwap(false, true) {
		s.during()
	}
	return out, err
}

// TestPostFannedOutDuringARebuildIsKept: a post handled after the rebuild
// read the timelines reaches the feed by fan-out, which already counts the
// reader as active, and the rebuild's write keeps it.
func TestPostFannedOutDuringARebuildIsKept(t *testing.T) {
	ctx := context.Background()
	store := &postingStore{FeedStore: feedstore.New()}
	l := newLogged(t, store)
	l.follow("ann", "alice")
	first := l.post("alice")
	var late string
	store.during = func() { late = l.post("alice") }
	if _, err := l.reader(store).Feed(ctx, "ann", "", 20); err != nil {
		t.Fatal(err)
	}
	if late == "" {
		t.Fatal("no post was made during the rebuild")
	}
	got := wholeFeed(t, store, "ann")
	if len(got) != 2 || got[0].ID != late || got[1].ID != first {
		t.Errorf("after the rebuild ann's feed holds %+v, want the late post %s and %s", got, late, first)
	}
}

// failingFill fails the first feed fill.
type failingFill struct {
	schemas.FeedStore
	failed atomic.Bool
}

func (s *failingFill) FillFeed(ctx context.Context, reader string, entries []schemas.FeedEntry, max int) error {
	if s.failed.CompareAndSwap(false, true) {
		return errors.New("store went away")
	}
	return s.FeedStore.FillFeed(ctx, reader, entries, max)
}

// TestFailedRebuildIsRetriedOnTheNextRead: a rebuild that fails leaves no
// mark that would pass the reader as fresh; the next read rebuilds.
func TestFailedRebuildIsRetriedOnTheNextRead(t *testing.T) {
	ctx := context.Background()
	store := &failingFill{FeedStore: feedstore.New()}
	l := newLogged(t, store.FeedStore) // fan-out writes; reads fail once
	l.follow("ann", "alice")
	id := l.post("alice")
	r := l.reader(store)
	if _, err := r.Feed(ctx, "ann", "", 20); err == nil {
		t.Fatal("the failed rebuild answered no error")
	}
	seen := 0
	if err := l.reads.Each(ctx, func(string, time.Time) error { seen++; return nil }); err != nil || seen != 0 {
		t.Errorf("a failed read was recorded (%d, %v)", seen, err)
	}
	page, err := r.Feed(ctx, "ann", "", 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != id {
		t.Errorf("the read after a failed rebuild answered %+v, want the post %s", page.Items, id)
	}
	if err := l.reads.Each(ctx, func(string, time.Time) error { seen++; return nil }); err != nil || seen != 1 {
		t.Errorf("the read was recorded %d times (%v), want once", seen, err)
	}
}
