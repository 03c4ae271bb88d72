// Package feedstoretest is the behavioural contract of schemas.FeedStore,
// run against every backend: each backend's tests call Run with a function
// that opens a fresh, empty store, and its benchmarks call BenchFanout and
// BenchFeedPage.
//
// What the contract holds a backend to, beyond the interface's comments:
//   - Feeds, timelines and follow lists page newest first by id; before is
//     exclusive, and a walk from page to page sees every item once however
//     many newer items arrive meanwhile.
//   - Entries are the same when their compact forms are; adding one twice
//     stores it once. max below 1 is an error, and so is an entry whose
//     compact form would not read back as itself (an empty id, kind or
//     author, or a '|' in the id, kind or author).
//   - An entry older than every entry of a full feed is not kept.
//   - Empty answers are empty slices, never nil.
//   - MarkRead keeps the latest time it was given, to the millisecond.
//   - Claim needs a positive ttl; once it expires the key can be claimed
//     anew.
package feedstoretest

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"feedline/schemas"
)

// Open returns a new, empty store; it registers its own cleanup with t.
type Open func(t *testing.T) schemas.FeedStore

// Run runs the contract as subtests of t.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(*testing.T, schemas.FeedStore)
	}{
		{"FeedNewestFirst", testFeedNewestFirst},
		{"PagingWhileAdding", testPagingWhileAdding},
		{"AddIsIdempotent", testAddIsIdempotent},
		{"CapTrimsOldest", testCapTrimsOldest},
		{"RemoveFromFeeds", testRemoveFromFeeds},
		{"RemoveAuthorFromFeed", testRemoveAuthorFromFeed},
		{"FillFeed", testFillFeed},
		{"Timelines", testTimelines},
		{"Follow", testFollow},
		{"FollowPaging", testFollowPaging},
		{"Follows", testFollows},
		{"Celebrities", testCelebrities},
		{"LastRead", testLastRead},
		{"Claim", testClaim},
		{"ConcurrentAdds", testConcurrentAdds},
		{"InvalidInput", testInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// ids hands out ULIDs in increasing order, a millisecond apart, the way
// events made one after another get them.
type ids struct{ last time.Time }

func newIDs() *ids { return &ids{last: time.Now().Add(-time.Hour).Truncate(time.Millisecond)} }

func (g *ids) next() string {
	g.last = g.last.Add(time.Millisecond)
	return ulid.MustNew(ulid.Timestamp(g.last), crand.Reader).String()
}

// entry is a new post entry of author, newer than every one before it.
func (g *ids) entry(author string) schemas.FeedEntry {
	return schemas.FeedEntry{ID: g.next(), Kind: schemas.FeedKindPost, Author: author, Ref: g.next()}
}

// entries makes n entries, oldest first, whose authors take turns.
func (g *ids) entries(n int, authors ...string) []schemas.FeedEntry {
	if len(authors) == 0 {
		authors = []string{schemas.Author(schemas.FolloweeUser, "alice")}
	}
	out := make([]schemas.FeedEntry, n)
	for i := range out {
		out[i] = g.entry(authors[i%len(authors)])
	}
	return out
}

func shuffled[T any](s []T) []T {
	s = slices.Clone(s)
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func newestFirst[T any](s []T) []T {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// below is what a page of oldest-first entries must answer.
func below(oldestFirst []schemas.FeedEntry, before string, limit int) []schemas.FeedEntry {
	out := []schemas.FeedEntry{}
	for _, e := range slices.Backward(oldestFirst) {
		if len(out) == limit {
			break
		}
		if before == "" || e.ID < before {
			out = append(out, e)
		}
	}
	return out
}

func add(t *testing.T, s schemas.FeedStore, readers []string, e schemas.FeedEntry, max int) {
	t.Helper()
	if err := s.AddToFeeds(t.Context(), readers, e, max); err != nil {
		t.Fatalf("AddToFeeds %s to %v: %v", e.ID, readers, err)
	}
}

func feed(t *testing.T, s schemas.FeedStore, reader, before string, limit int) []schemas.FeedEntry {
	t.Helper()
	got, err := s.Feed(t.Context(), reader, before, limit)
	if err != nil {
		t.Fatalf("Feed(%s, %q, %d): %v", reader, before, limit, err)
	}
	if got == nil {
		t.Errorf("Feed(%s, %q, %d) is nil, want an empty list", reader, before, limit)
	}
	return got
}

// checkFeed compares reader's whole feed with want, newest first.
func checkFeed(t *testing.T, s schemas.FeedStore, reader string, want []schemas.FeedEntry) {
	t.Helper()
	got := feed(t, s, reader, "", 10_000)
	if !slices.Equal(got, want) {
		t.Errorf("feed of %s:\n got %s\nwant %s", reader, show(got), show(want))
	}
}

// show prints entries compactly for failure messages.
func show(es []schemas.FeedEntry) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID[len(e.ID)-6:] + "@" + e.Author
	}
	return fmt.Sprint(len(es), out)
}

const bigMax = 800

func testFeedNewestFirst(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	all := g.entries(40, "user:alice", "shop:acme", "user:bob")
	for _, e := range shuffled(all) {
		add(t, s, []string{"r1", "r2"}, e, bigMax)
	}
	want := newestFirst(all)
	checkFeed(t, s, "r1", want)
	checkFeed(t, s, "r2", want)
	if got := feed(t, s, "r1", "", 5); !slices.Equal(got, want[:5]) {
		t.Errorf("newest 5: got %s", show(got))
	}
	for _, before := range []string{all[10].ID, all[0].ID, g.next()} {
		if got, want := feed(t, s, "r1", before, 7), below(all, before, 7); !slices.Equal(got, want) {
			t.Errorf("before %s limit 7:\n got %s\nwant %s", before, show(got), show(want))
		}
	}
	if got := feed(t, s, "r1", "", 0); len(got) != 0 {
		t.Errorf("limit 0: got %s", show(got))
	}
	if got := feed(t, s, "nobody", "", 20); len(got) != 0 {
		t.Errorf("reader without a feed: got %s", show(got))
	}
}

func testPagingWhileAdding(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	all := g.entries(60, "user:alice", "shop:acme")
	for _, e := range shuffled(all) {
		add(t, s, []string{"reader"}, e, bigMax)
	}
	var walked []schemas.FeedEntry
	before := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("the walk does not end")
		}
		got := feed(t, s, "reader", before, 7)
		if len(got) > 7 {
			t.Fatalf("page of %d, limit 7", len(got))
		}
		walked = append(walked, got...)
		if len(got) < 7 {
			break
		}
		before = got[len(got)-1].ID
		// Newer entries arrive between pages; the walk must not see them.
		for range 3 {
			add(t, s, []string{"reader"}, g.entry("user:carol"), bigMax)
		}
	}
	if want := newestFirst(all); !slices.Equal(walked, want) {
		t.Errorf("walk:\n got %s\nwant %s", show(walked), show(want))
	}
	if got := feed(t, s, "reader", "", 1); len(got) != 1 || got[0].Author != "user:carol" {
		t.Errorf("newest after the walk: got %s, want one of carol's", show(got))
	}
}

