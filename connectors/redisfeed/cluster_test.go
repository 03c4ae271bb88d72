package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"feedline/connectors/redisfeed/redistest"
	"feedline/schemas"
)

// TestOpenExplainsBadURLs: a URL that names nothing usable is refused
// before any connection, saying what to write instead, never showing the
// password.
func TestOpenExplainsBadURLs(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"http://127.0.0.1:6379":                        "want redis:// or rediss:// for one server, redis+cluster://",
		"redis://127.0.0.1:7000,127.0.0.1:7001":        "names several servers; name a Redis Cluster as redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
		"redis+cluster://127.0.0.1:7000/3":             "a Redis Cluster has only database 0",
		"redis+cluster://127.0.0.1:7000?addr=h:1":      "comma-separated in the host part",
		"redis+cluster://127.0.0.1:7000,,h:1":          "a node address is empty",
		"redis+cluster://127.0.0.1:7000?bogus=1":       "unexpected option: bogus",
		"redis://u:s3cret@127.0.0.1:x/0":               "URL is not valid",
		"redis://u:s3cret@127.0.0.1:6379/zero":         "invalid database number",
		"rediss+cluster://u:s3cret@h:1,h:2?bogus=true": "unexpected option",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := Open(ctx, url)
		cancel()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q): %v, want an error saying %q", url, err, want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) shows the password: %v", url, err)
		}
		if errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Open(%q): a bad URL is not an outage: %v", url, err)
		}
	}
}

// TestOpenRefusesTheWrongKindOfServer: a single-node URL naming a cluster
// node, and a cluster URL naming a plain server, are startup errors that
// say which form to use.
func TestOpenRefusesTheWrongKindOfServer(t *testing.T) {
	t.Parallel()
	needServer(t)
	needCluster(t)
	ctx := t.Context()
	node := strings.Split(strings.TrimPrefix(clusterURL, "redis+cluster://"), ",")[0]
	if _, err := Open(ctx, "redis://"+node+"/0"); err == nil || !strings.Contains(err.Error(), "is a Redis Cluster node; name the cluster as redis+cluster://") {
		t.Errorf("redis:// naming a cluster node: %v", err)
	}
	server := strings.TrimSuffix(strings.TrimPrefix(testURL, "redis://"), "/0")
	server, _, _ = strings.Cut(server, "/")
	if _, err := Open(ctx, "redis+cluster://"+server); err == nil || !strings.Contains(err.Error(), "is not a Redis Cluster") {
		t.Errorf("redis+cluster:// naming a plain server: %v", err)
	}
}

