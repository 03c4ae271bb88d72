package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/connectors/decode"
	"feedline/schemas"
)

// syncBuffer collects a system's logs while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// checkpointed turns checkpoints on (written at a clean stop; the period
// is longer than any test) and collects the logs.
func checkpointed(logs *syncBuffer) func(*serveConfig) {
	return func(cfg *serveConfig) {
		cfg.CheckpointEvery = time.Hour
		cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
	}
}

// numbered is a catalog of n products, priced by price.
func numbered(n int, price int) []catalogRow {
	rows := make([]catalogRow, n)
	for i := range rows {
		rows[i] = catalogRow{fmt.Sprintf("P%04d", i), fmt.Sprintf("Kettle model %d", i), "Acme", []string{"Home", "Kitchen"}, fmt.Sprint(price + i*10), "in stock"}
	}
	return rows
}

// answers is what a restarted system says: search, every reader's stored
// feed, follows and last read, and the report of one more upload with the
// feed news it brings.
type answers struct {
	Products  map[string]schemas.Product
	Kettles   []string
	Feeds     map[string][]schemas.FeedEntry
	Following map[string][]schemas.FollowEdge
	Active    []bool // whether each reader's last read is known
	Upload    schemas.Counts
	// News is what the upload added to each feed: kind, author and
	// product (entry ids carry the time of the upload).
	News map[string][]string
}

