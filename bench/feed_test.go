package bench

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseWrkSummary(t *testing.T) {
	out := []byte("Running 20s test @ http://127.0.0.1:1/v1/feed?limit=20\n  2 threads and 32 connections\n" +
		"feedline-wrk requests=40000 duration_us=20000000 p50_us=1500 p99_us=8200 max_us=31000 status=3 connect=0 read=1 write=0 timeout=0\n")
	r, err := parseWrkSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.rate() != 2000 || r.P50 != 1500*time.Microsecond || r.P99 != 8200*time.Microsecond || r.Max != 31*time.Millisecond || r.errors() != 4 {
		t.Errorf("parsed %+v, rate %.1f, errors %d", r, r.rate(), r.errors())
	}
	if _, err := parseWrkSummary([]byte("Requests/sec: 100\n")); err == nil {
		t.Error("output without the summary line parsed")
	}
	if _, err := parseWrkSummary([]byte("feedline-wrk requests=1 p50_us=x\n")); err == nil {
		t.Error("a malformed summary parsed")
	}
}

// TestReadPatternGivesEveryAuthorOneAudience: the seeded graph is even, and
// every feed fills to the cap.
func TestReadPatternGivesEveryAuthorOneAudience(t *testing.T) {
	p := newReadPattern(10_000, 50, 800)
	if p.authors != 1000 || p.postsPerAuthor != 16 {
		t.Fatalf("pattern %+v", p)
	}
	auds := p.audiences(strconv.Itoa)
	follows := map[string]map[int]bool{}
	for a, aud := range auds {
		if len(aud) != 500 {
			t.Fatalf("author %d has %d followers, want 500", a, len(aud))
		}
		for _, u := range aud {
			if follows[u] == nil {
				follows[u] = map[int]bool{}
			}
			follows[u][a] = true
		}
	}
	if len(follows) != 10_000 {
		t.Fatalf("%d users follow someone", len(follows))
	}
	for u, as := range follows {
		if len(as) != 50 {
			t.Fatalf("user %s follows %d distinct authors, want 50", u, len(as))
		}
	}
	small := newReadPattern(60, 5, 800)
	if small.follows*small.postsPerAuthor != 800 {
		t.Errorf("small pattern %+v fills feeds to %d", small, small.follows*small.postsPerAuthor)
	}
}

// TestFeedConfigValidate: unknown steps and sizes a run cannot take are
// refused before any work, naming the flag.
func TestFeedConfigValidate(t *testing.T) {
	if err := DefaultFeedConfig().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*FeedConfig)
		want   string
	}{
		"an unknown step":         {func(c *FeedConfig) { c.Steps = []string{"fanout", "write"} }, `unknown step "write"`},
		"no followers":            {func(c *FeedConfig) { c.Followers = 0 }, "--followers 0"},
		"a short run":             {func(c *FeedConfig) { c.Duration = 500 * time.Millisecond }, "--duration 500ms"},
		"fewer conns than thread": {func(c *FeedConfig) { c.Threads, c.Conns = 4, 2 }, "--conns 2"},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultFeedConfig()
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
