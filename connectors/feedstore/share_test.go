package feedstore

import (
	"fmt"
	"testing"
	"time"

	"feedline/schemas"
)

func shopNews(n int) []schemas.FeedEntry {
	out := make([]schemas.FeedEntry, n)
	for i := range out {
		out[i] = schemas.FeedEntry{ID: fmt.Sprintf("01JD%022d", i), Kind: schemas.FeedKindProduct, Author: schemas.Author(schemas.FolloweeShop, "acme"),
			Ref: fmt.Sprintf("acme:sku-%d", i)}
	}
	return out
}

// sharedWith counts the entries of reader's feed that are the very entries
// of author's timeline, not copies.
func sharedWith(s *Store, reader, author string) (shared, all int) {
	feed, tl := s.shardOf(reader).feeds[reader], s.shardOf(author).timelines[author]
	own := map[*schemas.FeedEntry]bool{}
	for _, e := range tl.items {
		own[e] = true
	}
	for _, e := range feed.items {
		if own[e] {
			shared++
		}
	}
	return shared, len(feed.items)
}

func TestFeedsShareTheirAuthorsTimelineEntries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := New()
	news := shopNews(50)
	author := news[0].Author
	for _, e := range news {
		if err := s.AddToTimeline(ctx, author, e, 800); err != nil {
			t.Fatal(err)
		}
	}
	// A follower's feed filled from the timeline, as a follow or a
	// returning reader does, and a fan-out of the next news.
	if err := s.FillFeed(ctx, "u1", append([]schemas.FeedEntry(nil), news...), 800); err != nil {
		t.Fatal(err)
	}
	next := shopNews(51)[50]
	if err := s.AddToTimeline(ctx, author, next, 800); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToFeeds(ctx, []string{"u1", "u2"}, next, 800); err != nil {
		t.Fatal(err)
	}
	if shared, all := sharedWith(s, "u1", author); shared != 51 || all != 51 {
		t.Errorf("u1's feed shares %d of its %d entries with the timeline, want 51 of 51", shared, all)
	}
	if shared, all := sharedWith(s, "u2", author); shared != 1 || all != 1 {
		t.Errorf("u2's feed shares %d of its %d entries, want 1 of 1", shared, all)
	}
	got, err := s.Feed(ctx, "u1", "", 100)
	if err != nil || len(got) != 51 || got[0] != next || got[50] != news[0] {
		t.Errorf("u1's feed reads %d entries (%v), newest %+v", len(got), err, got[0])
	}
}

func TestARestoredStoreSharesCopiesAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := func() time.Time { return time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC) }
	s := New(WithClock(now))
	news := shopNews(30)
	author := news[0].Author
	// The feeds are filled before the timeline holds the news, so each
	// holds copies, as a checkpoint written before sharing does.
	for _, r := range []string{"u1", "u2", "u3"} {
		if err := s.FillFeed(ctx, r, append([]schemas.FeedEntry(nil), news...), 800); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range news {
		if err := s.AddToTimeline(ctx, author, e, 800); err != nil {
			t.Fatal(err)
		}
	}
	if shared, _ := sharedWith(s, "u1", author); shared != 0 {
		t.Fatalf("before the restore %d entries are shared, want copies", shared)
	}
	restored := roundTrip(t, s, now)
	for _, r := range []string{"u1", "u2", "u3"} {
		if shared, all := sharedWith(restored, r, author); shared != 30 || all != 30 {
			t.Errorf("restored %s shares %d of %d entries, want 30 of 30", r, shared, all)
		}
	}
}
