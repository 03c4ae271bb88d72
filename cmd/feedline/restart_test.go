package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"feedline/schemas"
)

// pagedIDs walks the whole feed in pages of limit and returns the item ids
// in order.
func (s *shopper) pagedIDs(limit int) []string {
	s.ts.t.Helper()
	var ids []string
	cursor := ""
	for {
		p := s.page(cursor, limit)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
}

func (s *shopper) unfollow(kind, id string) {
	s.ts.t.Helper()
	if r := s.do(http.MethodDelete, "/v1/follows/"+kind+"/"+id, ""); r.Status != http.StatusAccepted {
		s.ts.t.Fatalf("unfollow %s/%s: %d %s", kind, id, r.Status, r.Body)
	}
}

func (s *shopper) following() int {
	s.ts.t.Helper()
	var p schemas.FollowPage
	s.do(http.MethodGet, "/v1/users/"+s.id+"/following", "").json(s.ts.t, &p)
	return len(p.Items)
}

// newestFirst sorts ids (ULIDs) newest first.
func newestFirst(ids []string) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(b, a) })
	return out
}

// postMany has the authors post n times between them, in turns, and
// returns the post ids.
func postMany(n int, authors ...*shopper) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = authors[i%len(authors)].post(fmt.Sprint("post ", i))
	}
	return ids
}

// TestFeedsAreExactAcrossARestart: what every follower pages through is
// the same after a graceful restart: 300 posts, a deleted post, an
// unfollow, shop news, a follower who read all along, one whose first read
// rebuilt the feed, and one who first reads after the restart.
func TestFeedsAreExactAcrossARestart(t *testing.T) {
	eachFeedBackend(t, testFeedsAreExactAcrossARestart)
}

func testFeedsAreExactAcrossARestart(t *testing.T, tune func(*serveConfig)) {
	dir := t.TempDir()
	ts := startTestSystemWith(t, dir, tune)
	key := ts.addPartner("acme")
	alice, carol, dora := ts.shopper("alice"), ts.shopper("carol"), ts.shopper("dora")
	bob, eve, finn := ts.shopper("bob"), ts.shopper("eve"), ts.shopper("finn")
	for _, f := range []*shopper{bob, eve, finn} {
		f.follow("user", "alice")
		f.follow("user", "carol")
		f.follow("user", "dora")
		f.follow("shop", "acme")
	}
	eventually(t, "every follow", func() bool { return bob.following()+eve.following()+finn.following() == 12 })
	bob.page("", 1) // bob reads all along: fan-out writes to him

	core := postMany(300, alice, alice, carol)
	doras := postMany(20, dora)
	gone := alice.post("deleted soon")
	if r := alice.do(http.MethodDelete, "/v1/posts/"+gone, ""); r.Status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	eventually(t, "every post in bob's feed", func() bool { return len(bob.pagedIDs(100)) == 320 })
	eve.page("", 1) // eve's first read rebuilds her feed

	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")
	cheaper := slices.Clone(testCatalog)
	for i := range cheaper {
		if cheaper[i].SKU == "A1" {
			cheaper[i].Price = "1000"
		}
	}
	ts.uploadOK("acme", key, delimited(cheaper, ","), "mode=full")
	shopNews := len(validSKUs) + 1
	bob.unfollow("user", "dora")
	eventually(t, "shop news and the unfollow", func() bool {
		return len(bob.pagedIDs(100)) == 300+shopNews && len(eve.pagedIDs(100)) == 320+shopNews
	})

	bobBefore, eveBefore := bob.pagedIDs(7), eve.pagedIDs(20)
	posts := func(ids []string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !slices.Contains(core, id) && !slices.Contains(doras, id) })
	}
	if want := newestFirst(core); !slices.Equal(posts(bobBefore), want) {
		t.Fatalf("before the restart bob pages through %d posts, want the 300 of alice and carol", len(posts(bobBefore)))
	}
	if want := newestFirst(append(slices.Clone(core), doras...)); !slices.Equal(posts(eveBefore), want) {
		t.Fatalf("before the restart eve pages through %d posts, want all 320", len(posts(eveBefore)))
	}
	ts.stop()

	ts = startTestSystemWith(t, dir, tune)
	bob, eve, finn = ts.shopper("bob"), ts.shopper("eve"), ts.shopper("finn")
	// Activity survived: the restarted fan-out wrote bob's feed, and his
	// read does not rebuild it.
	ctx := context.Background()
	last, err := ts.sys.feeds.LastRead(ctx, []string{"bob", "eve", "finn"})
	if err != nil {
		t.Fatal(err)
	}
	if last[0].IsZero() || last[1].IsZero() || !last[2].IsZero() {
		t.Errorf("last reads after the restart %v: want bob's and eve's kept, finn never", last)
	}
	if raw, err := ts.sys.feeds.Feed(ctx, "bob", "", 1000); err != nil || len(raw) != len(bobBefore) {
		t.Errorf("before any read after the restart bob's stored feed holds %d entries (%v), want %d", len(raw), err, len(bobBefore))
	}
	if got := bob.pagedIDs(7); !slices.Equal(got, bobBefore) {
		t.Errorf("after the restart bob pages through %d items, %d before (first difference at %d)", len(got), len(bobBefore), firstDiff(got, bobBefore))
	}
	if got := eve.pagedIDs(20); !slices.Equal(got, eveBefore) {
		t.Errorf("after the restart eve pages through %d items, %d before (first difference at %d)", len(got), len(eveBefore), firstDiff(got, eveBefore))
	}
	if got := finn.pagedIDs(13); !slices.Equal(got, eveBefore) {
		t.Errorf("finn, first reading after the restart, pages through %d items, want eve's %d (first difference at %d)", len(got), len(eveBefore), firstDiff(got, eveBefore))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFeedsSurviveSigtermAndSigkill runs feedline as a process: 300 posts,
// then a restart after SIGTERM and one after SIGKILL; every follower pages
// through the same 300 posts in the same order each time. Then posts sent
// just before another SIGKILL, whose fan-out may be cut short, are all in
// the feeds after the restart.
func TestFeedsSurviveSigtermAndSigkill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a feedline process")
	}
	bin := buildBinary(t)
	eachFeedBackend(t, func(t *testing.T, tune func(*serveConfig)) {
		var cfg serveConfig
		tune(&cfg)
		env := []string{"FEEDLINE_TOKEN_KEY=" + testTokenKey}
		if cfg.RedisURL != "" {
			env = append(env, "FEEDLINE_REDIS_URL="+cfg.RedisURL)
		}
		testFeedsSurviveSigtermAndSigkill(t, bin, env)
	})
}

