package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"feedline/api"
	"feedline/connectors/feedstore"
	"feedline/connectors/redisfeed"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/stages/fanout"
)

// FeedSteps are the steps of the feed benchmark, in the order they run.
func FeedSteps() []string { return []string{"memory", "fanout", "freshness", "read"} }

// FeedConfig is what "feedline bench feed" measures and at which sizes.
type FeedConfig struct {
	RedisURL string // empty: the embedded feed store
	Flush    bool   // empty the Redis database (every master of a cluster) first
	Steps    []string

	Followers int // fanout: followers of the one author
	Posts     int // fanout: posts measured one at a time, and in the burst

	Rate     int           // freshness: posts per second
	Authors  int           // freshness: authors posting
	Audience int           // freshness: active followers of each author
	Duration time.Duration // freshness, and each wrk run

	Users      int // read: shoppers with full feeds
	Follows    int // read: authors each of them follows
	Wrk        string
	Threads    int
	Conns      int
	TargetRate int  // read: the rate the latency target is stated at
	Serve      bool // read: seed, print the wrk command and keep serving

	MemFeeds int // memory: feeds of FeedCap entries seeded to weigh

	Out        string
	CPUProfile string // of the process during the full-speed wrk run
}

// DefaultFeedConfig runs every step at the sizes BENCHMARKS.md reports.
func DefaultFeedConfig() FeedConfig {
	return FeedConfig{
		Steps:     FeedSteps(),
		Followers: 5000, Posts: 200,
		Rate: 500, Authors: 100, Audience: 200, Duration: 20 * time.Second,
		Users: 10_000, Follows: 50, Wrk: "wrk", Threads: 2, Conns: 32, TargetRate: 2000,
		MemFeeds: 10_000,
	}
}

// Validate checks the steps are known and every size is one a run can take.
func (c FeedConfig) Validate() error {
	for _, s := range c.Steps {
		if !slices.Contains(FeedSteps(), s) {
			return fmt.Errorf("unknown step %q (known: %s)", s, strings.Join(FeedSteps(), ", "))
		}
	}
	for name, v := range map[string]int{
		"followers": c.Followers, "posts": c.Posts, "rate": c.Rate, "authors": c.Authors, "audience": c.Audience,
		"users": c.Users, "follows": c.Follows, "threads": c.Threads, "conns": c.Conns, "target-rate": c.TargetRate, "mem-feeds": c.MemFeeds,
	} {
		if v < 1 {
			return fmt.Errorf("--%s %d: want a whole number above 0", name, v)
		}
	}
	if c.Duration < time.Second {
		return fmt.Errorf("--duration %s: want at least 1s", c.Duration)
	}
	if c.Conns < c.Threads {
		return fmt.Errorf("--conns %d: wrk needs at least one connection per thread (--threads %d)", c.Conns, c.Threads)
	}
	return nil
}

func (c FeedConfig) runs(step string) bool { return slices.Contains(c.Steps, step) }

// Feed measures the news feed on a whole system started in this process:
// fan-out to a large audience, freshness under a steady post rate, feed
// reads under wrk, and the memory a feed entry takes. It prints the result
// table to stdout (and to cfg.Out) and its progress to stderr.
func Feed(ctx context.Context, l Launcher, cfg FeedConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.runs("read") && !cfg.Serve {
		path, err := exec.LookPath(cfg.Wrk)
		if err != nil {
			return fmt.Errorf("the read step runs wrk, which was not found (%w); install it with `apt-get install -y wrk` (Debian, Ubuntu), pass its path with --wrk, or leave the step out with --steps %s",
				err, strings.Join(slices.DeleteFunc(slices.Clone(cfg.Steps), func(s string) bool { return s == "read" }), ","))
		}
		cfg.Wrk = path
	}
	b := &feedBench{
		cfg:      cfg,
		launcher: l,
		tag:      benchTag(),
		stdout:   stdout,
		log:      func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) },
		report:   &feedReport{},
	}
	if err := b.run(ctx); err != nil {
		return err
	}
	if len(b.report.rows) == 0 {
		return nil // --serve: nothing measured
	}
	var buf bytes.Buffer
	b.report.print(&buf, b.backend())
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	if cfg.Out != "" {
		return os.WriteFile(cfg.Out, buf.Bytes(), 0o644)
	}
	return nil
}

// feedBench is one run of the feed benchmark.
type feedBench struct {
	cfg      FeedConfig
	launcher Launcher
	tag      string // starts every user id, so runs against one Redis stay apart
	key      []byte
	feeds    schemas.FeedStore // the started system's
	base     string
	http     *http.Client
	posts    schemas.PostStore
	stdout   io.Writer
	log      func(format string, a ...any)
	report   *feedReport

	// cluster is set when the feed state is on a Redis Cluster.
	cluster bool
}

// benchTag is a short random id prefix.
func benchTag() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "b" + hex.EncodeToString(b[:])
}

func (b *feedBench) backend() string {
	switch {
	case b.cluster:
		return "Redis Cluster"
	case b.cfg.RedisURL != "":
		return "Redis"
	}
	return "embedded"
}

