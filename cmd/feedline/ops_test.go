package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/topology"
)

// lockedBuffer is a bytes.Buffer a command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// feedline top --once reads the running server's /metrics: every stage
// with what it processed, its lag, whether it is paused and its dead letters.
func TestTopShowsEveryStageOfTheRunningServer(t *testing.T) {
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"top", "--once", "--every", "200ms", "--url", ts.base}, &out, &errOut); code != 0 {
		t.Fatalf("feedline top exited %d: %s", code, errOut.String())
	}
	t.Logf("feedline top:\n%s", out.String())
	rows := map[string][]string{}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "feedline top") || !strings.Contains(lines[1], "DEAD LETTERS") {
		t.Fatalf("top's frame:\n%s", out.String())
	}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != 7 {
			t.Fatalf("row %q: want stage, rate, processed, lag, paused, retries, dead letters", l)
		}
		rows[f[0]] = f
	}
	for _, st := range ts.sys.stages {
		r, ok := rows[st]
		if !ok {
			t.Errorf("top lacks stage %s", st)
			continue
		}
		if r[4] != "no" || r[6] != "0" {
			t.Errorf("stage %s: paused %s, dead letters %s; want neither", st, r[4], r[6])
		}
	}
	for _, st := range []string{"ingest", "normalise", "index"} {
		if n, _ := strconv.Atoi(rows[st][2]); n < 1 {
			t.Errorf("stage %s processed %s messages after an upload", st, rows[st][2])
		}
	}
	if code := run(context.Background(), []string{"top", "--once", "--url", "http://127.0.0.1:1"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "is feedline serve running?") {
		t.Errorf("top without a server: exit %d, %s", code, errOut.String())
	}
}

// feedline tap follows a subject as messages pass, with their origin and
// trace, and takes nothing from the stages.
func TestTapFollowsASubjectAsMessagesPass(t *testing.T) {
	ts := startTestSystem(t, t.TempDir())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		done <- run(ctx, []string{"tap", "social.post.>", "--limit", "2", "--data", ts.dir, "--nats-listen", ts.natsListen()}, &out, &errOut)
	}()
	eventually(t, "tap to start", func() bool { return strings.Contains(errOut.String(), "following social.post.> on stream SOCIAL") })
	alice := ts.shopper("alice")
	first := alice.post("first through the tap")
	second := alice.post("second through the tap")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("feedline tap exited %d: %s", code, errOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("tap did not stop after two messages: %s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], first) || !strings.Contains(lines[1], second) ||
		!strings.Contains(lines[0], " social.post.alice #") || !strings.Contains(lines[0], "age=") {
		t.Errorf("tap printed:\n%s\nwant posts %s and %s in order, with subject, sequence and age", out.String(), first, second)
	}
	bob := ts.shopper("bob")
	bob.follow("user", "alice")
	bob.page("", 1)
	third := alice.post("after the tap")
	eventually(t, "the stages to go on as if no tap had been", func() bool {
		ids := bob.feedIDs()
		return len(ids) > 0 && ids[0] == third
	})
	if code := run(context.Background(), []string{"tap", "--data", ts.dir, "--nats-listen", ts.natsListen()}, &out, &errOut); code == 0 {
		t.Error("tap without a subject succeeded")
	}
}

// Normalise gives up on an upload's batches while the mapping version they
// were read with is missing; once it is back, feedline dlq replay --stage
// normalise sends them back to normalise alone, the products arrive, and
// the entries are gone, so a second replay sends nothing.
func TestDLQReplaySendsDeadLettersBackAfterAFix(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := startTestSystemWith(t, dir, func(c *serveConfig) { c.Stages = []string{"api", "ingest", "index", "analytics", "fanout"} })
	key := first.addPartner("acme")
	first.setMapping("acme", key, customMapping)
	r := first.upload("acme", key, delimited(testCatalog, ","), "mode=delta")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)
	eventually(t, "ingest to decode the upload", func() bool {
		_, err := first.sys.ledger.Ingested(ctx, acc.UploadID)
		return err == nil
	})
	// The breakage: the mapping version the batches name disappears.
	kv, err := first.sys.bus.KV(ctx, topology.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := kv.Get(ctx, "acme.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "acme.1"); err != nil {
		t.Fatal(err)
	}
	first.stop()

	ts := startTestSystem(t, dir)
	tool := []string{"--data", ts.dir, "--nats-listen", ts.natsListen()}
	var out, errOut bytes.Buffer
	eventually(t, "normalise to dead-letter the upload's batches", func() bool {
		out.Reset()
		return run(ctx, append([]string{"dlq", "--stage", "normalise"}, tool...), &out, &errOut) == 0 && strings.Contains(out.String(), acc.UploadID)
	})
	if n := ts.search(url.Values{"partner": {"acme"}, "limit": {"1"}}).Total; n != 0 {
		t.Fatalf("%d products before the fix", n)
	}

	// The fix, then the replay.
	kv, err = ts.sys.bus.KV(ctx, topology.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acme.1", saved.Value()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(ctx, append([]string{"dlq", "replay", "--stage", "normalise"}, tool...), &out, &errOut); code != 0 {
		t.Fatalf("feedline dlq replay exited %d: %s", code, errOut.String())
	}
	t.Logf("feedline dlq replay: %s", out.String())
	if !regexp.MustCompile(`^replayed [1-9][0-9]* dead letters of normalise`).MatchString(out.String()) {
		t.Errorf("dlq replay said %q, want some replayed", out.String())
	}
	eventually(t, "the upload's products in search", func() bool {
		return ts.search(url.Values{"partner": {"acme"}, "limit": {"1"}}).Total == uint64(len(validSKUs))
	})
	out.Reset()
	if code := run(ctx, append([]string{"dlq", "--stage", "normalise"}, tool...), &out, &errOut); code != 0 || strings.Contains(out.String(), acc.UploadID) {
		t.Errorf("dlq after the replay (exit %d) still lists the upload:\n%s", code, out.String())
	}
	out.Reset()
	if code := run(ctx, append([]string{"dlq", "replay", "--stage", "normalise"}, tool...), &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "replayed 0 dead letters") {
		t.Errorf("a second replay (exit %d): %q, want nothing sent", code, out.String())
	}
	if code := run(ctx, append([]string{"dlq", "replay"}, tool...), &out, &errOut); code == 0 {
		t.Error("dlq replay without --stage succeeded")
	}
}

// feedline version prints what it was built from, as /metrics labels it.
func TestVersionMatchesBuildInfo(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("feedline version exited %d: %s", code, errOut.String())
	}
	b := readBuildInfo()
	if !strings.Contains(out.String(), "feedline "+b.Version+"\n") || !strings.Contains(out.String(), "go "+b.GoVersion) {
		t.Errorf("feedline version printed %q, want version %s and go %s", out.String(), b.Version, b.GoVersion)
	}
	ts := startTestSystem(t, t.TempDir())
	r := ts.do("GET", "/metrics", "", nil, "")
	want := `feedline_build_info{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1`
	if !strings.Contains(string(r.Body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
