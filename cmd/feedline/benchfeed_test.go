package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"feedline/connectors/redisfeed/redistest"
)

// TestBenchFeedSmoke runs every step of "feedline bench feed" at tiny
// sizes: each must measure, find every post where it belongs, and report.
func TestBenchFeedSmoke(t *testing.T) {
	out := filepath.Join(t.TempDir(), "feed.md")
	args := []string{"feed", "--followers", "40", "--posts", "4", "--rate", "40", "--duration", "1s", "--authors", "4",
		"--audience", "6", "--users", "60", "--follows", "5", "--mem-feeds", "60", "--threads", "1", "--conns", "2", "--target-rate", "40", "--out", out}
	_, err := exec.LookPath("wrk")
	withWrk := err == nil
	if !withWrk {
		t.Log("wrk is not installed: the read step is left out")
		args = append(args, "--steps", "memory,fanout,freshness")
	}
	var stdout, stderr strings.Builder
	if err := benchCmd(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("bench feed: %v\n%s", err, stderr.String())
	}
	table := stdout.String()
	written, err := os.ReadFile(out)
	if err != nil || string(written) != table {
		t.Errorf("--out holds %q (%v), want the printed table", written, err)
	}
	for _, want := range []string{
		"| fan-out to 40 followers, all feeds updated |", "; 0 feeds missing it |",
		"| fan-out handler alone |", "| fan-out burst |",
		"| freshness at 40 posts/s |", "; 0 post errors, 0 not seen in 3m0s |",
		"| memory per feed entry | 60 feeds × 800 entries",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	perEntry := regexp.MustCompile(`([0-9.]+) bytes per entry`).FindStringSubmatch(table)
	if perEntry == nil {
		t.Fatalf("no bytes per entry in\n%s", table)
	}
	if v, _ := strconv.ParseFloat(perEntry[1], 64); v <= 0 {
		t.Errorf("a feed entry weighs %s bytes", perEntry[1])
	}
	if withWrk {
		reads := regexp.MustCompile(`\| feed read[^|]*\|[^|]*\| ([0-9]+) req/s, [^|]*; 0 errors \|`).FindAllStringSubmatch(table, -1)
		if len(reads) != 2 {
			t.Fatalf("want two error-free feed read rows (full speed, paced), got %d:\n%s", len(reads), table)
		}
		full, _ := strconv.Atoi(reads[0][1])
		paced, _ := strconv.Atoi(reads[1][1])
		if full < 40 || paced <= 0 || paced >= full {
			t.Errorf("full speed %d req/s, paced to 40: %d req/s", full, paced)
		}
	}
}

func TestBenchFeedWithoutWrkSaysHowToInstallIt(t *testing.T) {
	var stdout, stderr strings.Builder
	start := time.Now()
	err := benchCmd(t.Context(), []string{"feed", "--wrk", filepath.Join(t.TempDir(), "no-wrk")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y wrk") || !strings.Contains(err.Error(), "--steps memory,fanout,freshness") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s: a missing wrk must be found before any work", time.Since(start))
	}
}

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

// TestBenchFeedSmokeOnARedisCluster runs the fan-out, freshness and memory
// steps at tiny sizes on a Redis Cluster of the test's own (the bench
// empties the masters it is given): every post reaches every feed, and the
// report names the cluster.
func TestBenchFeedSmokeOnARedisCluster(t *testing.T) {
	cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3})
	args := []string{"feed", "--redis", cl.URL, "--flush", "--steps", "memory,fanout,freshness",
		"--followers", "40", "--posts", "4", "--rate", "40", "--duration", "1s", "--authors", "4", "--audience", "6", "--mem-feeds", "60"}
	var stdout, stderr strings.Builder
	if err := benchCmd(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("bench feed: %v\n%s", err, stderr.String())
	}
	table := stdout.String()
	for _, want := range []string{
		"feed state Redis Cluster,",
		"| fan-out to 40 followers, all feeds updated |", "on each of 3 masters", "; 0 feeds missing it |",
		"| freshness at 40 posts/s |", "; 0 post errors, 0 not seen in 3m0s |",
		"used_memory of every master",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	// The keys it left behind make the next run refuse the cluster.
	args = []string{"feed", "--redis", cl.URL, "--steps", "memory", "--mem-feeds", "10"}
	if err := benchCmd(t.Context(), args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "give a scratch database, or --flush") {
		t.Errorf("a second run on the used cluster: %v", err)
	}
}
