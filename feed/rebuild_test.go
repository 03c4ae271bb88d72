package feed

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"feedline/connectors/feedstore"
	"feedline/schemas"
)

// entryID is a feed entry id as fan-out makes one: a ULID with at's time,
// here with entropy from rng.
func entryID(at time.Time, rng *rand.Rand) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(at))
	binary.BigEndian.PutUint64(id[6:], rng.Uint64())
	return strings.ToLower(id.String())
}

// newestOfAll is the brute-force answer: every timeline read whole.
func newestOfAll(t *testing.T, store schemas.FeedStore, authors []string, n int) []schemas.FeedEntry {
	t.Helper()
	tls, err := store.Timelines(t.Context(), authors, "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return merge(n, tls...)
}

// TestNewestEntriesMatchesReadingEverything compares the paged merge with
// reading every timeline whole, for audiences from one author to 2,000 and
// authors from silent to far busier than the rest.
func TestNewestEntriesMatchesReadingEverything(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		authors, n int
		busy       float64 // share of the posts by author 0
	}{
		{1, 20, 0}, {2, 20, 0.5}, {7, 50, 0}, {40, 100, 0.9}, {300, 800, 0.3}, {2000, 800, 0}, {2000, 800, 0.6}, {50, 5, 0},
	} {
		t.Run(fmt.Sprintf("%d authors, newest %d, busy %.1f", tc.authors, tc.n, tc.busy), func(t *testing.T) {
			store := feedstore.New()
			defer store.Close()
			authors := make([]string, tc.authors)
			for i := range authors {
				authors[i] = schemas.Author(schemas.FolloweeUser, fmt.Sprint("a", i))
			}
			posts := 3 * tc.n
			for range posts {
				a := authors[0]
				if rng.Float64() >= tc.busy {
					a = authors[rng.IntN(len(authors))]
				}
				at = at.Add(time.Duration(1+rng.IntN(5000)) * time.Millisecond)
				e := schemas.FeedEntry{ID: entryID(at, rng), Kind: schemas.FeedKindPost, Author: a, Ref: "p"}
				if err := store.AddToTimeline(ctx, a, e, tc.n); err != nil {
					t.Fatal(err)
				}
			}
			got, err := newestEntries(ctx, store, authors, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if want := newestOfAll(t, store, authors, tc.n); !slices.Equal(got, want) {
				t.Fatalf("newest %d: got %d entries, want %d (first difference at %d)", tc.n, len(got), len(want), firstDifference(got, want))
			}
		})
	}
}

func firstDifference(a, b []schemas.FeedEntry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