func testAddIsIdempotent(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	es := g.entries(3)
	add(t, s, []string{"a", "b"}, es[1], bigMax)
	add(t, s, []string{"a", "a", "b"}, es[1], bigMax)
	add(t, s, []string{"a"}, es[0], bigMax)
	add(t, s, []string{"a"}, es[2], bigMax)
	add(t, s, []string{"a", "b"}, es[1], bigMax)
	checkFeed(t, s, "a", newestFirst(es))
	checkFeed(t, s, "b", es[1:2])
	if err := s.AddToFeeds(t.Context(), nil, es[0], bigMax); err != nil {
		t.Errorf("no readers: %v", err)
	}
}

func testCapTrimsOldest(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	all := g.entries(25, "user:alice", "shop:acme")
	for _, e := range shuffled(all) {
		add(t, s, []string{"capped", "other"}, e, 10)
	}
	checkFeed(t, s, "capped", newestFirst(all[15:]))
	// An entry older than a full feed's oldest is trimmed at once.
	add(t, s, []string{"capped"}, all[3], 10)
	checkFeed(t, s, "capped", newestFirst(all[15:]))
	// A smaller max trims what is there.
	newer := g.entry("user:bob")
	add(t, s, []string{"capped"}, newer, 5)
	checkFeed(t, s, "capped", append([]schemas.FeedEntry{newer}, newestFirst(all[21:])...))
	checkFeed(t, s, "other", newestFirst(all[15:]))
}

