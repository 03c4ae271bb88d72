package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"feedline/connectors/feedstoretest"
	"feedline/schemas"
)

func TestContract(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func(testing.TB) *Store) {
		feedstoretest.Run(t, func(t *testing.T) schemas.FeedStore { return open(t) })
	})
}

// TestKeyLayout checks the documented keys and their hash tags: what
// another tool (or a Redis Cluster) sees.
func TestKeyLayout(t *testing.T) {
	t.Parallel()
	backends(t, testKeyLayout)
}

func testKeyLayout(t *testing.T, open func(testing.TB) *Store) {
	s := open(t)
	ctx := t.Context()
	e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "01JXY00000000000000000000B"}
	if err := s.AddToFeeds(ctx, []string{"alice"}, e, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToTimeline(ctx, "user:bob", e, 10); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: "01JXY00000000000000000000C", User: "alice", Author: "user:bob"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRead(ctx, "alice", time.UnixMilli(1_700_000_000_123)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "price:shop1:sku", "ev", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkCelebrity(ctx, "user:bob"); err != nil {
		t.Fatal(err)
	}
	p := s.prefix
	want := map[string][]string{
		p + "feed:{alice}":              {"01JXY00000000000000000000A|post|user:bob|01JXY00000000000000000000B"},
		p + "timeline:{user:bob}":       {"01JXY00000000000000000000A|post|user:bob|01JXY00000000000000000000B"},
		p + "following:{alice}:byid":    {"01JXY00000000000000000000C|user:bob"},
		p + "followers:{user:bob}:byid": {"01JXY00000000000000000000C|alice"},
	}
	for key, members := range want {
		got, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil || !slices.Equal(got, members) {
			t.Errorf("%s: %v (%v), want %v", key, got, err, members)
		}
		if score, _ := s.rdb.ZScore(ctx, key, members[0]).Result(); score != 0 {
			t.Errorf("%s: score %v, want 0", key, score)
		}
	}
	hashes := map[string]map[string]string{
		p + "following:{alice}":    {"user:bob": "01JXY00000000000000000000C"},
		p + "followers:{user:bob}": {"alice": "01JXY00000000000000000000C"},
	}
	for key, fields := range hashes {
		if got, err := s.rdb.HGetAll(ctx, key).Result(); err != nil || fmt.Sprint(got) != fmt.Sprint(fields) {
			t.Errorf("%s: %v (%v), want %v", key, got, err, fields)
		}
	}
	if got, _ := s.rdb.Get(ctx, p+"lastread:{alice}").Result(); got != "1700000000123" {
		t.Errorf("lastread: %q", got)
	}
	if ttl, _ := s.rdb.PTTL(ctx, p+"claim:{price:shop1:sku}").Result(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("claim ttl %v", ttl)
	}
	if got, _ := s.rdb.SMembers(ctx, p+"celebrities").Result(); !slices.Equal(got, []string{"user:bob"}) {
		t.Errorf("celebrities: %v", got)
	}
}

// TestFollowRepairsAuthorSide checks that a redelivered follow completes
// one whose second step (the author's side) never ran.
func TestFollowRepairsAuthorSide(t *testing.T) {
	t.Parallel()
	backends(t, testFollowRepairsAuthorSide)
}

func testFollowRepairsAuthorSide(t *testing.T, open func(testing.TB) *Store) {
	s := open(t)
	ctx := t.Context()
	edge := schemas.FollowEdge{ID: "01JXY00000000000000000000C", User: "alice", Author: "shop:acme"}
	// Only the user's side, as if the process died between the steps.
	if err := followScript.Run(ctx, s.rdb, []string{s.followingKey(edge.User), s.followingByID(edge.User)}, edge.Author, edge.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if _, fs, _ := s.FollowCounts(ctx, "alice", "shop:acme"); fs != 0 {
		t.Fatalf("fixture: %d followers", fs)
	}
	redelivered := edge
	redelivered.ID = "01JXY00000000000000000000D" // another event for the same pair
	added, n, err := s.Follow(ctx, redelivered)
	if err != nil || added || n != 1 {
		t.Fatalf("Follow: added %v, following %d, %v", added, n, err)
	}
	got, err := s.Followers(ctx, "shop:acme", "", 10)
	if err != nil || !slices.Equal(got, []schemas.FollowEdge{edge}) {
		t.Errorf("followers: %+v (%v), want the stored edge %+v", got, err, edge)
	}
}

// TestUnfollowAfterScriptFlush checks the pipelined scripts survive a
// server that lost its script cache.
func TestUnfollowAfterScriptFlush(t *testing.T) {
	t.Parallel()
	backends(t, testUnfollowAfterScriptFlush)
}

func testUnfollowAfterScriptFlush(t *testing.T, open func(testing.TB) *Store) {
	s := open(t)
	ctx := t.Context()
	if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: "01JXY00000000000000000000C", User: "u", Author: "shop:a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Skipf("SCRIPT FLUSH refused: %v", err)
	}
	removed, err := s.Unfollow(ctx, "u", "shop:a")
	if err != nil || !removed {
		t.Fatalf("Unfollow: %v, %v", removed, err)
	}
	if f, fs, _ := s.FollowCounts(ctx, "u", "shop:a"); f != 0 || fs != 0 {
		t.Errorf("counts after unfollow: %d, %d", f, fs)
	}
}

// failFast gives up on a dead server after one dial.
var failFast = WithClientOptions(func(o *redis.Options) {
	o.DialerRetries = 1
	o.DialerRetryTimeout = time.Millisecond
})

// TestUnavailable checks that a server that cannot be reached, at Open or
// later, yields errors wrapping schemas.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dead := fmt.Sprintf("redis://127.0.0.1:%d/0?max_retries=-1&dial_timeout=1s", port)
	if _, err := Open(ctx, dead, failFast); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Open on a closed port: %v, want ErrUnavailable", err)
	}

	if serverBin == "" {
		t.Skip("redis-server is not on PATH: cannot stop a server under a store")
	}
	srv, err := startServer(serverBin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, srv.url+"?max_retries=-1&dial_timeout=1s", failFast)
	if err != nil {
		srv.stop()
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Healthy(ctx); err != nil {
		t.Errorf("Healthy with the server up: %v", err)
	}
	srv.stop()
	e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "r"}
	checks := map[string]error{"Healthy": s.Healthy(ctx), "AddToFeeds": s.AddToFeeds(ctx, []string{"a", "b"}, e, 10)}
	_, checks["Feed"] = s.Feed(ctx, "a", "", 20)
	_, _, checks["Follow"] = s.Follow(ctx, schemas.FollowEdge{ID: e.ID, User: "a", Author: "user:bob"})
	_, checks["LastRead"] = s.LastRead(ctx, []string{"a"})
	_, checks["Claim"] = s.Claim(ctx, "k", "v", time.Second)
	for name, err := range checks {
		if !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("%s with the server gone: %v, want ErrUnavailable", name, err)
		}
	}
	// A cancelled call is the caller's doing, not an outage.
	cancelled, stop := context.WithCancel(ctx)
	stop()
	if _, err := s.Feed(cancelled, "a", "", 20); err == nil || errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Feed with a cancelled context: %v, want a non-outage error", err)
	}
}

func TestPrefixWithBraces(t *testing.T) {
	t.Parallel()
	needServer(t)
	if _, err := Open(t.Context(), testURL, WithPrefix("x{y}:")); err == nil {
		t.Error("a prefix with braces was accepted")
	}
}
