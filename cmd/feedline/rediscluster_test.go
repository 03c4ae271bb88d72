package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"feedline/connectors/redisfeed/redistest"
	"feedline/schemas"
	"feedline/stages/fanout"
)

// TestFanoutWaitsOutAKilledRedisMaster kills (SIGKILL) a master of a Redis
// Cluster of the test's own while one author's posts fan out to followers
// on every master. The fan-out stage pauses, since its errors are outages,
// and leaves the posts in JetStream; once the cluster serves every slot
// again, by a replica's promotion or by the master's restart from its
// append-only file, the stage resumes and every follower holds exactly
// every post, once. With no replica the lost slots keep the stage paused
// and /readyz unready, both saying why, and a new process refuses to start.
func TestFanoutWaitsOutAKilledRedisMaster(t *testing.T) {
	t.Parallel()
	t.Run("failover", func(t *testing.T) { testKilledMaster(t, 1) })
	t.Run("restart", func(t *testing.T) { testKilledMaster(t, 0) })
}

func testKilledMaster(t *testing.T, replicas int) {
	cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3, Replicas: replicas, NodeTimeout: time.Second, AppendOnly: true})
	url := cl.URL + "?dial_timeout=1s&read_timeout=2s"
	logs := &safeBuffer{}
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) {
		c.RedisURL = url
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx := t.Context()
	store := ts.sys.feeds

	const followers, posts, killAt = 300, 60, 20
	author := schemas.Author(schemas.FolloweeUser, "alice")
	users := make([]string, followers)
	since := time.Now().Add(-time.Hour)
	for i := range users {
		users[i] = fmt.Sprintf("f%03d", i)
		edge := schemas.FollowEdge{ID: fanout.EntryID(since.Add(time.Duration(i)*time.Millisecond), "follow", users[i], author), User: users[i], Author: author}
		if _, _, err := store.Follow(ctx, edge); err != nil {
			t.Fatal(err)
		}
		if err := store.MarkRead(ctx, users[i], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	masters, err := cl.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters: %v (%v)", masters, err)
	}
	victim := masters[1]

	alice := ts.shopper("alice")
	var posted []string
	for i := range posts {
		if i == killAt {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		posted = append(posted, alice.post(fmt.Sprintf("post %d", i)))
		time.Sleep(10 * time.Millisecond)
	}
	paused := func() float64 { return testutil.ToFloat64(ts.sys.metrics.Paused.WithLabelValues("fanout")) }
	waitUntil(t, 30*time.Second, "the fan-out stage to pause", func() error {
		if paused() == 1 || strings.Contains(logs.String(), "stage pauses") {
			return nil
		}
		return fmt.Errorf("paused gauge %v", paused())
	})

	if replicas == 0 {
		// Nothing can take over: the stage stays paused and says why, and
		// so do /readyz and a process started now.
		waitUntil(t, 30*time.Second, "the masters to mark the dead one failed", func() error {
			r := ts.do(http.MethodGet, "/readyz", "", nil, "")
			if r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "feed store") && strings.Contains(string(r.Body), "cluster_state:fail") {
				return nil
			}
			return fmt.Errorf("/readyz: %d %s", r.Status, r.Body)
		})
		waitUntil(t, 45*time.Second, "the paused stage to say why", func() error {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "stage stays paused") && strings.Contains(line, "stage=fanout") && strings.Contains(line, "cluster_state:fail") {
					return nil
				}
			}
			return fmt.Errorf("no log line of the paused fan-out stage naming the failed slots")
		})
		if paused() != 1 {
			t.Errorf("fan-out paused gauge %v with slots lost", paused())
		}
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := startSystem(startCtx, serveConfig{DataDir: t.TempDir(), Stages: []string{"fanout"}, RedisURL: url,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "cluster_state:fail") && !strings.Contains(err.Error(), victim.Addr) {
			t.Errorf("a process started with slots lost: %v, want a startup error naming them", err)
		}
		if err := victim.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.WaitServing(ctx, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, cl.Logs())
	}

	// Newest first, as a feed pages.
	want := slices.Clone(posted)
	slices.Reverse(want)
	waitUntil(t, 90*time.Second, "every follower to hold every post", func() error {
		if p := paused(); p != 0 {
			return fmt.Errorf("fan-out still paused")
		}
		for _, u := range users {
			got, err := store.Feed(ctx, u, "", posts+10)
			if err != nil {
				return err
			}
			if ids := entryIDs(got); !slices.Equal(ids, want) {
				return fmt.Errorf("feed of %s holds %d entries, want %d: %v", u, len(ids), len(want), ids)
			}
		}
		return nil
	})
	if r := ts.do(http.MethodGet, "/readyz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(logs.String(), "stage resumes after a backend outage") {
		t.Error("the fan-out stage never logged that it resumed")
	}
}

func entryIDs(es []schemas.FeedEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// waitUntil retries try every 50 ms until it succeeds or within passes.
func waitUntil(t *testing.T, within time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisURLIsCheckedAtStart: a Redis URL that names nothing usable
// stops the process before it starts anything, saying what to write.
func TestRedisURLIsCheckedAtStart(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"redis://127.0.0.1:7000,127.0.0.1:7001": "name a Redis Cluster as redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
		"redis+cluster://127.0.0.1:7000/2":      "a Redis Cluster has only database 0",
		"memcached://127.0.0.1:11211":           "redis+cluster:// or rediss+cluster:// for a Redis Cluster",
	} {
		_, err := parseServeConfig([]string{"--redis", url}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "FEEDLINE_REDIS_URL") || !strings.Contains(err.Error(), want) {
			t.Errorf("--redis %s: %v, want an error saying %q", url, err, want)
		}
	}
}