func testFeedsSurviveSigtermAndSigkill(t *testing.T, bin string, env []string) {
	dir, addr := t.TempDir(), freeAddr(t)
	p := startProcess(t, bin, dir, addr, env...)
	defer func() {
		if t.Failed() || os.Getenv("FEEDLINE_TEST_LOGS") != "" {
			t.Logf("logs of the last run:\n%s", p.logs)
		}
	}()
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	alice, carol := ts.shopper("alice"), ts.shopper("carol")
	bob, eve, finn := ts.shopper("bob"), ts.shopper("eve"), ts.shopper("finn")
	followers := []*shopper{bob, eve, finn}
	for _, f := range followers {
		f.follow("user", "alice")
		f.follow("user", "carol")
	}
	eventually(t, "every follow", func() bool { return bob.following()+eve.following()+finn.following() == 6 })
	bob.page("", 1)

	posts := postMany(300, alice, carol, carol)
	want := newestFirst(posts)
	eventually(t, "300 posts in bob's feed", func() bool { return len(bob.pagedIDs(100)) == 300 })
	if got := bob.pagedIDs(9); !slices.Equal(got, want) {
		t.Fatalf("before any restart bob pages through %d posts, want the 300", len(got))
	}
	if got := eve.pagedIDs(20); !slices.Equal(got, want) { // her first read: a rebuild
		t.Fatalf("before any restart eve pages through %d posts, want the 300", len(got))
	}
	check := func(when string, readers ...*shopper) {
		t.Helper()
		for _, f := range readers {
			if got := f.pagedIDs(11); !slices.Equal(got, want) {
				t.Errorf("%s %s pages through %d posts, want the %d as before (first difference at %d)", when, f.id, len(got), len(want), firstDiff(got, want))
			}
		}
	}

	p.terminate(t)
	p = startProcess(t, bin, dir, addr, env...)
	check("after SIGTERM and a restart", bob, eve)

	p.kill(t)
	p = startProcess(t, bin, dir, addr, env...)
	check("after SIGKILL and a restart", bob, eve, finn)

	late := postMany(30, alice, carol)
	p.kill(t)
	p = startProcess(t, bin, dir, addr, env...)
	want = newestFirst(append(posts, late...))
	eventually(t, "the posts sent before the kill in bob's feed", func() bool { return len(bob.pagedIDs(100)) == len(want) })
	check("after posts, SIGKILL and a restart", followers...)
	p.terminate(t)
}