func testRemoveFromFeeds(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	es := g.entries(5, "user:alice", "shop:acme")
	for _, e := range es {
		add(t, s, []string{"a", "b", "c"}, e, bigMax)
	}
	for range 2 { // the second time removes nothing
		if err := s.RemoveFromFeeds(t.Context(), []string{"a", "b", "ghost"}, es[2]); err != nil {
			t.Fatalf("RemoveFromFeeds: %v", err)
		}
	}
	rest := newestFirst(slices.Delete(slices.Clone(es), 2, 3))
	checkFeed(t, s, "a", rest)
	checkFeed(t, s, "b", rest)
	checkFeed(t, s, "c", newestFirst(es))
	// Removing an entry leaves an entry of the same id but another form.
	twin := es[3]
	twin.Ref = "other"
	if err := s.RemoveFromFeeds(t.Context(), []string{"c"}, twin); err != nil {
		t.Fatalf("RemoveFromFeeds: %v", err)
	}
	checkFeed(t, s, "c", newestFirst(es))
	if err := s.RemoveFromFeeds(t.Context(), nil, es[0]); err != nil {
		t.Errorf("no readers: %v", err)
	}
}

func testRemoveAuthorFromFeed(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	es := g.entries(12, "user:x", "shop:y", "user:z", "user:xx")
	for _, e := range es {
		add(t, s, []string{"r1", "r2"}, e, bigMax)
	}
	if err := s.RemoveAuthorFromFeed(t.Context(), "r1", "user:x"); err != nil {
		t.Fatalf("RemoveAuthorFromFeed: %v", err)
	}
	rest := slices.DeleteFunc(slices.Clone(es), func(e schemas.FeedEntry) bool { return e.Author == "user:x" })
	if len(rest) != 9 {
		t.Fatalf("fixture: %d entries left, want 9", len(rest))
	}
	checkFeed(t, s, "r1", newestFirst(rest))
	checkFeed(t, s, "r2", newestFirst(es))
	if err := s.RemoveAuthorFromFeed(t.Context(), "ghost", "user:x"); err != nil {
		t.Errorf("reader without a feed: %v", err)
	}
}

func testFillFeed(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	old := g.entries(5)
	for _, e := range old {
		add(t, s, []string{"r", "other"}, e, bigMax)
	}
	fresh := g.entries(12, "shop:acme", "user:bob")
	given := append(shuffled(fresh), fresh[7]) // one twice
	if err := s.FillFeed(t.Context(), "r", given, 10); err != nil {
		t.Fatalf("FillFeed: %v", err)
	}
	checkFeed(t, s, "r", newestFirst(fresh[2:]))
	checkFeed(t, s, "other", newestFirst(old))
	// The filled feed goes on like any other.
	newer := g.entry("user:carol")
	add(t, s, []string{"r"}, newer, 10)
	checkFeed(t, s, "r", append([]schemas.FeedEntry{newer}, newestFirst(fresh[3:])...))
	// What the feed holds stays: older entries fill in below it.
	if err := s.FillFeed(t.Context(), "r", old, 13); err != nil {
		t.Fatalf("FillFeed older: %v", err)
	}
	want := append(append([]schemas.FeedEntry{newer}, newestFirst(fresh[3:])...), newestFirst(old[2:])...)
	checkFeed(t, s, "r", want)
	if err := s.FillFeed(t.Context(), "r", nil, 13); err != nil {
		t.Fatalf("FillFeed empty: %v", err)
	}
	checkFeed(t, s, "r", want)
	if err := s.FillFeed(t.Context(), "new", old, 2); err != nil {
		t.Fatalf("FillFeed of a reader without a feed: %v", err)
	}
	checkFeed(t, s, "new", newestFirst(old[3:]))
}

func timelines(t *testing.T, s schemas.FeedStore, authors []string, before string, limit int) [][]schemas.FeedEntry {
	t.Helper()
	got, err := s.Timelines(t.Context(), authors, before, limit)
	if err != nil {
		t.Fatalf("Timelines(%v, %q, %d): %v", authors, before, limit, err)
	}
	if len(got) != len(authors) {
		t.Fatalf("Timelines of %d authors answered %d lists", len(authors), len(got))
	}
	for i, l := range got {
		if l == nil {
			t.Errorf("timeline of %s is nil, want an empty list", authors[i])
		}
	}
	return got
}