// clusterKeys lists the keys under prefix on each master of the cluster.
func clusterKeys(t *testing.T, s *Store, prefix string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	where := map[string]string{}
	err := EachMaster(t.Context(), s.rdb, func(ctx context.Context, m *redis.Client) error {
		iter := m.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			where[iter.Val()] = m.Options().Addr
			mu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return where
}

// TestKeysOfOneUserShareASlot writes every kind of key for many users and
// finds, on the cluster itself, each user's keys in one slot of one master,
// and the users spread over every master.
func TestKeysOfOneUserShareASlot(t *testing.T) {
	t.Parallel()
	s := openClusterStore(t)
	ctx := t.Context()
	users := []string{"alice", "user:bob", "shop:acme", "a{b}", "x}y", "日本"}
	for i := range 30 {
		users = append(users, fmt.Sprintf("user:u%d", i))
	}
	for i, u := range users {
		other := users[(i+1)%len(users)]
		e := schemas.FeedEntry{ID: fmt.Sprintf("01JXY%021d", i), Kind: schemas.FeedKindPost, Author: u, Ref: "r"}
		steps := []error{
			s.AddToFeeds(ctx, []string{u}, e, 10),
			s.AddToTimeline(ctx, u, e, 10),
			s.MarkRead(ctx, u, time.Now()),
		}
		_, _, err := s.Follow(ctx, schemas.FollowEdge{ID: fmt.Sprintf("01JXZ%021d", i), User: u, Author: other})
		steps = append(steps, err)
		if err := errors.Join(steps...); err != nil {
			t.Fatalf("writes of %s: %v", u, err)
		}
	}
	where := clusterKeys(t, s, s.prefix)
	kinds := []string{"feed:{%s}", "timeline:{%s}", "lastread:{%s}", "following:{%s}", "following:{%s}:byid", "followers:{%s}", "followers:{%s}:byid"}
	masters := map[string]bool{}
	for _, u := range users {
		var slots []int64
		nodes := map[string]bool{}
		for _, k := range kinds {
			key := s.prefix + fmt.Sprintf(k, u)
			node, ok := where[key]
			if !ok {
				t.Errorf("%s: not on any master", key)
				continue
			}
			nodes[node] = true
			slot, err := s.cluster.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots = append(slots, slot)
		}
		if len(slices.Compact(slices.Clone(slots))) != 1 || len(nodes) != 1 {
			t.Errorf("keys of %q are in slots %v on masters %v, want one slot", u, slots, nodes)
		}
		for n := range nodes {
			masters[n] = true
		}
	}
	all, err := redistestMasters(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != all {
		t.Errorf("users' keys on %d of %d masters: %v", len(masters), all, masters)
	}
	// A name that would give its keys no hash tag is refused, not split.
	if _, _, err := s.Follow(ctx, schemas.FollowEdge{ID: "01JXY00000000000000000000C", User: "}x", Author: "alice"}); err == nil || !strings.Contains(err.Error(), "must not start with '}'") {
		t.Errorf("Follow by %q: %v", "}x", err)
	}
}

func redistestMasters(ctx context.Context, s *Store) (int, error) {
	n := 0
	var mu sync.Mutex
	err := EachMaster(ctx, s.rdb, func(context.Context, *redis.Client) error {
		mu.Lock()
		n++
		mu.Unlock()
		return nil
	})
	return n, err
}

// TestCallsForManyUsersSplitBySlot: one call for readers on every master
// (fan-out, removal, last reads, timelines) works on the cluster, where a
// command or transaction naming keys of two slots is refused with
// CROSSSLOT, as the second half shows.
func TestCallsForManyUsersSplitBySlot(t *testing.T) {
	t.Parallel()
	s := openClusterStore(t)
	ctx := t.Context()
	readers := make([]string, 3000)
	for i := range readers {
		readers[i] = fmt.Sprintf("r%d", i)
	}
	e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "p"}
	keep := schemas.FeedEntry{ID: "01JXY00000000000000000000B", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "q"}
	at := time.UnixMilli(1_700_000_000_000).UTC()
	for _, step := range []error{
		s.AddToFeeds(ctx, readers, e, 10),
		s.AddToFeeds(ctx, readers, keep, 10),
		s.RemoveFromFeeds(ctx, readers[:1500], e),
		s.MarkRead(ctx, readers[7], at),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	for i, r := range readers {
		want := []schemas.FeedEntry{keep, e}
		if i < 1500 {
			want = want[:1]
		}
		got, err := s.Feed(ctx, r, "", 10)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("feed of %s: %v (%v), want %v", r, got, err, want)
		}
	}
	last, err := s.LastRead(ctx, readers)
	if err != nil || len(last) != len(readers) || !last[7].Equal(at) || !last[8].IsZero() {
		t.Fatalf("LastRead: %d answers (%v), [7]=%v [8]=%v", len(last), err, last[7], last[8])
	}
	authors := readers[:500]
	for _, a := range authors {
		if err := s.AddToTimeline(ctx, a, schemas.FeedEntry{ID: e.ID, Kind: e.Kind, Author: a, Ref: "p"}, 5); err != nil {
			t.Fatal(err)
		}
	}
	tls, err := s.Timelines(ctx, authors, "", 5)
	if err != nil || len(tls) != len(authors) {
		t.Fatalf("Timelines: %d (%v)", len(tls), err)
	}
	for i, tl := range tls {
		if len(tl) != 1 || tl[0].Author != authors[i] {
			t.Fatalf("timeline of %s: %v", authors[i], tl)
		}
	}

	// What the store avoids: one transaction over two readers' feeds.
	a, b := s.feedKey(readers[0]), ""
	for _, r := range readers[1:] {
		if redisSlot(ctx, t, s, s.feedKey(r)) != redisSlot(ctx, t, s, a) {
			b = s.feedKey(r)
			break
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZCard(ctx, a)
		p.ZCard(ctx, b)
		return nil
	})
	if !errors.Is(err, redis.ErrCrossSlot) {
		t.Errorf("a transaction over two slots: %v, want CROSSSLOT", err)
	}
	if err := s.rdb.Do(ctx, "unlink", a, b).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("UNLINK of two slots' keys: %v, want CROSSSLOT from the server", err)
	}
}

func redisSlot(ctx context.Context, t *testing.T, s *Store, key string) int64 {
	t.Helper()
	slot, err := s.cluster.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

// TestClusterMasterDown kills a master of a cluster of its own (so the
// shared cluster stays whole) and checks that every answer is clear and
// quick, never a hang: with no replica to take over the store's calls fail
// as unavailable, Healthy and Open name the master, then the failed slots,
// and a restart from the append-only file brings all back; with
// cluster-require-full-coverage off the live masters' slots still serve
// while Healthy names the failed ones; with a replica the cluster fails
// over and the store follows it.
func TestClusterMasterDown(t *testing.T) {
	t.Run("no replica", func(t *testing.T) {
		cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3, AppendOnly: true})
		s := openStoreAt(t, cl.URL+"?dial_timeout=1s&read_timeout=2s")
		ctx := t.Context()
		readers := manyReaders(300)
		e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "p"}
		if err := s.AddToFeeds(ctx, readers, e, 10); err != nil {
			t.Fatal(err)
		}
		victim := cl.Nodes[1]
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := s.AddToFeeds(ctx, readers, e, 10)
		if !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("AddToFeeds with a master down: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("AddToFeeds took %s to give up", took)
		}
		if err := s.Healthy(ctx); !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), victim.Addr) {
			t.Errorf("Healthy with %s down: %v", victim.Addr, err)
		}
		if _, err := Open(ctx, cl.URL+"?dial_timeout=1s"); !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), victim.Addr) {
			t.Errorf("Open with %s down: %v", victim.Addr, err)
		}
		// Once the others mark it failed, they say the slots are lost.
		waitFor(t, 20*time.Second, "the masters to mark the dead one failed", func() error {
			err := s.Healthy(ctx)
			if err != nil && strings.Contains(err.Error(), "cluster_state:fail") {
				return nil
			}
			return fmt.Errorf("Healthy: %v", err)
		})
		if err := victim.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitServing(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "Healthy after the restart", func() error { return s.Healthy(ctx) })
		for _, r := range readers {
			if got, err := s.Feed(ctx, r, "", 10); err != nil || !slices.Equal(got, []schemas.FeedEntry{e}) {
				t.Fatalf("feed of %s after the restart: %v (%v)", r, got, err)
			}
		}
	})
	t.Run("no replica, partial coverage allowed", func(t *testing.T) {
		// cluster-require-full-coverage no: the other masters go on serving,
		// and Healthy still names the failed slots.
		cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3})
		ctx := t.Context()
		for _, n := range cl.Nodes {
			if err := n.Do(ctx, "config", "set", "cluster-require-full-coverage", "no").Err(); err != nil {
				t.Fatal(err)
			}
		}
		s := openStoreAt(t, cl.URL+"?dial_timeout=1s&read_timeout=2s")
		victim := cl.Nodes[0]
		var onVictim, elsewhere string
		for _, r := range manyReaders(100) {
			node, err := s.Node(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if node == victim.Addr && onVictim == "" {
				onVictim = r
			} else if node != victim.Addr && elsewhere == "" {
				elsewhere = r
			}
		}
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the masters to mark the dead one failed", func() error {
			err := s.Healthy(ctx)
			if err != nil && strings.Contains(err.Error(), "cluster_state:ok") && strings.Contains(err.Error(), "of them on failed masters") &&
				!strings.Contains(err.Error(), " 0 of them") {
				return nil
			}
			return fmt.Errorf("Healthy: %v", err)
		})
		e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "p"}
		if err := s.AddToFeeds(ctx, []string{elsewhere}, e, 10); err != nil {
			t.Errorf("a reader on a live master: %v", err)
		}
		if err := s.AddToFeeds(ctx, []string{onVictim}, e, 10); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("a reader on the failed master: %v, want ErrUnavailable", err)
		}
		// Whole again, so the test's keys can be deleted.
		if err := victim.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitServing(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failover", func(t *testing.T) {
		cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
		s := openStoreAt(t, cl.URL+"?dial_timeout=1s&read_timeout=2s")
		ctx := t.Context()
		readers := manyReaders(300)
		e := schemas.FeedEntry{ID: "01JXY00000000000000000000A", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "p"}
		if err := s.AddToFeeds(ctx, readers, e, 10); err != nil {
			t.Fatal(err)
		}
		masters, err := cl.Masters(ctx)
		if err != nil || len(masters) != 3 {
			t.Fatalf("masters: %v (%v)", masters, err)
		}
		// WAIT: the replicas hold what was written before the kill.
		for _, m := range masters {
			if err := m.Do(ctx, "wait", 1, 5000).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := masters[0].Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitServing(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "Healthy after the failover", func() error { return s.Healthy(ctx) })
		next := schemas.FeedEntry{ID: "01JXY00000000000000000000B", Kind: schemas.FeedKindPost, Author: "user:bob", Ref: "q"}
		waitFor(t, 20*time.Second, "a fan-out after the failover", func() error { return s.AddToFeeds(ctx, readers, next, 10) })
		for _, r := range readers {
			if got, err := s.Feed(ctx, r, "", 10); err != nil || !slices.Equal(got, []schemas.FeedEntry{next, e}) {
				t.Fatalf("feed of %s after the failover: %v (%v)", r, got, err)
			}
		}
	})
}

func manyReaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("reader-%d", i)
	}
	return out
}

// waitFor retries try every 100 ms until it succeeds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
