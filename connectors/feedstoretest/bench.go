package feedstoretest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"feedline/schemas"
)

// BenchFanout measures AddToFeeds of one new entry to readers feeds that
// already hold feedLen entries each (the cap, so every write trims one),
// and reports the 50th and 99th percentile of one fan-out in ms.
func BenchFanout(b *testing.B, s schemas.FeedStore, readers, feedLen int) {
	ctx := b.Context()
	g := newIDs()
	names := make([]string, readers)
	for i := range names {
		names[i] = fmt.Sprintf("bench-reader-%05d", i)
	}
	prefill := g.entries(feedLen, "user:a", "shop:b", "user:c")
	// Fill the feeds from a few goroutines: a remote store is round-trip bound.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(names); i += 8 {
				if err := s.FillFeed(ctx, names[i], prefill, feedLen); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("prefill: %v", err)
	}

	var took []time.Duration
	for b.Loop() {
		e := g.entry("user:poster")
		start := time.Now()
		if err := s.AddToFeeds(ctx, names, e, feedLen); err != nil {
			b.Fatalf("AddToFeeds: %v", err)
		}
		took = append(took, time.Since(start))
	}
	reportPercentiles(b, took)
	got, err := s.Feed(ctx, names[len(names)-1], "", feedLen+1)
	if err != nil || len(got) != feedLen || got[0].Author != "user:poster" {
		b.Fatalf("after the fan-out the last reader's feed holds %d entries, newest %v (%v)", len(got), got[:min(1, len(got))], err)
	}
}

// BenchFeedPage measures reading the newest page of 20 of a reader whose
// feed holds feedLen entries, and a page from the middle of it.
func BenchFeedPage(b *testing.B, s schemas.FeedStore, feedLen int) {
	ctx := b.Context()
	g := newIDs()
	entries := g.entries(feedLen, "user:a", "shop:b", "user:c")
	if err := s.FillFeed(ctx, "bench-page-reader", entries, feedLen); err != nil {
		b.Fatalf("FillFeed: %v", err)
	}
	for _, c := range []struct{ name, before string }{
		{"newest", ""},
		{"middle", entries[feedLen/2].ID},
	} {
		b.Run(c.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				page, err := s.Feed(ctx, "bench-page-reader", c.before, 20)
				took = append(took, time.Since(start))
				if err != nil || len(page) != 20 {
					b.Fatalf("Feed: %d entries, %v", len(page), err)
				}
			}
			reportPercentiles(b, took)
		})
	}
}

func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(p float64) float64 {
		i := min(len(took)-1, int(p*float64(len(took))))
		return float64(took[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchRebuild measures rebuild, which must set reader's feed to the
// newest feedCap entries across the timelines of the reader's followees
// (followees authors of perAuthor entries each, their times interleaved).
// It reports how many timeline entries one rebuild read, and checks the
// rebuilt feed against the newest feedCap entries worked out here.
func BenchRebuild(b *testing.B, s schemas.FeedStore, rebuild func(ctx context.Context, s schemas.FeedStore, reader string) error, followees, perAuthor, feedCap int) {
	ctx := b.Context()
	g := newIDs()
	g.last = g.last.Add(-time.Duration(followees*perAuthor*2) * time.Millisecond)
	const reader = "bench-rebuild-reader"
	authors := make([]string, followees)
	for i := range authors {
		authors[i] = schemas.Author(schemas.FolloweeUser, fmt.Sprintf("bench-author-%04d", i))
		if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: g.next(), User: reader, Author: authors[i]}); err != nil {
			b.Fatalf("Follow: %v", err)
		}
	}
	// Each round every author posts once, in a new order.
	byAuthor := make(map[string][]schemas.FeedEntry, followees)
	var all []schemas.FeedEntry
	for range perAuthor {
		for _, a := range shuffled(authors) {
			e := g.entry(a)
			byAuthor[a] = append(byAuthor[a], e)
			all = append(all, e)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(authors); i += 8 {
				for _, e := range byAuthor[authors[i]] {
					if err := s.AddToTimeline(ctx, authors[i], e, perAuthor); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("fill timelines: %v", err)
	}

	counted := &countingStore{FeedStore: s}
	for b.Loop() {
		if err := rebuild(ctx, counted, reader); err != nil {
			b.Fatalf("rebuild: %v", err)
		}
	}
	b.ReportMetric(float64(counted.read.Load())/float64(b.N), "entries-read/op")
	want := newestFirst(all)[:min(len(all), feedCap)]
	got, err := s.Feed(ctx, reader, "", feedCap+1)
	if err != nil {
		b.Fatalf("Feed: %v", err)
	}
	if !slices.Equal(got, want) {
		b.Fatalf("the rebuilt feed holds %d entries, not the newest %d of the followees' timelines", len(got), len(want))
	}
}

// countingStore counts the timeline entries read through it.
type countingStore struct {
	schemas.FeedStore
	read atomic.Int64
}

func (s *countingStore) Timelines(ctx context.Context, authors []string, before string, limit int) ([][]schemas.FeedEntry, error) {
	out, err := s.FeedStore.Timelines(ctx, authors, before, limit)
	for _, l := range out {
		s.read.Add(int64(len(l)))
	}
	return out, err
}