func testTimelines(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	const a, b, c = "user:alice", "shop:acme", "user:nobody"
	var as, bs []schemas.FeedEntry
	for i := range 18 {
		if i%6 == 5 {
			bs = append(bs, g.entry(b))
		} else {
			as = append(as, g.entry(a))
		}
	}
	for _, e := range shuffled(as) {
		if err := s.AddToTimeline(t.Context(), a, e, 12); err != nil {
			t.Fatalf("AddToTimeline: %v", err)
		}
	}
	for _, e := range append(bs, bs[0]) {
		if err := s.AddToTimeline(t.Context(), b, e, 12); err != nil {
			t.Fatalf("AddToTimeline: %v", err)
		}
	}
	if len(as) != 15 || len(bs) != 3 {
		t.Fatalf("fixture: %d and %d entries", len(as), len(bs))
	}
	kept := as[3:] // 12 newest
	authors := []string{a, c, b}
	for _, q := range []struct {
		before string
		limit  int
	}{{"", 5}, {"", 100}, {bs[2].ID, 4}, {bs[1].ID, 100}, {as[0].ID, 10}} {
		got := timelines(t, s, authors, q.before, q.limit)
		for i, want := range [][]schemas.FeedEntry{below(kept, q.before, q.limit), {}, below(bs, q.before, q.limit)} {
			if !slices.Equal(got[i], want) {
				t.Errorf("before %q limit %d, %s:\n got %s\nwant %s", q.before, q.limit, authors[i], show(got[i]), show(want))
			}
		}
	}
	if err := s.RemoveFromTimeline(t.Context(), a, kept[11]); err != nil {
		t.Fatalf("RemoveFromTimeline: %v", err)
	}
	if got := timelines(t, s, []string{a}, "", 2); !slices.Equal(got[0], []schemas.FeedEntry{kept[10], kept[9]}) {
		t.Errorf("after removing the newest: got %s", show(got[0]))
	}
	if got := timelines(t, s, nil, "", 10); len(got) != 0 {
		t.Errorf("no authors: %d lists", len(got))
	}
	// Timelines are not feeds.
	if got := feed(t, s, a, "", 10); len(got) != 0 {
		t.Errorf("feed of %s holds timeline entries: %s", a, show(got))
	}
}

func follow(t *testing.T, s schemas.FeedStore, e schemas.FollowEdge) (bool, int) {
	t.Helper()
	added, n, err := s.Follow(t.Context(), e)
	if err != nil {
		t.Fatalf("Follow %+v: %v", e, err)
	}
	return added, n
}

func counts(t *testing.T, s schemas.FeedStore, user, author string) (int, int) {
	t.Helper()
	following, followers, err := s.FollowCounts(t.Context(), user, author)
	if err != nil {
		t.Fatalf("FollowCounts(%s, %s): %v", user, author, err)
	}
	return following, followers
}

func following(t *testing.T, s schemas.FeedStore, user, before string, limit int) []schemas.FollowEdge {
	t.Helper()
	got, err := s.Following(t.Context(), user, before, limit)
	if err != nil {
		t.Fatalf("Following(%s, %q, %d): %v", user, before, limit, err)
	}
	if got == nil {
		t.Errorf("Following(%s) is nil, want an empty list", user)
	}
	return got
}

func followers(t *testing.T, s schemas.FeedStore, author, before string, limit int) []schemas.FollowEdge {
	t.Helper()
	got, err := s.Followers(t.Context(), author, before, limit)
	if err != nil {
		t.Fatalf("Followers(%s, %q, %d): %v", author, before, limit, err)
	}
	if got == nil {
		t.Errorf("Followers(%s) is nil, want an empty list", author)
	}
	return got
}

