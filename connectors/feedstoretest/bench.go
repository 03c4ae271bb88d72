package feedstoretest

import (
	"fmt"
	"slices"
	"sync"
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
				if err := s.ReplaceFeed(ctx, names[i], prefill, feedLen); err != nil {
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
	if err := s.ReplaceFeed(ctx, "bench-page-reader", entries, feedLen); err != nil {
		b.Fatalf("ReplaceFeed: %v", err)
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
