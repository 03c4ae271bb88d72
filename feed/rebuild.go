package feed

import (
	"context"
	"slices"

	"feedline/schemas"
)

// timelinesPerRead bounds the authors of one Timelines call.
const timelinesPerRead = 500

// Rebuild fills reader's feed with the newest feedCap entries of their
// own timeline and every followee's, which is what fan-out on write gives
// an active reader; celebrities (sorted) stay merged at read time.
func Rebuild(ctx context.Context, store schemas.FeedStore, reader string, celebs []string, feedCap int) error {
	authors := []string{schemas.Author(schemas.FolloweeUser, reader)}
	before := ""
	for {
		edges, err := store.Following(ctx, reader, before, 1000)
		if err != nil {
			return err
		}
		for _, e := range edges {
			authors = append(authors, e.Author)
		}
		if len(edges) < 1000 {
			break
		}
		before = edges[len(edges)-1].ID
	}
	authors = slices.DeleteFunc(authors, func(a string) bool {
		_, celebrity := slices.BinarySearch(celebs, a)
		return celebrity
	})
	entries, err := newestEntries(ctx, store, authors, feedCap)
	if err != nil {
		return err
	}
	return store.FillFeed(ctx, reader, entries, feedCap)
}

// newestEntries answers the newest n entries across the authors'
// timelines, newest first, without reading n from each: it reads a short
// page of every author, then reads deeper, in pages twice as long each
// round, only the authors whose oldest entry read is still newer than the
// n-th newest read so far (the others cannot hold any of the newest n).
// Pages double, so there are at most log2(n) rounds, one store read per
// 500 authors each.
func newestEntries(ctx context.Context, store schemas.FeedStore, authors []string, n int) ([]schemas.FeedEntry, error) {
	if n <= 0 || len(authors) == 0 {
		return []schemas.FeedEntry{}, nil
	}
	lists := make([][]schemas.FeedEntry, len(authors))
	pending := make([]int, len(authors))
	for i := range pending {
		pending[i] = i
	}
	limit := min(n, max(1, (2*n+len(authors)-1)/len(authors)))
	for {
		for chunk := range slices.Chunk(pending, timelinesPerRead) {
			names := make([]string, len(chunk))
			for j, i := range chunk {
				names[j] = authors[i]
			}
			tls, err := store.Timelines(ctx, names, "", limit)
			if err != nil {
				return nil, err
			}
			for j, i := range chunk {
				lists[i] = tls[j]
			}
		}
		if limit == n {
			break // no author holds more of the newest n than n
		}
		threshold := "" // the n-th newest id read, once n were read
		if newest := merge(n, lists...); len(newest) == n {
			threshold = newest[n-1].ID
		}
		var deeper []int
		for _, i := range pending {
			l := lists[i]
			if len(l) == limit && (threshold == "" || l[len(l)-1].ID > threshold) {
				deeper = append(deeper, i)
			}
		}
		if len(deeper) == 0 {
			break
		}
		pending, limit = deeper, min(n, 2*limit)
	}
	return merge(n, lists...), nil
}