func testFollow(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	shop := schemas.Author(schemas.FolloweeShop, "acme")
	bob := schemas.Author(schemas.FolloweeUser, "bob")
	first := schemas.FollowEdge{ID: g.next(), User: "alice", Author: shop}
	if added, n := follow(t, s, first); !added || n != 1 {
		t.Errorf("first follow: added %v, following %d; want true, 1", added, n)
	}
	again := schemas.FollowEdge{ID: g.next(), User: "alice", Author: shop}
	if added, n := follow(t, s, again); added || n != 1 {
		t.Errorf("follow again: added %v, following %d; want false, 1", added, n)
	}
	if got := following(t, s, "alice", "", 10); !slices.Equal(got, []schemas.FollowEdge{first}) {
		t.Errorf("the first edge must be kept: %+v", got)
	}
	toBob := schemas.FollowEdge{ID: g.next(), User: "alice", Author: bob}
	if added, n := follow(t, s, toBob); !added || n != 2 {
		t.Errorf("follow bob: added %v, following %d; want true, 2", added, n)
	}
	toAlice := schemas.FollowEdge{ID: g.next(), User: "bob", Author: schemas.Author(schemas.FolloweeUser, "alice")}
	follow(t, s, toAlice)
	if f, fs := counts(t, s, "alice", "user:alice"); f != 2 || fs != 1 {
		t.Errorf("alice counts: following %d, followers %d; want 2, 1", f, fs)
	}
	if f, fs := counts(t, s, "bob", bob); f != 1 || fs != 1 {
		t.Errorf("bob counts: following %d, followers %d; want 1, 1", f, fs)
	}
	if f, fs := counts(t, s, "nobody", "shop:nobody"); f != 0 || fs != 0 {
		t.Errorf("nobody counts: %d, %d", f, fs)
	}
	if got := followers(t, s, shop, "", 10); !slices.Equal(got, []schemas.FollowEdge{first}) {
		t.Errorf("followers of %s: %+v", shop, got)
	}

	unfollow := func(user, author string, want bool) {
		t.Helper()
		removed, err := s.Unfollow(t.Context(), user, author)
		if err != nil {
			t.Fatalf("Unfollow(%s, %s): %v", user, author, err)
		}
		if removed != want {
			t.Errorf("Unfollow(%s, %s): removed %v, want %v", user, author, removed, want)
		}
	}
	unfollow("alice", shop, true)
	unfollow("alice", shop, false)
	unfollow("carol", shop, false)
	if f, fs := counts(t, s, "alice", shop); f != 1 || fs != 0 {
		t.Errorf("after unfollow: following %d, followers of the shop %d; want 1, 0", f, fs)
	}
	if got := followers(t, s, shop, "", 10); len(got) != 0 {
		t.Errorf("followers after unfollow: %+v", got)
	}
	if got := following(t, s, "alice", "", 10); !slices.Equal(got, []schemas.FollowEdge{toBob}) {
		t.Errorf("following after unfollow: %+v", got)
	}
	// Following anew after an unfollow records the new edge.
	anew := schemas.FollowEdge{ID: g.next(), User: "alice", Author: shop}
	if added, n := follow(t, s, anew); !added || n != 2 {
		t.Errorf("follow anew: added %v, following %d; want true, 2", added, n)
	}
	if got := following(t, s, "alice", "", 10); !slices.Equal(got, []schemas.FollowEdge{anew, toBob}) {
		t.Errorf("following after following anew: %+v", got)
	}
	if got := followers(t, s, shop, "", 10); !slices.Equal(got, []schemas.FollowEdge{anew}) {
		t.Errorf("followers after following anew: %+v", got)
	}
}

// walkEdges pages through list with pages of size, calling between after
// every page, and returns every edge in order.
func walkEdges(t *testing.T, size int, list func(before string) []schemas.FollowEdge, between func()) []schemas.FollowEdge {
	t.Helper()
	var out []schemas.FollowEdge
	before := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("the walk does not end")
		}
		got := list(before)
		if len(got) > size {
			t.Fatalf("page of %d, limit %d", len(got), size)
		}
		out = append(out, got...)
		if len(got) < size {
			return out
		}
		before = got[len(got)-1].ID
		between()
	}
}

