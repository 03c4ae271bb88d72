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

// TestBenchCatalogSmoke runs the catalog benchmark at a tiny size on the
// embedded default: every step measures and lands in the table.
func TestBenchCatalogSmoke(t *testing.T) {
	var stdout, stderr strings.Builder
	if err := benchCmd(t.Context(), []string{"--rows", "300", "--dir", t.TempDir()}, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	table := stdout.String()
	for _, step := range []string{
		"decode only (CSV, baseline)",
		"upload + decode + normalise (CSV, index off)",
		"re-upload, 5% rows changed, decode + normalise (index off)",
		"upload + decode + normalise (Parquet, index off)",
		"upload to searchable (all stages)",
		"re-upload, 5% rows changed, to fully applied",
		"re-upload, unchanged, to fully applied",
		"restart → /readyz, whole log replayed (checkpoints off)",
		"restart → /readyz from checkpoints",
	} {
		m := regexp.MustCompile(`\| ` + regexp.QuoteMeta(step) + ` \| [0-9.]+ s \| ([0-9]+) \|`).FindStringSubmatch(table)
		if m == nil {
			t.Errorf("the table lacks the step %q:\n%s", step, table)
			continue
		}
		if rate, _ := strconv.Atoi(m[1]); rate <= 0 {
			t.Errorf("%s: %s rows/s", step, m[1])
		}
	}
	// The full pipeline's step reports the search sink's freshness.
	if m := regexp.MustCompile(`\| full pipeline \| search \| ([0-9]+) \| ([0-9.]+) s \| ([0-9.]+) s \|`).FindStringSubmatch(table); m == nil {
		t.Errorf("the table lacks the search freshness of the full pipeline:\n%s", table)
	} else if n, _ := strconv.Atoi(m[1]); n == 0 || parseFloat(m[2]) > parseFloat(m[3]) {
		t.Errorf("search freshness: %s writes, p50 %s s, p99 %s s", m[1], m[2], m[3])
	}
	// The data directory of the full pipeline, by part, after each upload
	// and once the retention passed: then no raw batch is left.
	if !strings.Contains(table, "| part | upload settled | retention passed | re-upload settled | retention passed | unchanged re-upload settled | retention passed |") {
		t.Errorf("the table lacks the data directory after each upload:\n%s", table)
	}
	if m := regexp.MustCompile(`\| stream RAW \| [0-9.]+ (\([0-9.]+\) )?\| 0\.0 \| `).FindStringSubmatch(table); m == nil {
		t.Errorf("raw batches left once the retention passed, or no RAW row:\n%s", table)
	}
	for _, part := range []string{"stream PRODUCTS", "stream OBJ_uploads", "search index", "checkpoints", "other", "**total**"} {
		if !strings.Contains(table, "| "+part+" |") {
			t.Errorf("the data directory lacks %q:\n%s", part, table)
		}
	}
	if !strings.HasPrefix(table, "feedline bench, 300 rows,") {
		t.Errorf("the table's heading: %q", strings.SplitN(table, "\n", 2)[0])
	}
}

func parseFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// TestBenchSearchSmoke builds a small catalog and runs two query classes
// of "feedline bench search" for a second each: every run must answer
// without errors and each identifier must be found.
func TestBenchSearchSmoke(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed")
	}
	dir := t.TempDir()
	args := []string{"search", "--products", "3000", "--dir", dir, "--duration", "1s", "--threads", "1", "--conns", "2", "--rate", "20", "--classes", "identifier,mix"}
	var stdout, stderr strings.Builder
	if err := benchCmd(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("bench search: %v\n%s", err, stderr.String())
	}
	table := stdout.String()
	rows := regexp.MustCompile(`(?m)^\| embedded \| (identifier|mix) \| [^|]+ \| ([0-9.]+) \|.*\| ([0-9]+) \| [0-9.]+ ms \|$`).FindAllStringSubmatch(table, -1)
	if len(rows) != 4 {
		t.Fatalf("want 4 rows (2 classes, full speed and paced), got %d:\n%s", len(rows), table)
	}
	for _, r := range rows {
		if rate, _ := strconv.ParseFloat(r[2], 64); rate <= 0 || r[3] != "0" {
			t.Errorf("row %q: want searches and no errors", r[0])
		}
	}
	if !strings.Contains(table, "embedded index: 3000 products") {
		t.Errorf("no index size in\n%s", table)
	}
	if !strings.Contains(table, "embedded: 200 of 200 identifier searches have their product first") {
		t.Errorf("identifier searches do not all find their product first:\n%s", table)
	}
	// The second run reuses the index.
	stdout.Reset()
	stderr.Reset()
	if err := benchCmd(t.Context(), args, &stdout, &stderr); err != nil || !strings.Contains(stderr.String(), "reusing the index") {
		t.Errorf("second run: %v, reused: %v\n%s", err, strings.Contains(stderr.String(), "reusing the index"), stderr.String())
	}
}