func (b *feedBench) embedded() bool { return b.cfg.RedisURL == "" }

// feedCap is the feed policy's cap on entries per feed.
func (b *feedBench) feedCap() int { return feed.Policy{}.WithDefaults().FeedCap }

func (b *feedBench) user(kind string, i int) string { return fmt.Sprintf("%s-%s%d", b.tag, kind, i) }

func (b *feedBench) run(ctx context.Context) error {
	if b.cfg.RedisURL != "" {
		var err error
		if b.cluster, err = checkScratchRedis(ctx, b.cfg.RedisURL, b.cfg.Flush); err != nil {
			return err
		}
	}
	if b.cfg.runs("memory") {
		// Before the system starts, so the heap holds nothing else that grows.
		if err := b.memory(ctx); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	if !b.cfg.runs("fanout") && !b.cfg.runs("freshness") && !b.cfg.runs("read") {
		return nil
	}
	work, err := os.MkdirTemp("", "feedline-bench-feed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var key [24]byte
	_, _ = rand.Read(key[:])
	b.key = []byte(hex.EncodeToString(key[:]))
	sys, err := b.launcher.Start(ctx, Run{
		DataDir: filepath.Join(work, "data"), RedisURL: b.cfg.RedisURL, TokenKey: string(b.key),
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	b.feeds, b.base = sys.Feeds(), "http://"+sys.Addr()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = sys.Stop(sctx)
	}()
	b.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	defer b.http.CloseIdleConnections()
	if b.posts, err = sys.Posts(ctx); err != nil {
		return err
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{{"fanout", b.fanout}, {"freshness", b.freshness}, {"read", b.read}}
	for _, st := range steps {
		if !b.cfg.runs(st.name) {
			continue
		}
		if err := st.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

// checkScratchRedis refuses a database holding data unless told to empty it
// (the bench writes millions of keys and leaves them), and reports whether
// it is a Redis Cluster.
func checkScratchRedis(ctx context.Context, url string, flush bool) (cluster bool, err error) {
	rc, err := redisfeed.NewClient(url)
	if err != nil {
		return false, fmt.Errorf("--redis: %w", err)
	}
	defer rc.Close()
	_, cluster = rc.(*redis.ClusterClient)
	err = redisfeed.EachMaster(ctx, rc, func(ctx context.Context, m *redis.Client) error {
		if flush {
			// ASYNC: emptying millions of keys outlasts the read timeout;
			// the memory step must not start while memory is still freed.
			if err := m.FlushDBAsync(ctx).Err(); err != nil {
				return err
			}
			return waitFreed(ctx, m)
		}
		n, err := m.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("redis %s: %w", m.Options().Addr, err)
		}
		if n > 0 {
			return fmt.Errorf("redis database %d at %s holds %d keys; give a scratch database, or --flush to empty this one", m.Options().DB, m.Options().Addr, n)
		}
		return nil
	})
	return cluster, err
}

// seedFollows makes users follow author, user i's edge older than user i+1's
// (ids are ULIDs: a millisecond apart).
func seedFollows(ctx context.Context, store schemas.FeedStore, author string, users []string, since time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, u := range users {
		g.Go(func() error {
			at := since.Add(time.Duration(i) * time.Millisecond)
			_, _, err := store.Follow(gctx, schemas.FollowEdge{ID: fanout.EntryID(at, "follow", u, author), User: u, Author: author})
			return err
		})
	}
	return g.Wait()
}

// markRead makes users readers who read just now, whom the fan-out writes to.
func markRead(ctx context.Context, store schemas.FeedStore, users []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	now := time.Now()
	for _, u := range users {
		g.Go(func() error { return store.MarkRead(gctx, u, now) })
	}
	return g.Wait()
}

// post publishes a post through the API; it answers when the request was
// sent and when the 202 arrived.
func (b *feedBench) post(ctx context.Context, token, text string) (id string, sent, accepted time.Time, err error) {
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/v1/posts", bytes.NewReader(body))
	if err != nil {
		return "", sent, accepted, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	sent = time.Now()
	res, err := b.http.Do(req)
	if err != nil {
		return "", sent, accepted, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	accepted = time.Now()
	if err != nil {
		return "", sent, accepted, err
	}
	if res.StatusCode != http.StatusAccepted {
		return "", sent, accepted, fmt.Errorf("POST /v1/posts: %d %s", res.StatusCode, data)
	}
	var a struct{ ID string }
	if err := json.Unmarshal(data, &a); err != nil || a.ID == "" {
		return "", sent, accepted, fmt.Errorf("POST /v1/posts answered %s", data)
	}
	return a.ID, sent, accepted, nil
}

func (b *feedBench) token(user string) (string, error) {
	return api.SignToken(b.key, user, 24*time.Hour, time.Now())
}

func postText(i int) string {
	return fmt.Sprintf("post %d: look what I found, %s", i, strings.Repeat("a lovely thing ", 6))
}

var errNotSeen = errors.New("not in the feed in time")

// feedPoll says how waitInFeed looks for an entry.
type feedPoll struct {
	Every time.Duration // between reads, at least
	// Share, when set, stretches the wait to this share of the time
	// waited so far, so a backlog of many waiting posts does not multiply
	// the reads and slow down the very store it measures.
	Share   float64
	Depth   int // newest entries read
	Timeout time.Duration
}

// waitInFeed reads reader's newest entries until id is among them, and
// answers when it was seen.
func (b *feedBench) waitInFeed(ctx context.Context, reader, id string, p feedPoll) (time.Time, error) {
	start := time.Now()
	for {
		entries, err := b.feeds.Feed(ctx, reader, "", p.Depth)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		for _, e := range entries {
			if e.ID == id {
				return now, nil
			}
		}
		waited := now.Sub(start)
		if waited > p.Timeout {
			return time.Time{}, fmt.Errorf("post %s, reader %s: %w", id, reader, errNotSeen)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		time.Sleep(max(p.Every, time.Duration(p.Share*float64(waited))))
	}
}

// missing counts the readers whose feed lacks id among its newest entries.
func (b *feedBench) missing(ctx context.Context, readers []string, id string, depth int) (int, error) {
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, r := range readers {
		g.Go(func() error {
			entries, err := b.feeds.Feed(gctx, r, "", depth)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(entries, func(e schemas.FeedEntry) bool { return e.ID == id }) {
				n.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return int(n.Load()), err
}

// lastWritten answers the readers whose feeds a fan-out to oldestFirst
// (followers, oldest edge first; the stage writes them newest first)
// writes last: the oldest on one Redis; on a Redis Cluster the oldest on
// each master; on the embedded store every one.
func (b *feedBench) lastWritten(ctx context.Context, oldestFirst []string) ([]string, error) {
	st, ok := b.feeds.(*redisfeed.Store)
	if !ok {
		return oldestFirst, nil
	}
	var out []string
	nodes := map[string]bool{}
	for _, r := range oldestFirst {
		node, err := st.Node(ctx, r)
		if err != nil {
			return nil, err
		}
		if !nodes[node] {
			nodes[node] = true
			out = append(out, r)
		}
	}
	return out, nil
}

// fanout times one author's posts reaching every follower's feed: through
// the API and the stage, one post at a time; the stage's handler alone;
// and a burst of posts.
func (b *feedBench) fanout(ctx context.Context) error {
	n := b.cfg.Followers
	star := b.user("star", 0)
	author := schemas.Author(schemas.FolloweeUser, star)
	followers := make([]string, n)
	for i := range followers {
		followers[i] = b.user("s", i)
	}
	start := time.Now()
	if err := seedFollows(ctx, b.feeds, author, followers, time.Now().Add(-2*time.Hour)); err != nil {
		return err
	}
	if err := markRead(ctx, b.feeds, followers); err != nil {
		return err
	}
	b.log("fanout: %d followers seeded in %s", n, time.Since(start).Round(time.Millisecond))
	// The stage pages followers newest edge first, a chunk per feed write,
	// so the oldest edges are written last: user 0's is the very last on
	// Redis (one pipeline, in order); a Redis Cluster writes each master's
	// share of the pipeline in order, the masters at once, so there the
	// last written on each master is checked; the embedded store writes a
	// chunk shard by shard, so there the whole last chunk is checked.
	chunk := feed.Policy{}.WithDefaults().Chunk
	lastChunk := followers[:(n-1)%chunk+1]
	watched, err := b.lastWritten(ctx, lastChunk)
	if err != nil {
		return err
	}
	tok, err := b.token(star)
	if err != nil {
		return err
	}

	fanoutPoll := feedPoll{Every: 100 * time.Microsecond, Depth: 8, Timeout: time.Minute}
	var lat, accept durations
	missing := 0
	for i := range b.cfg.Posts {
		id, sent, acc, err := b.post(ctx, tok, postText(i))
		if err != nil {
			return err
		}
		var seen time.Time
		for _, r := range watched {
			if seen, err = b.waitInFeed(ctx, r, id, fanoutPoll); err != nil {
				return err
			}
		}
		lat = append(lat, seen.Sub(acc))
		accept = append(accept, acc.Sub(sent))
		if i == 0 || i == b.cfg.Posts-1 {
			m, err := b.missing(ctx, followers, id, 8)
			if err != nil {
				return err
			}
			missing += m
		}
	}
	b.log("fanout: %d posts, 202 → in all feeds p50 %s p99 %s", len(lat), ms(lat.pct(0.5)), ms(lat.pct(0.99)))
	target, targetText := 50*time.Millisecond, "p99 ≤ 50 ms"
	if !b.embedded() {
		target, targetText = 250*time.Millisecond, "p99 ≤ 250 ms"
	}
	how := "polling the oldest follower, whose feed the stage writes last"
	switch {
	case b.embedded():
		how = "polling the oldest follower, then every feed of the last chunk written"
	case b.cluster:
		how = fmt.Sprintf("polling, on each of %d masters, the follower whose feed the stage writes last there", len(watched))
	}
	b.report.add(feedRow{
		Step:   fmt.Sprintf("fan-out to %d followers, all feeds updated", n),
		What:   fmt.Sprintf("API 202 → post in every follower's feed; %d posts one at a time (%s); first and last post checked in all %d feeds", len(lat), how, n),
		Result: fmt.Sprintf("p50 %s, p99 %s, max %s; %d feeds missing it", ms(lat.pct(0.5)), ms(lat.pct(0.99)), ms(lat.pct(1)), missing),
		Target: targetText, Met: verdict(lat.pct(0.99) <= target && missing == 0),
	})
	b.report.add(feedRow{
		Step: "POST /v1/posts", What: "request sent → 202 (post stored, event published), one at a time",
		Result: fmt.Sprintf("p50 %s, p99 %s", ms(accept.pct(0.5)), ms(accept.pct(0.99))),
	})

	// The handler alone, on events that bypass JetStream: the fan-out's own cost.
	stage := &fanout.Stage{Store: b.feeds, Posts: b.posts, Policy: feed.Policy{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var handle durations
	for i := range b.cfg.Posts {
		p := schemas.Post{ID: strings.ToLower(ulid.Make().String()), Author: star, Text: postText(i), CreatedAt: time.Now().UTC()}
		data, err := json.Marshal(schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: star, Post: &p, At: p.CreatedAt})
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := stage.HandleSocial(ctx, &pipeline.Message{Data: data}); err != nil {
			return err
		}
		handle = append(handle, time.Since(t0))
	}
	b.report.add(feedRow{
		Step:   "fan-out handler alone",
		What:   fmt.Sprintf("fanout.Stage.HandleSocial of one post to %d followers, %d posts, no JetStream", n, len(handle)),
		Result: fmt.Sprintf("p50 %s, p99 %s, mean %s → %s feed writes/s", ms(handle.pct(0.5)), ms(handle.pct(0.99)), ms(handle.mean()), thousands(float64(n)/handle.mean().Seconds())),
	})

	// A burst: every post at once, through the API and one fan-out stage.
	ids := make([]string, b.cfg.Posts)
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range ids {
		g.Go(func() (err error) {
			ids[i], _, _, err = b.post(gctx, tok, postText(i))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, err := b.feeds.Feed(ctx, followers[0], "", len(ids))
		if err != nil {
			return err
		}
		got := 0
		for _, e := range entries {
			if want[e.ID] {
				got++
			}
		}
		if got == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("burst: %d of %d posts reached the oldest follower in 2 minutes", got, len(ids))
		}
		time.Sleep(time.Millisecond)
	}
	burst := time.Since(t0)
	b.report.add(feedRow{
		Step:   "fan-out burst",
		What:   fmt.Sprintf("%d posts sent at once (8 clients) → all in the oldest follower's feed, one fan-out stage", len(ids)),
		Result: fmt.Sprintf("%s → %s feed writes/s", ms(burst), thousands(float64(len(ids)*n)/burst.Seconds())),
	})
	return nil
}

// freshness posts at a steady rate and times each post from its 202 to
// its author's oldest follower's feed.
func (b *feedBench) freshness(ctx context.Context) error {
	cfg := b.cfg
	authors := make([]string, cfg.Authors)
	tokens := make([]string, cfg.Authors)
	samples := make([][]string, cfg.Authors)
	start := time.Now()
	for a := range authors {
		authors[a] = b.user("fa", a)
		audience := make([]string, cfg.Audience)
		for j := range audience {
			audience[j] = fmt.Sprintf("%s-fr%d-%d", b.tag, a, j)
		}
		if err := seedFollows(ctx, b.feeds, schemas.Author(schemas.FolloweeUser, authors[a]), audience, time.Now().Add(-time.Hour)); err != nil {
			return err
		}
		// The oldest edge is written last (on a cluster, on each master).
		samples[a] = audience[:1]
		if b.cluster {
			var err error
			if samples[a], err = b.lastWritten(ctx, audience); err != nil {
				return err
			}
		}
		if err := markRead(ctx, b.feeds, audience); err != nil {
			return err
		}
		var err error
		if tokens[a], err = b.token(authors[a]); err != nil {
			return err
		}
	}
	b.log("freshness: %d authors × %d followers seeded in %s", cfg.Authors, cfg.Audience, time.Since(start).Round(time.Millisecond))

	total := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	interval := time.Second / time.Duration(cfg.Rate)
	// Every millisecond at first; later a tenth of the time waited, so the
	// reads stay near 10 per post however long a backlog grows. An
	// author's posts arrive 1/(rate/authors) apart: 64 entries deep finds
	// a post read late.
	poll := feedPoll{Every: time.Millisecond, Share: 0.1, Depth: 64, Timeout: 3 * time.Minute}
	var (
		mu             sync.Mutex
		lastSeen       time.Time
		fresh, accept  durations
		postErrs, lost atomic.Int64
		pollers        sync.WaitGroup
		firstErr       atomic.Value
	)
	jobs := make(chan int, 4096)
	var workers sync.WaitGroup
	for range 32 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range jobs {
				a := i % cfg.Authors
				id, sent, acc, err := b.post(ctx, tokens[a], postText(i))
				if err != nil {
					postErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				accept = append(accept, acc.Sub(sent))
				mu.Unlock()
				pollers.Add(1)
				go func() {
					defer pollers.Done()
					var seen time.Time
					for _, r := range samples[a] {
						var err error
						if seen, err = b.waitInFeed(ctx, r, id, poll); err != nil {
							lost.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
							return
						}
					}
					mu.Lock()
					fresh = append(fresh, seen.Sub(acc))
					if seen.After(lastSeen) {
						lastSeen = seen
					}
					mu.Unlock()
				}()
			}
		}()
	}
	t0 := time.Now()
	late := 0
	for i := range total {
		due := t0.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if d < -10*time.Millisecond {
			late++
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	workers.Wait()
	sentFor := time.Since(t0)
	pollers.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if e := firstErr.Load(); e != nil {
		b.log("freshness: first error: %s", e)
	}
	b.log("freshness: %d posts in %s, 202 → visible p50 %s p99 %s", len(fresh), sentFor.Round(time.Millisecond), ms(fresh.pct(0.5)), ms(fresh.pct(0.99)))
	target := 250 * time.Millisecond
	freshWhere := "oldest follower's"
	if b.cluster {
		freshWhere = "last-written follower's on every master"
	}
	b.report.add(feedRow{
		Step: fmt.Sprintf("freshness at %d posts/s", cfg.Rate),
		What: fmt.Sprintf("%d posts over %s from %d authors × %d active followers; API 202 → in the %s feed (store read every 1 ms, or a tenth of the wait when longer)",
			total, cfg.Duration, cfg.Authors, cfg.Audience, freshWhere),
		Result: fmt.Sprintf("p50 %s, p99 %s, max %s; sent at %.0f posts/s (%d more than 10 ms late), all applied by %.1f s (%.0f posts/s); %d post errors, %d not seen in %s",
			ms(fresh.pct(0.5)), ms(fresh.pct(0.99)), ms(fresh.pct(1)), float64(total)/sentFor.Seconds(), late,
			lastSeen.Sub(t0).Seconds(), float64(len(fresh))/lastSeen.Sub(t0).Seconds(), postErrs.Load(), lost.Load(), poll.Timeout),
		Target: "p99 ≤ 250 ms", Met: verdict(fresh.pct(0.99) <= target && postErrs.Load() == 0 && lost.Load() == 0),
	})
	b.report.add(feedRow{
		Step:   fmt.Sprintf("POST /v1/posts at %d/s", cfg.Rate),
		What:   "request sent → 202, 32 clients",
		Result: fmt.Sprintf("p50 %s, p99 %s", ms(accept.pct(0.5)), ms(accept.pct(0.99))),
	})
	return nil
}

// readPattern is who follows whom in the read and memory steps: users
// follow follows authors each, every author has the same audience, and
// every author posts often enough to fill each follower's feed.
type readPattern struct {
	users, follows, authors, postsPerAuthor int
}

func newReadPattern(users, follows, feedCap int) readPattern {
	authors := max(follows, users*follows/500) // an audience of about 500
	follows = min(follows, authors)
	return readPattern{users: users, follows: follows, authors: authors, postsPerAuthor: (feedCap + follows - 1) / follows}
}

// audiences lists each author's followers: user u follows the follows
// authors from u·follows on, wrapping around.
func (p readPattern) audiences(user func(int) string) [][]string {
	out := make([][]string, p.authors)
	for u := range p.users {
		for j := range p.follows {
			a := (u*p.follows + j) % p.authors
			out[a] = append(out[a], user(u))
		}
	}
	return out
}

// seedFeeds writes every author's posts into their followers' feeds (and,
// with timelines, the authors' timelines), oldest first; put stores a
// post's content when not nil.
func (p readPattern) seedFeeds(ctx context.Context, store schemas.FeedStore, audiences [][]string, author func(int) string, feedCap int, timelines bool, put func(context.Context, schemas.Post) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	base := time.Now().Add(-24 * time.Hour)
	for k := range p.postsPerAuthor {
		for a := range p.authors {
			g.Go(func() error {
				at := base.Add(time.Duration(k*p.authors+a) * time.Millisecond)
				post := schemas.Post{ID: fanout.EntryID(at, "seed", author(a), strconv.Itoa(k)), Author: author(a), Text: postText(k), CreatedAt: at.UTC()}
				if put != nil {
					if err := put(gctx, post); err != nil {
						return err
					}
				}
				e := fanout.PostEntry(post)
				if timelines {
					if err := store.AddToTimeline(gctx, e.Author, e, feedCap); err != nil {
						return err
					}
				}
				return store.AddToFeeds(gctx, audiences[a], e, feedCap)
			})
		}
	}
	return g.Wait()
}

// read seeds full feeds and measures GET /v1/feed under wrk.
func (b *feedBench) read(ctx context.Context) error {
	cfg := b.cfg
	feedCap := b.feedCap()
	p := newReadPattern(cfg.Users, cfg.Follows, feedCap)
	user := func(u int) string { return b.user("r", u) }
	author := func(a int) string { return b.user("ra", a) }
	audiences := p.audiences(user)
	start := time.Now()
	for a, aud := range audiences {
		if err := seedFollows(ctx, b.feeds, schemas.Author(schemas.FolloweeUser, author(a)), aud, time.Now().Add(-48*time.Hour)); err != nil {
			return err
		}
	}
	readers := make([]string, p.users)
	for u := range readers {
		readers[u] = user(u)
	}
	if err := markRead(ctx, b.feeds, readers); err != nil {
		return err
	}
	b.log("read: %d users × %d follows seeded in %s", p.users, p.follows, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := p.seedFeeds(ctx, b.feeds, audiences, author, feedCap, true, b.posts.Put); err != nil {
		return err
	}
	b.log("read: %d posts, %d feeds of %d entries seeded in %s", p.authors*p.postsPerAuthor, p.users, p.follows*p.postsPerAuthor, time.Since(start).Round(time.Millisecond))

	tokens := make([]string, min(1000, p.users))
	for i := range tokens {
		var err error
		if tokens[i], err = b.token(user(i)); err != nil {
			return err
		}
	}
	// One page through the API first: it must be full and hydrated.
	if err := b.checkPage(ctx, tokens[0]); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "feedline-wrk-")
	if err != nil {
		return err
	}
	if !cfg.Serve {
		defer os.RemoveAll(dir)
	}
	plain, paced := filepath.Join(dir, "feed.lua"), filepath.Join(dir, "feed-paced.lua")
	if err := os.WriteFile(plain, []byte(feedWrkScript(tokens, false)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(paced, []byte(feedWrkScript(tokens, true)), 0o644); err != nil {
		return err
	}
	url := b.base + "/v1/feed?limit=20"
	secs := fmt.Sprintf("%ds", int(math.Ceil(cfg.Duration.Seconds())))
	common := []string{fmt.Sprintf("-t%d", cfg.Threads), fmt.Sprintf("-c%d", cfg.Conns), "--latency"}
	if cfg.Serve {
		pace := float64(cfg.Conns) * 1000 / float64(cfg.TargetRate)
		fmt.Fprintf(b.stdout, "serving %d full feeds at %s; wrk reads as %d of them:\n  wrk %s -d%s -s %s '%s'\n  wrk %s -d%s -s %s '%s' -- %.2f   # paced: each connection waits about this many ms between requests, minus the latency\n",
			p.users, b.base, len(tokens), strings.Join(common, " "), secs, plain, url, strings.Join(common, " "), secs, paced, url, pace)
		fmt.Fprintf(b.stdout, "interrupt to stop; the scripts stay in %s\n", dir)
		<-ctx.Done()
		return nil
	}

	runWrk := func(d, script string, extra ...string) (wrkResult, string, error) {
		args := append(slices.Clone(common), "-d"+d, "-s", script, url)
		args = append(args, extra...)
		cmd := exec.CommandContext(ctx, cfg.Wrk, args...)
		out, err := cmd.CombinedOutput()
		shown := "wrk " + strings.Join(args, " ")
		if err != nil {
			return wrkResult{}, shown, fmt.Errorf("%s: %w\n%s", shown, err, out)
		}
		r, err := parseWrkSummary(out)
		if err != nil {
			return r, shown, fmt.Errorf("%s: %w\n%s", shown, err, out)
		}
		b.log("%s\n  %.0f req/s, p50 %s, p99 %s, errors %d", shown, r.rate(), ms(r.P50), ms(r.P99), r.errors())
		return r, shown, nil
	}
	shownURL := func(s string) string { return strings.ReplaceAll(s, b.base, "http://<api>") }
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	sat, shown, err := runWrk(secs, plain)
	stopProfile()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("GET /v1/feed?limit=20 (hydrated) as a random one of %d tokens; %d users with %d-entry feeds; `%s`", len(tokens), p.users, p.follows*p.postsPerAuthor, shownURL(shown))
	b.report.add(feedRow{
		Step:   "feed read, wrk at full speed",
		What:   what,
		Result: fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, max %s; %d errors", sat.rate(), ms(sat.P50), ms(sat.P99), ms(sat.Max), sat.errors()),
	})
	// Debian's wrk cannot hold a rate (-R is wrk2's); each connection
	// waits between requests instead, the wait set from a short
	// calibration run so that connections / (wait + latency) is the rate.
	pace := func(rate float64) (r wrkResult, shown string, wait float64, err error) {
		period := float64(cfg.Conns) * 1000 / rate // ms per request per connection
		calib := min(5*time.Second, cfg.Duration)
		c, _, err := runWrk(fmt.Sprintf("%ds", int(calib.Seconds())), paced, fmt.Sprintf("%.3f", period))
		if err != nil {
			return r, "", 0, err
		}
		latency := float64(cfg.Conns)*1000/c.rate() - period // ms a request takes besides the wait
		wait = max(0, period-latency)
		r, shown, err = runWrk(secs, paced, fmt.Sprintf("%.3f", wait))
		return r, shown, wait, err
	}
	targetText := fmt.Sprintf("p99 ≤ 10 ms at %d req/s", cfg.TargetRate)
	step, rate := fmt.Sprintf("feed read paced to ~%d req/s", cfg.TargetRate), float64(cfg.TargetRate)
	if sat.rate() < rate {
		b.report.add(feedRow{
			Step: fmt.Sprintf("feed read at %d req/s", cfg.TargetRate), What: "not reached: wrk at full speed stayed below it",
			Target: targetText, Met: "no",
		})
		// The latency under a moderate load instead.
		rate = math.Round(sat.rate() / 2)
		step, targetText = fmt.Sprintf("feed read paced to ~%.0f req/s (half of full speed)", rate), ""
	}
	pr, shown, wait, err := pace(rate)
	if err != nil {
		return err
	}
	row := feedRow{
		Step:   step,
		What:   fmt.Sprintf("as above, each connection waiting %.2f ms between requests; `%s`", wait, shownURL(shown)),
		Result: fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, max %s; %d errors", pr.rate(), ms(pr.P50), ms(pr.P99), ms(pr.Max), pr.errors()),
	}
	if targetText != "" {
		row.Target = targetText
		row.Met = verdict(pr.P99 <= 10*time.Millisecond && pr.errors() == 0 && pr.rate() >= 0.95*rate)
	}
	b.report.add(row)
	return nil
}

// startCPUProfile profiles the process into path until stop; an empty
// path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// checkPage reads one feed page through the API: it must hold 20 hydrated posts.
func (b *feedBench) checkPage(ctx context.Context, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/v1/feed?limit=20", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var page schemas.FeedPage
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		return fmt.Errorf("GET /v1/feed: %d %s", res.StatusCode, body)
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		return err
	}
	hydrated := 0
	for _, it := range page.Items {
		if it.Post != nil && it.Post.Text != "" {
			hydrated++
		}
	}
	if len(page.Items) != 20 || hydrated != 20 || page.NextCursor == "" {
		return fmt.Errorf("a seeded feed page holds %d items, %d hydrated; want 20 and 20", len(page.Items), hydrated)
	}
	return nil
}

// wrkScript is a wrk script whose request() picks a random one of items,
// the Lua value `item` in request; paced, each connection waits the
// milliseconds given after "--" between requests. done prints one line
// parseWrkSummary reads.
func wrkScript(what string, items []string, request string, paced bool) string {
	var s strings.Builder
	fmt.Fprintf(&s, "-- %s; written by feedline bench.\nlocal items = {\n", what)
	for _, t := range items {
		fmt.Fprintf(&s, "  %q,\n", t)
	}
	s.WriteString(`}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local wait_ms, wait_frac = 0, 0
function init(args)
  math.randomseed(os.time() * 1000 + id)
  local d = tonumber(args[1]) or 0
  wait_ms = math.floor(d)
  wait_frac = d - wait_ms
end
function request()
  local item = items[math.random(#items)]
  ` + request + `
end
`)
	if paced {
		s.WriteString(`-- Whole milliseconds only: a fraction is a chance of one more.
function delay()
  if wait_ms == 0 and wait_frac == 0 then
    return 0
  end
  if math.random() < wait_frac then
    return wait_ms + 1
  end
  return wait_ms
end
`)
	}
	s.WriteString(`function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("feedline-wrk requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f status=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
`)
	return s.String()
}

// feedWrkScript reads the feed as a random one of the shoppers' tokens.
func feedWrkScript(tokens []string, paced bool) string {
	return wrkScript("GET /v1/feed as a random shopper", tokens,
		`return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. item})`, paced)
}

// wrkResult is one wrk run as the script's done line reports it.
type wrkResult struct {
	Requests int64
	Duration time.Duration
	P50, P99 time.Duration
	Max      time.Duration
	Errors   map[string]int64 // status (answers of 400 and above), connect, read, write, timeout
}

func (r wrkResult) rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

func (r wrkResult) errors() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// parseWrkSummary finds the "feedline-wrk k=v ..." line in wrk's output.
func parseWrkSummary(out []byte) (wrkResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "feedline-wrk ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, f := range strings.Fields(line) {
			k, s, ok := strings.Cut(f, "=")
			n, err := strconv.ParseInt(s, 10, 64)
			if !ok || err != nil {
				return wrkResult{}, fmt.Errorf("wrk summary field %q", f)
			}
			v[k] = n
		}
		for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us", "max_us"} {
			if _, ok := v[k]; !ok {
				return wrkResult{}, fmt.Errorf("wrk summary has no %s", k)
			}
		}
		r := wrkResult{
			Requests: v["requests"], Duration: time.Duration(v["duration_us"]) * time.Microsecond,
			P50: time.Duration(v["p50_us"]) * time.Microsecond, P99: time.Duration(v["p99_us"]) * time.Microsecond,
			Max: time.Duration(v["max_us"]) * time.Microsecond, Errors: map[string]int64{},
		}
		for _, k := range []string{"status", "connect", "read", "write", "timeout"} {
			r.Errors[k] = v[k]
		}
		return r, nil
	}
	return wrkResult{}, errors.New("wrk printed no feedline-wrk summary line")
}

// memory weighs feed entries: full feeds seeded into a store of their own,
// the embedded one measured by the Go heap, Redis by its used_memory.
func (b *feedBench) memory(ctx context.Context) error {
	feedCap := b.feedCap()
	p := newReadPattern(b.cfg.MemFeeds, 50, feedCap)
	user := func(u int) string { return b.user("m", u) }
	author := func(a int) string { return b.user("ma", a) }
	audiences := p.audiences(user)
	entries := p.users * p.follows * p.postsPerAuthor
	start := time.Now()
	var used int64
	if b.embedded() {
		before := heapInUse()
		st := feedstore.New()
		if err := p.seedFeeds(ctx, st, audiences, author, feedCap, false, nil); err != nil {
			return err
		}
		used = heapInUse() - before
		runtime.KeepAlive(st)
		_ = st.Close()
	} else {
		prefix := "feedline-bench-mem-" + b.tag + ":"
		st, err := redisfeed.Open(ctx, b.cfg.RedisURL, redisfeed.WithPrefix(prefix))
		if err != nil {
			return err
		}
		defer st.Close()
		rc, err := redisfeed.NewClient(b.cfg.RedisURL)
		if err != nil {
			return err
		}
		defer rc.Close()
		before, err := redisUsedMemory(ctx, rc)
		if err != nil {
			return err
		}
		if err := p.seedFeeds(ctx, st, audiences, author, feedCap, false, nil); err != nil {
			return err
		}
		after, err := redisUsedMemory(ctx, rc)
		if err != nil {
			return err
		}
		used = after - before
		if _, err := redisfeed.DeleteKeys(ctx, rc, prefix+"*"); err != nil {
			return err
		}
	}
	b.log("memory: %d feeds × %d entries seeded in %s: %.1f MiB", p.users, p.follows*p.postsPerAuthor, time.Since(start).Round(time.Millisecond), float64(used)/(1<<20))
	how := "Go heap in use after GC, before and after, in a store of its own"
	if !b.embedded() {
		how = "Redis INFO used_memory before and after"
		if b.cluster {
			how = "Redis INFO used_memory of every master, before and after"
		}
	}
	b.report.add(feedRow{
		Step: "memory per feed entry",
		What: fmt.Sprintf("%d feeds × %d entries, each post fanned out to ~%d feeds (%s)", p.users, p.follows*p.postsPerAuthor, p.users*p.follows/p.authors, how),
		Result: fmt.Sprintf("%.1f bytes per entry (%.1f MiB in all, %s per full feed)", float64(used)/float64(entries), float64(used)/(1<<20),
			bytesIEC(float64(used)/float64(p.users))),
	})
	return nil
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// waitFreed waits until the server has freed what an asynchronous flush
// left to its background thread.
func waitFreed(ctx context.Context, m *redis.Client) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := m.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		pending := "0"
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "lazyfree_pending_objects:"); ok {
				pending = v
			}
		}
		if pending == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis %s still frees %s objects of the flushed database after 5 minutes", m.Options().Addr, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// redisUsedMemory sums used_memory over every master (the one server).
func redisUsedMemory(ctx context.Context, rc redis.UniversalClient) (int64, error) {
	var used atomic.Int64
	err := redisfeed.EachMaster(ctx, rc, func(ctx context.Context, m *redis.Client) error {
		info, err := m.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				used.Add(n)
				return err
			}
		}
		return fmt.Errorf("redis INFO memory of %s has no used_memory", m.Options().Addr)
	})
	return used.Load(), err
}

// durations are latency samples.
type durations []time.Duration

// pct is the q-quantile (nearest rank); pct(1) is the largest.
func (d durations) pct(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (d durations) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func bytesIEC(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// feedRow is one line of the result table.
type feedRow struct{ Step, What, Result, Target, Met string }

type feedReport struct{ rows []feedRow }

func (r *feedReport) add(row feedRow) { r.rows = append(r.rows, row) }

func (r *feedReport) print(w io.Writer, backend string) {
	fmt.Fprintf(w, "feedline bench feed, feed state %s, %s, %d CPUs (%s), %s memory, %s\n\n",
		backend, runtime.Version(), runtime.NumCPU(), cpuModel(), memTotal(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| step | measured | result | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, row := range r.rows {
		target, met := row.Target, row.Met
		if target == "" {
			target, met = "—", "—"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.Step, row.What, row.Result, target, met)
	}
}

// cpuModel reads the processor's name (Linux).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// memTotal reads the machine's memory (Linux).
func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}