func testFollowPaging(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	var mine []schemas.FollowEdge
	for i := range 23 {
		mine = append(mine, schemas.FollowEdge{ID: g.next(), User: "fan", Author: fmt.Sprintf("shop:s%02d", i)})
	}
	for _, e := range shuffled(mine) {
		follow(t, s, e)
	}
	got := walkEdges(t, 5, func(before string) []schemas.FollowEdge { return following(t, s, "fan", before, 5) }, func() {})
	if want := newestFirst(mine); !slices.Equal(got, want) {
		t.Errorf("following walk:\n got %+v\nwant %+v", got, want)
	}

	const star = "user:star"
	var fans []schemas.FollowEdge
	for i := range 37 {
		fans = append(fans, schemas.FollowEdge{ID: g.next(), User: fmt.Sprintf("u%02d", i), Author: star})
	}
	for _, e := range shuffled(fans) {
		follow(t, s, e)
	}
	late := 0
	got = walkEdges(t, 6, func(before string) []schemas.FollowEdge { return followers(t, s, star, before, 6) }, func() {
		late++
		follow(t, s, schemas.FollowEdge{ID: g.next(), User: fmt.Sprintf("late%02d", late), Author: star})
	})
	if want := newestFirst(fans); !slices.Equal(got, want) {
		t.Errorf("followers walk:\n got %+v\nwant %+v", got, want)
	}
	if _, fs := counts(t, s, "fan", star); fs != 37+late {
		t.Errorf("followers of %s: %d, want %d", star, fs, 37+late)
	}
	if got := followers(t, s, star, "", 0); len(got) != 0 {
		t.Errorf("limit 0: %+v", got)
	}
	if got := following(t, s, "fan", mine[5].ID, 100); !slices.Equal(got, newestFirst(mine[:5])) {
		t.Errorf("following before the 6th edge: %+v", got)
	}
}

