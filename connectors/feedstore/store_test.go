package feedstore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"feedline/connectors/feedstoretest"
	"feedline/schemas"
)

func open(t *testing.T) schemas.FeedStore {
	s := New()
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) { feedstoretest.Run(t, open) }

func TestContractOneShard(t *testing.T) {
	feedstoretest.Run(t, func(t *testing.T) schemas.FeedStore {
		s := New(WithShards(1))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestClosed(t *testing.T) {
	s := New()
	ctx := t.Context()
	e := schemas.FeedEntry{ID: "01JXY0000000000000000000AA", Kind: schemas.FeedKindPost, Author: "user:a", Ref: "p"}
	if err := s.AddToFeeds(ctx, []string{"r"}, e, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	checks["AddToFeeds"] = s.AddToFeeds(ctx, []string{"r"}, e, 10)
	_, checks["Feed"] = s.Feed(ctx, "r", "", 10)
	_, _, checks["Follow"] = s.Follow(ctx, schemas.FollowEdge{ID: e.ID, User: "u", Author: "user:a"})
	_, checks["Celebrities"] = s.Celebrities(ctx)
	_, checks["Claim"] = s.Claim(ctx, "k", "v", time.Second)
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestClaimSweep checks that expired claims do not pile up.
func TestClaimSweep(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(WithShards(1), WithClock(func() time.Time { return now }))
	defer s.Close()
	for i := range 1000 {
		if _, err := s.Claim(t.Context(), fmt.Sprint("k", i), "v", time.Second); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Millisecond)
	}
	// With a 1 s ttl and 10 ms between claims, about 100 are live at once.
	if n := len(s.shards[0].claims); n > 300 {
		t.Errorf("%d claims held, want the expired ones swept", n)
	}
	if v, _ := s.Claim(t.Context(), "k999", "other", time.Second); v != "v" {
		t.Errorf("live claim answered %q, want v", v)
	}
	if v, _ := s.Claim(t.Context(), "k0", "other", time.Second); v != "other" {
		t.Errorf("expired claim answered %q, want other", v)
	}
}

// TestFollowersPageOfManyEdges pages deep into a follower list far larger
// than the contract's, where the B-tree has many levels.
func TestFollowersPageOfManyEdges(t *testing.T) {
	s := New()
	defer s.Close()
	ctx := t.Context()
	const n = 200_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01JXY%021d", i)
		if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: ids[i], User: fmt.Sprint("u", i), Author: "user:star"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Followers(ctx, "user:star", ids[100_000], 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].ID != ids[99_999] || page[2].ID != ids[99_997] {
		t.Errorf("page: %+v", page)
	}
	if _, fs, _ := s.FollowCounts(ctx, "u1", "user:star"); fs != n {
		t.Errorf("followers %d, want %d", fs, n)
	}
}