func (ts *testSystem) answers(key string, readers []string) answers {
	t := ts.t
	t.Helper()
	ctx := context.Background()
	a := answers{Products: ts.allProducts("acme"), Feeds: map[string][]schemas.FeedEntry{}, Following: map[string][]schemas.FollowEdge{}}
	for _, p := range ts.search(url.Values{"q": {"kettle model"}, "limit": {"50"}}).Hits {
		a.Kettles = append(a.Kettles, p.ID)
	}
	for _, r := range readers {
		feed, err := ts.sys.feeds.Feed(ctx, r, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		following, err := ts.sys.feeds.Following(ctx, r, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		a.Feeds[r], a.Following[r] = feed, following
	}
	last, err := ts.sys.feeds.LastRead(ctx, readers)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range last {
		a.Active = append(a.Active, !at.IsZero())
	}
	// Change detection: half the products cheaper, one gone, one new.
	rows := numbered(120, 20000)
	for i := range rows {
		if i%2 == 0 {
			rows[i].Price = "100"
		}
	}
	rows = append(slices.Delete(rows, 50, 51), catalogRow{"NEW1", "Brand new kettle", "Acme", []string{"Home"}, "5000", "in stock"})
	st := ts.uploadOK("acme", key, delimited(rows, ","), "mode=full")
	a.Upload = st.Counts
	a.Upload.Indexed = 0 // counted as the index stage gets to it
	// The news has arrived once the feeds stop changing for a second.
	stable := 0
	eventually(t, "the upload's news in the feeds", func() bool {
		news := map[string][]string{}
		for _, r := range readers {
			feed, err := ts.sys.feeds.Feed(ctx, r, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range feed {
				if !slices.Contains(a.Feeds[r], e) {
					news[r] = append(news[r], e.Kind+" "+e.Author+" "+e.Ref)
				}
			}
			slices.Sort(news[r])
		}
		if reflect.DeepEqual(news, a.News) && len(news["bob"]) > 0 {
			stable++
		} else {
			stable = 0
		}
		a.News = news
		time.Sleep(100 * time.Millisecond)
		return stable >= 10
	})
	return a
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	// cp keeps the modes: the embedded server's credentials stay private.
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	return dst
}

// TestRestartFromCheckpointsAnswersAsAFullReplay: a system restarted from
// checkpoints taken earlier, and the log written since, answers exactly as
// the same data directory rebuilt from the whole log: search, feeds, the
// follow graph, reader activity and change detection of the next upload.
func TestRestartFromCheckpointsAnswersAsAFullReplay(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	ts := startTestSystemWith(t, dir, checkpointed(logs))
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	alice, bob, eve, finn := ts.shopper("alice"), ts.shopper("bob"), ts.shopper("eve"), ts.shopper("finn")
	for _, f := range []*shopper{bob, eve, finn} {
		f.follow("user", "alice")
		f.follow("shop", "acme")
	}
	eventually(t, "every follow", func() bool { return bob.following()+eve.following()+finn.following() == 6 })
	bob.page("", 1) // bob reads all along
	postMany(40, alice)
	ts.uploadOK("acme", key, delimited(numbered(100, 20000), ","), "mode=full")
	eventually(t, "bob's feed", func() bool { return len(bob.pagedIDs(100)) >= 40 })
	lastRead, err := ts.sys.feeds.LastRead(context.Background(), []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	bobsFeed, err := ts.sys.feeds.Feed(context.Background(), "bob", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ts.stop()
	for _, name := range []string{"normalise-catalog.ckpt", "feeds.ckpt"} {
		if _, err := os.Stat(filepath.Join(checkpointDir(dir), name)); err != nil {
			t.Fatalf("a clean stop wrote no checkpoint %s: %v\n%s", name, err, logs)
		}
	}
	early := copyDir(t, checkpointDir(dir))

	// The tail after those checkpoints: price changes, deletions, posts,
	// an unfollow, a deleted post and a reader's first read.
	ts = startTestSystemWith(t, dir, checkpointed(logs))
	// Reader activity survived to the millisecond (the readers bucket
	// keeps a read once an hour), and bob's feed is there before he reads.
	if got, err := ts.sys.feeds.LastRead(context.Background(), []string{"bob"}); err != nil || !got[0].Equal(lastRead[0].Truncate(time.Millisecond)) {
		t.Errorf("bob's last read after the restart is %v (%v), %v before", got, err, lastRead[0])
	}
	if got, err := ts.sys.feeds.Feed(context.Background(), "bob", "", 1000); err != nil || !slices.Equal(got, bobsFeed) {
		t.Errorf("bob's stored feed after the restart holds %d entries (%v), %d before", len(got), err, len(bobsFeed))
	}
	alice, bob, eve, finn = ts.shopper("alice"), ts.shopper("bob"), ts.shopper("eve"), ts.shopper("finn")
	rows := numbered(110, 20000)
	for i := range 30 {
		rows[i].Price = "900"
	}
	ts.uploadOK("acme", key, delimited(rows[5:], ","), "mode=full")
	late := postMany(25, alice)
	if r := alice.do(http.MethodDelete, "/v1/posts/"+late[3], ""); r.Status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	finn.unfollow("user", "alice")
	eventually(t, "the tail in bob's feed", func() bool { return len(bob.pagedIDs(100)) >= 40+24 })
	eve.page("", 1) // her first read, after the checkpoint, rebuilds her feed
	ts.stop()

	// Put the early checkpoints back: the next start replays the tail.
	if err := os.RemoveAll(checkpointDir(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(checkpointDir(dir), os.DirFS(early)); err != nil {
		t.Fatal(err)
	}
	full := copyDir(t, dir)
	if err := os.RemoveAll(checkpointDir(full)); err != nil {
		t.Fatal(err)
	}
	readers := []string{"bob", "eve", "finn"}

	logs = &syncBuffer{}
	ts = startTestSystemWith(t, dir, checkpointed(logs))
	for _, name := range []string{"normalise-catalog", "feeds"} {
		if logLine(logs, `msg="checkpoint loaded"`, "checkpoint="+name) == "" {
			t.Fatalf("the restart did not load the %s checkpoint:\n%s", name, logs)
		}
	}
	if l := logLine(logs, `msg="normalise state rebuilt"`); strings.Contains(l, "from=1 ") {
		t.Fatalf("normalise replayed the whole log: %s", l)
	}
	got := ts.answers(key, readers)
	ts.stop()

	fullLogs := &syncBuffer{}
	ts = startTestSystemWith(t, full, checkpointed(fullLogs))
	if !strings.Contains(fullLogs.String(), "reason=missing") {
		t.Errorf("the full replay did not say why:\n%s", fullLogs)
	}
	want := ts.answers(key, readers)
	ts.stop()

	if len(want.Products) != 105 || want.Upload.Accepted == 0 || want.Upload.Deleted != 1 || !slices.Equal(want.Active, []bool{true, true, false}) {
		t.Fatalf("the full replay answers %d products, upload %+v: the test's data is off", len(want.Products), want.Upload)
	}
	v, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range v.NumField() {
		if !reflect.DeepEqual(v.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s after a restart from checkpoints differs from a full replay:\n got  %.2000v\n want %.2000v", v.Type().Field(i).Name, v.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

// TestUnusableCheckpointsFallBackToAFullReplay: a corrupt checkpoint, a
// missing one and one older than the log keeps each give a start that
// rebuilds from the whole log, says so in one line, and serves the same
// search answers and feeds.
func TestUnusableCheckpointsFallBackToAFullReplay(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	ts := startTestSystemWith(t, dir, checkpointed(logs))
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	alice, bob := ts.shopper("alice"), ts.shopper("bob")
	bob.follow("user", "alice")
	eventually(t, "the follow", func() bool { return bob.following() == 1 })
	bob.page("", 1)
	postMany(10, alice)
	ts.uploadOK("acme", key, delimited(numbered(50, 20000), ","), "mode=full")
	eventually(t, "bob's feed", func() bool { return len(bob.pagedIDs(100)) >= 10 })
	products, feed := ts.allProducts("acme"), bob.pagedIDs(100)
	ts.stop()
	early := copyDir(t, checkpointDir(dir))

	restart := func(t *testing.T, reason string) {
		t.Helper()
		logs := &syncBuffer{}
		ts := startTestSystemWith(t, dir, checkpointed(logs))
		for _, name := range []string{"normalise-catalog", "feeds"} {
			if !strings.Contains(logLine(logs, "checkpoint="+name, "rebuilding from the whole log"), "reason="+reason) {
				t.Errorf("no log line says the %s checkpoint is %s:\n%s", name, reason, logs)
			}
		}
		if got := ts.allProducts("acme"); !reflect.DeepEqual(got, products) {
			t.Errorf("search answers %d products, %d before", len(got), len(products))
		}
		bob := ts.shopper("bob")
		if got := bob.pagedIDs(100); !slices.Equal(got, feed) {
			t.Errorf("bob's feed has %d items, %d before", len(got), len(feed))
		}
		// Change detection knows every product: the same file changes nothing.
		if st := ts.uploadOK("acme", key, delimited(numbered(50, 20000), ","), "mode=full"); st.Counts.Accepted != 0 || st.Counts.Unchanged != 50 {
			t.Errorf("the same file again: %+v", st.Counts)
		}
		ts.stop()
	}
	t.Run("corrupt", func(t *testing.T) {
		for _, name := range []string{"normalise-catalog.ckpt", "feeds.ckpt"} {
			path := filepath.Join(checkpointDir(dir), name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		restart(t, "corrupt")
	})
	t.Run("missing", func(t *testing.T) {
		// feedline replay removes them, for a rebuild from the whole log.
		for _, what := range []string{"catalog", "feeds"} {
			var out strings.Builder
			if err := replayCmd(t.Context(), []string{what, "--data", dir}, &out, &out); err != nil || !strings.Contains(out.String(), "rebuilt from the whole log at the next start") {
				t.Fatalf("replay %s: %v %s", what, err, out.String())
			}
		}
		if left, _ := filepath.Glob(filepath.Join(checkpointDir(dir), "*.ckpt")); len(left) != 0 {
			t.Fatalf("replay left %v", left)
		}
		restart(t, "missing")
	})
	t.Run("older than retention", func(t *testing.T) {
		// The log no longer holds what followed the early checkpoints:
		// its first messages are gone. A message at the end of each
		// stream, then everything before it purged, as retention would.
		ts := startTestSystemWith(t, dir, checkpointed(&syncBuffer{}))
		ctx := context.Background()
		for _, stream := range []string{"SOCIAL", "PRODUCTS"} {
			st, err := ts.sys.bus.JetStream().Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s purged up to %d", stream, info.State.LastSeq)
		}
		ts.stop()
		if err := os.RemoveAll(checkpointDir(dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(checkpointDir(dir), os.DirFS(early)); err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		ts = startTestSystemWith(t, dir, checkpointed(logs))
		for _, name := range []string{"normalise-catalog", "feeds"} {
			if logLine(logs, "checkpoint="+name, `reason="older than retention"`) == "" {
				t.Errorf("no log line says the %s checkpoint is older than retention:\n%s", name, logs)
			}
		}
		// The search index is kept on disk and still answers.
		if got := ts.allProducts("acme"); len(got) != len(products) {
			t.Errorf("search answers %d products, %d before", len(got), len(products))
		}
		ts.stop()
	})
}

// TestSigkillDuringACheckpointWrite kills feedline serve with SIGKILL
// while it writes a checkpoint (its temporary file is there), as often as
// it takes to catch one; the next start removes the cut-short file, loads
// the previous checkpoint and ends with every product searchable, change
// detection right (the same file again changes nothing) and the feed whole.
func TestSigkillDuringACheckpointWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a feedline process")
	}
	bin := buildBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	env := []string{"FEEDLINE_TOKEN_KEY=" + testTokenKey, "FEEDLINE_CHECKPOINT_EVERY=1s"}
	p := startProcess(t, bin, dir, addr, env...)
	defer func() {
		if t.Failed() || os.Getenv("FEEDLINE_TEST_LOGS") != "" {
			t.Logf("logs of the last run:\n%s", p.logs)
		}
	}()
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, decode.GeneratedMapping)
	alice, bob := ts.shopper("alice"), ts.shopper("bob")
	bob.follow("user", "alice")
	eventually(t, "the follow", func() bool { return bob.following() == 1 })
	bob.page("", 1)
	const rows = 20_000
	var file bytes.Buffer
	if err := decode.GenerateCSV(&file, rows, 11); err != nil {
		t.Fatal(err)
	}
	first := ts.uploadOK("acme", key, file.Bytes(), "mode=full")
	valid := first.Counts.Read - first.Counts.Rejected

	var posts, uploads []string
	caught := false
	for attempt := 0; attempt < 8 && !caught; attempt++ {
		// Each post moves the feed state on, so a checkpoint is written
		// every second; the catalog's is written when an upload moves it.
		stop := make(chan struct{})
		wrote := make(chan []string)
		go func() {
			var ids []string
			defer func() { wrote <- ids }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, ok := postQuietly(ts.base, alice.token, fmt.Sprintf("post %d of attempt %d", i, attempt))
				if !ok {
					return // the process is gone
				}
				ids = append(ids, id)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		if attempt%2 == 1 {
			// A re-upload moves the catalog's sequence too.
			r := ts.upload("acme", key, file.Bytes(), "mode=full")
			var acc struct {
				UploadID string `json:"upload_id"`
			}
			r.json(t, &acc)
			uploads = append(uploads, acc.UploadID)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			tmp, _ := filepath.Glob(filepath.Join(checkpointDir(dir), "*.tmp"))
			if len(tmp) > 0 {
				p.kill(t)
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		close(stop)
		posts = append(posts, <-wrote...)
		if p.cmd.ProcessState == nil {
			p.kill(t)
		}
		tmp, _ := filepath.Glob(filepath.Join(checkpointDir(dir), "*.tmp"))
		caught = len(tmp) > 0
		if caught {
			t.Logf("attempt %d: killed while writing %v", attempt+1, tmp)
		}
		p = startProcess(t, bin, dir, addr, env...)
	}
	if !caught {
		t.Fatal("no kill landed while a checkpoint was being written in 8 attempts")
	}
	for _, id := range uploads {
		if st := ts.waitUpload(id, key); st.State != schemas.StateDone {
			t.Errorf("re-upload %s after the kill ended %s: %s", id, st.State, st.Error)
		}
	}
	if n := ts.productCount(url.Values{"partner": {"acme"}}); int64(n) != valid {
		t.Errorf("after the kill the index holds %d products, want %d", n, valid)
	}
	again := ts.uploadOK("acme", key, file.Bytes(), "mode=full")
	if again.Counts.Accepted != 0 || again.Counts.Deleted != 0 || again.Counts.Unchanged != valid {
		t.Errorf("the same file after the kill: %+v, want %d unchanged and nothing else", again.Counts, valid)
	}
	// Every post that was accepted is in bob's feed, once.
	eventually(t, "every accepted post in bob's feed", func() bool {
		got := bob.pagedIDs(100)
		for _, id := range posts {
			if !slices.Contains(got, id) {
				return false
			}
		}
		return len(got) == len(posts)
	})
	p.terminate(t)
	// The logs are whole once the process has exited.
	if !strings.Contains(p.logs.String(), "removed a checkpoint write that was cut short") {
		t.Errorf("the start after the kill did not remove the cut-short write")
	}
	if tmp, _ := filepath.Glob(filepath.Join(checkpointDir(dir), "*.tmp")); len(tmp) != 0 {
		t.Errorf("cut-short writes are left: %v", tmp)
	}
}

// postQuietly posts as the shopper with token and answers the post id; ok
// is false once the server does not answer (it was killed).
func postQuietly(base, token, text string) (string, bool) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"text": %q}`, text)))
	if err != nil {
		return "", false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer res.Body.Close()
	var a struct{ ID string }
	if res.StatusCode != http.StatusAccepted || json.NewDecoder(res.Body).Decode(&a) != nil {
		return "", false
	}
	return a.ID, true
}

// logLine is the last line of logs that holds every one of parts.
func logLine(logs *syncBuffer, parts ...string) string {
	found := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			found = l
		}
	}
	return found
}