func testFollows(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	for _, a := range []string{"shop:a", "user:c"} {
		follow(t, s, schemas.FollowEdge{ID: g.next(), User: "u", Author: a})
	}
	check := func(user string, authors []string, want []bool) {
		t.Helper()
		got, err := s.Follows(t.Context(), user, authors)
		if err != nil {
			t.Fatalf("Follows(%s, %v): %v", user, authors, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Follows(%s, %v) = %v, want %v", user, authors, got, want)
		}
	}
	check("u", []string{"shop:a", "shop:b", "user:c", "user:a", "shop:a"}, []bool{true, false, true, false, true})
	check("stranger", []string{"shop:a", "user:c"}, []bool{false, false})
	check("u", []string{}, []bool{})
}

func testCelebrities(t *testing.T, s schemas.FeedStore) {
	got, err := s.Celebrities(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("no celebrities yet: %v, %v", got, err)
	}
	for _, a := range []string{"user:star", "shop:big", "user:star"} {
		if err := s.MarkCelebrity(t.Context(), a); err != nil {
			t.Fatalf("MarkCelebrity %s: %v", a, err)
		}
	}
	got, err = s.Celebrities(t.Context())
	if err != nil {
		t.Fatalf("Celebrities: %v", err)
	}
	slices.Sort(got)
	if want := []string{"shop:big", "user:star"}; !slices.Equal(got, want) {
		t.Errorf("Celebrities = %v, want %v", got, want)
	}
}

func testLastRead(t *testing.T, s schemas.FeedStore) {
	check := func(readers []string, want ...time.Time) {
		t.Helper()
		got, err := s.LastRead(t.Context(), readers)
		if err != nil {
			t.Fatalf("LastRead(%v): %v", readers, err)
		}
		if len(got) != len(want) {
			t.Fatalf("LastRead(%v): %d times, want %d", readers, len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) || got[i].IsZero() != want[i].IsZero() {
				t.Errorf("LastRead %s = %v, want %v", readers[i], got[i], want[i])
			}
		}
	}
	mark := func(reader string, at time.Time) {
		t.Helper()
		if err := s.MarkRead(t.Context(), reader, at); err != nil {
			t.Fatalf("MarkRead(%s): %v", reader, err)
		}
	}
	var zero time.Time
	check([]string{"a", "b"}, zero, zero)
	t1 := time.Date(2025, 6, 1, 12, 30, 15, 123_000_000, time.UTC)
	mark("a", t1)
	check([]string{"b", "a", "a"}, zero, t1, t1)
	mark("a", t1.Add(-time.Minute)) // a replayed, older mark
	check([]string{"a"}, t1)
	t2 := t1.Add(90*time.Second + 7*time.Millisecond)
	mark("a", t2)
	mark("b", t1.In(time.FixedZone("KST", 9*3600)))
	check([]string{"a", "b", "c"}, t2, t1, zero)
	check([]string{}, []time.Time{}...)
}

func testClaim(t *testing.T, s schemas.FeedStore) {
	const ttl = 1500 * time.Millisecond
	claim := func(key, value, want string) {
		t.Helper()
		got, err := s.Claim(t.Context(), key, value, ttl)
		if err != nil {
			t.Fatalf("Claim(%s, %s): %v", key, value, err)
		}
		if got != want {
			t.Errorf("Claim(%s, %s) = %q, want %q", key, value, got, want)
		}
	}
	start := time.Now()
	claim("price:shop1:sku", "event-1", "event-1")
	claim("price:shop1:sku", "event-2", "event-1")
	claim("price:shop1:other", "event-3", "event-3")
	if time.Since(start) > ttl/2 {
		t.Skip("the store answered too slowly to test expiry against a 1.5 s ttl")
	}
	time.Sleep(ttl - time.Since(start) + 200*time.Millisecond)
	claim("price:shop1:sku", "event-4", "event-4")
	claim("price:shop1:sku", "event-5", "event-4")
}

func testConcurrentAdds(t *testing.T, s schemas.FeedStore) {
	const writers, each = 8, 60
	readers := make([]string, 20)
	for i := range readers {
		readers[i] = fmt.Sprintf("reader%02d", i)
	}
	var all []schemas.FeedEntry
	batches := make([][]schemas.FeedEntry, writers)
	g := newIDs()
	for w := range batches {
		batches[w] = g.entries(each, fmt.Sprintf("user:w%d", w))
		all = append(all, batches[w]...)
	}
	slices.SortFunc(all, func(a, b schemas.FeedEntry) int { return strings.Compare(a.ID, b.ID) })
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i, e := range batches[w] {
				// Each writer adds to the readers in its own order.
				rs := slices.Clone(readers)
				if i%2 == 1 {
					slices.Reverse(rs)
				}
				if err := s.AddToFeeds(t.Context(), rs, e, 1000); err != nil {
					errs <- err
					return
				}
				if _, err := s.Feed(t.Context(), rs[0], "", 20); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent writer: %v", err)
	}
	for _, r := range readers {
		checkFeed(t, s, r, newestFirst(all))
	}
}

func testInvalidInput(t *testing.T, s schemas.FeedStore) {
	g := newIDs()
	ok := g.entry("user:alice")
	ctx := t.Context()
	if err := s.AddToFeeds(ctx, []string{"r"}, ok, 0); err == nil {
		t.Error("AddToFeeds with max 0: no error")
	}
	if err := s.AddToTimeline(ctx, "user:alice", ok, 0); err == nil {
		t.Error("AddToTimeline with max 0: no error")
	}
	if err := s.FillFeed(ctx, "r", []schemas.FeedEntry{ok}, 0); err == nil {
		t.Error("FillFeed with max 0: no error")
	}
	bad := map[string]schemas.FeedEntry{
		"empty id":      {Kind: schemas.FeedKindPost, Author: "user:alice", Ref: "p"},
		"empty kind":    {ID: g.next(), Author: "user:alice", Ref: "p"},
		"empty author":  {ID: g.next(), Kind: schemas.FeedKindPost, Ref: "p"},
		"'|' in id":     {ID: g.next() + "|x", Kind: schemas.FeedKindPost, Author: "user:alice", Ref: "p"},
		"'|' in author": {ID: g.next(), Kind: schemas.FeedKindPost, Author: "user:a|b", Ref: "p"},
	}
	for name, e := range bad {
		if err := s.AddToFeeds(ctx, []string{"r"}, e, bigMax); err == nil {
			t.Errorf("AddToFeeds of an entry with %s: no error", name)
		}
		if err := s.AddToTimeline(ctx, "user:alice", e, bigMax); err == nil {
			t.Errorf("AddToTimeline of an entry with %s: no error", name)
		}
		if err := s.FillFeed(ctx, "r", []schemas.FeedEntry{ok, e}, bigMax); err == nil {
			t.Errorf("FillFeed with an entry with %s: no error", name)
		}
	}
	checkFeed(t, s, "r", []schemas.FeedEntry{})
	// A '|' in the ref is fine: it is the last field.
	piped := g.entry("shop:acme")
	piped.Ref = "a|b"
	add(t, s, []string{"r"}, piped, bigMax)
	checkFeed(t, s, "r", []schemas.FeedEntry{piped})

	for name, e := range map[string]schemas.FollowEdge{
		"empty id":     {User: "u", Author: "shop:a"},
		"empty user":   {ID: g.next(), Author: "shop:a"},
		"empty author": {ID: g.next(), User: "u"},
	} {
		if _, _, err := s.Follow(ctx, e); err == nil {
			t.Errorf("Follow with %s: no error", name)
		}
	}
	if _, err := s.Claim(ctx, "k", "v", 0); err == nil {
		t.Error("Claim with ttl 0: no error")
	}
}
