package feedstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

// entryAt is a post, or every tenth a price drop with its prices.
func entryAt(i int, author string) schemas.FeedEntry {
	if i%10 == 0 {
		return schemas.FeedEntry{ID: fmt.Sprintf("01JXY%021d", i), Kind: schemas.FeedKindPriceDrop, Author: author, Ref: fmt.Sprint("acme:", i), PriceOld: 20000, PriceNew: int64(15000 - i)}
	}
	return schemas.FeedEntry{ID: fmt.Sprintf("01JXY%021d", i), Kind: schemas.FeedKindPost, Author: author, Ref: fmt.Sprint("p", i)}
}

// fill gives s feeds, timelines, follows both ways, reads, a celebrity
// and claims, as fan-out leaves them.
func fill(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	ctx := t.Context()
	for u := range 40 {
		user := fmt.Sprint("u", u)
		for a := range 5 {
			if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: fmt.Sprintf("e%03d%03d", u, a), User: user, Author: fmt.Sprint("user:u", (u+a+1)%40)}); err != nil {
				t.Fatal(err)
			}
		}
		if u%3 == 0 {
			if err := s.MarkRead(ctx, user, now.Add(-time.Duration(u)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 300 {
		author := fmt.Sprint("user:u", i%40)
		e := entryAt(i, author)
		if err := s.AddToTimeline(ctx, author, e, 50); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToFeeds(ctx, []string{fmt.Sprint("u", (i+1)%40), fmt.Sprint("u", (i+2)%40), fmt.Sprint("u", (i+7)%40)}, e, 20); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkCelebrity(ctx, "shop:big"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key string
		ttl time.Duration
	}{{"new:acme:2026-12-02:0", time.Hour}, {"drop:acme:1:2026-12-02", 48 * time.Hour}} {
		if _, err := s.Claim(ctx, c.key, "held-"+c.key, c.ttl); err != nil {
			t.Fatal(err)
		}
	}
}

// view is everything the store answers, for comparing two stores.
func view(t *testing.T, s *Store) map[string]any {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	var users []string
	for u := range 40 {
		users = append(users, fmt.Sprint("u", u))
	}
	for _, u := range users {
		feed, err := s.Feed(ctx, u, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := s.Timelines(ctx, []string{"user:" + u}, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		following, err := s.Following(ctx, u, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		followers, err := s.Followers(ctx, "user:"+u, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		n, m, err := s.FollowCounts(ctx, u, "user:"+u)
		if err != nil {
			t.Fatal(err)
		}
		out["feed "+u], out["timeline "+u], out["following "+u], out["followers "+u], out["counts "+u] = feed, tl, following, followers, [2]int{n, m}
	}
	last, err := s.LastRead(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	out["last reads"] = last
	celebs, err := s.Celebrities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out["celebrities"] = celebs
	for _, k := range []string{"new:acme:2026-12-02:0", "drop:acme:1:2026-12-02"} {
		v, err := s.Claim(ctx, k, "someone else", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		out["claim "+k] = v
	}
	return out
}

func roundTrip(t *testing.T, s *Store, now func() time.Time) *Store {
	t.Helper()
	ck := pipeline.NewCheckpoints(t.TempDir(), nil)
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Save("feeds", CheckpointVersion, nil, sn.Encode); err != nil {
		t.Fatal(err)
	}
	restored := New(WithClock(now))
	_, ok, err := ck.Load(context.Background(), nil, "feeds", CheckpointVersion, restored.Restore)
	if err != nil || !ok {
		t.Fatalf("load: %v %v", ok, err)
	}
	return restored
}

// TestCheckpointRestoresEverything: a store restored from its checkpoint
// answers every read as the original does, the follow graph on both sides,
// reader activity and unexpired claims included.
func TestCheckpointRestoresEverything(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := New(WithClock(clock))
	fill(t, s, now)
	// An hour and a minute later the first claim has expired: the
	// restored store holds only the other, like the original.
	restored := roundTrip(t, s, func() time.Time { return now.Add(61 * time.Minute) })
	now = now.Add(61 * time.Minute)
	want := view(t, s)
	if got := view(t, restored); !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: restored %v, original %v", k, got[k], want[k])
			}
		}
	}
	if got := restored.shards[restored.shardIndex("new:acme:2026-12-02:0")].claims["new:acme:2026-12-02:0"].value; got != "someone else" {
		t.Errorf("an expired claim came back: it holds %q", got)
	}
	// Restore fills only an empty store.
	if err := restored.Restore(nil); err == nil {
		t.Error("restore into a store in use succeeded")
	}
}

// TestCheckpointCorruptLeavesTheStoreEmpty: a damaged checkpoint is not
// used, and the store it was to fill stays empty for a full replay.
func TestCheckpointCorruptLeavesTheStoreEmpty(t *testing.T) {
	s := New()
	fill(t, s, time.Now())
	dir := t.TempDir()
	ck := pipeline.NewCheckpoints(dir, nil)
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Save("feeds", CheckpointVersion, nil, sn.Encode); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "feeds.ckpt")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if _, ok, err := ck.Load(t.Context(), nil, "feeds", CheckpointVersion, restored.Restore); ok || err != nil {
		t.Fatalf("a corrupt checkpoint was used: %v %v", ok, err)
	}
	if feed, _ := restored.Feed(t.Context(), "u1", "", 10); len(feed) != 0 {
		t.Errorf("the store holds %d entries of a corrupt checkpoint", len(feed))
	}
}

// TestSnapshotWhileWriting copies the store while fan-out writes to it:
// under the race detector, and the copy restores to a consistent graph
// (each edge on both sides).
func TestSnapshotWhileWriting(t *testing.T) {
	s := New()
	ctx := t.Context()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user, author := fmt.Sprint("w", w, "-", i%50), fmt.Sprint("user:a", i%7)
				if i%5 == 4 {
					_, _ = s.Unfollow(ctx, user, author)
				} else {
					_, _, _ = s.Follow(ctx, schemas.FollowEdge{ID: fmt.Sprintf("e%d-%06d", w, i), User: user, Author: author})
				}
				_ = s.AddToFeeds(ctx, []string{user}, entryAt(i, author), 10)
				_ = s.MarkRead(ctx, user, time.Now())
			}
		}()
	}
	for range 20 {
		restored := roundTrip(t, s, time.Now)
		for _, sh := range restored.shards {
			for user, set := range sh.following {
				for author, it := range set.byOther {
					if _, ok := restored.shardOf(author).followers[author].byOther[user]; !ok {
						t.Fatalf("restored edge %+v is missing on the author's side", it.edge)
					}
				}
			}
		}
	}
	close(stop)
	wg.Wait()
}
