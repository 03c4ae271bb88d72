package main

// The deployment of compose.yaml as separate OS processes on real engines:
// every feedline service of the file, with its command, environment and
// replicas, runs as a built feedline binary of its own, signed in as its own
// NATS user to a three-node JetStream cluster of the test's own, in front of
// the shared OpenSearch node, ClickHouse server and Redis Cluster. Workers
// are killed with SIGKILL while they work and started again.

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"feedline/connectors/redisfeed"
	"feedline/deploy/deploytest"
	"feedline/pipeline/natstest"
	"feedline/schemas"
	"feedline/topology"
)

// requireEngines answers the variables naming the real servers a test
// needs; when any is unset the test fails under CI=true and skips
// otherwise, naming every one that is missing.
func requireEngines(t *testing.T, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	var missing []string
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			got[n] = v
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, ", ") + " not set; make services starts these servers (source services.env)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return got
}

// productHeaderProxy serves a loopback reverse proxy in front of the search
// node at target that adds X-Elastic-Product: Elasticsearch to every
// answer. go-elasticsearch refuses answers without that header, which
// OpenSearch does not send; feedline processes reach the node through the
// proxy, so the binary carries no OpenSearch workaround.
func productHeaderProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("search node URL %q: %v", target, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(res *http.Response) error {
		if res.Header.Get("X-Elastic-Product") == "" {
			res.Header.Set("X-Elastic-Product", "Elasticsearch")
		}
		return nil
	}
	// A killed worker's requests end mid-way, which is no news; the rest
	// is shown if the test fails.
	var errs safeBuffer
	rp.ErrorLog = log.New(&errs, "search proxy: ", log.Lmicroseconds)
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() && errs.String() != "" {
			t.Logf("the search proxy's errors:\n%s", errs.String())
		}
	})
	return srv.URL
}

// serviceProcess is one replica of a compose service, run as a feedline
// process of its own; its output gathers across restarts.
type serviceProcess struct {
	name    string // service and replica, as compose names containers: "normalise-2"
	service string
	stages  []string
	args    []string
	env     []string
	http    string
	logs    *safeBuffer
	cmd     *exec.Cmd
	exited  chan struct{}
	starts  int
}

func (p *serviceProcess) start(t *testing.T, bin string) {
	t.Helper()
	p.starts++
	if p.starts > 1 {
		fmt.Fprintf(p.logs, "--- %s started again ---\n", p.name)
	}
	cmd := exec.Command(bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = natstest.DieWithTest()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
}

func (p *serviceProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL: no draining, no goodbye to NATS.
func (p *serviceProcess) kill(t *testing.T) {
	t.Helper()
	if p.cmd == nil || !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not die within 10s of SIGKILL", p.name)
	}
}

func (p *serviceProcess) get(path string) (int, string, error) {
	res, err := http.Get("http://" + p.http + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// waitReady waits until /readyz answers 200, failing at once if the
// process exits.
func (p *serviceProcess) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body, err := p.get("/readyz")
		if err == nil && code == http.StatusOK {
			if !strings.Contains(body, `"ready"`) {
				t.Fatalf("%s: /readyz answered 200 with %s", p.name, body)
			}
			return
		}
		if !p.running() {
			t.Fatalf("%s (feedline %s) exited before it was ready:\n%s", p.name, strings.Join(p.args, " "), tail(p.logs.String(), 6000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: %d %s %v\n%s", p.name, within, code, body, err, tail(p.logs.String(), 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counter sums the samples of a metric of stage on the process's /metrics;
// an unreachable page counts as 0.
func (p *serviceProcess) counter(metric, stage string) float64 {
	code, body, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		return 0
	}
	var sum float64
	label := `stage="` + stage + `"`
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		labels, value, ok := strings.Cut(line[len(metric):], "} ")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			sum += v
		}
	}
	return sum
}

// withoutRequests drops the API's log lines of answered requests.
func withoutRequests(logs string) string {
	lines := strings.Split(logs, "\n")
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, `"level":"INFO","msg":"request"`) }), "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// feedItems walks a shopper's whole feed through the API.
func (s *shopper) feedItems() []schemas.FeedItem {
	s.ts.t.Helper()
	var items []schemas.FeedItem
	cursor := ""
	for {
		p := s.page(cursor, 100)
		items = append(items, p.Items...)
		if p.NextCursor == "" {
			return items
		}
		cursor = p.NextCursor
	}
}

// uploadAndWait pushes a file through the API process and waits, riding
// out 503s, until the upload ends.
func (ts *testSystem) uploadAndWait(partner, key string, file []byte, query string, within time.Duration) schemas.UploadStatus {
	ts.t.Helper()
	r := ts.upload(partner, key, file, query)
	if r.Status != http.StatusAccepted {
		ts.t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(ts.t, &acc)
	return ts.waitState(acc.UploadID, key, within, "the upload to end", uploadEnded)
}

func uploadEnded(s schemas.UploadStatus) bool {
	switch s.State {
	case schemas.StateDone, schemas.StateFailed, schemas.StateHeld, schemas.StateCancelled:
		return true
	}
	return false
}

// TestSeparateWorkerProcessesOnNATSClusterOpenSearchClickHouseRedisCluster
// runs compose.yaml's deployment as separate processes: nats-setup declares
// every stream and bucket at R3 as NATS user setup, then api, ingest,
// normalise ×2, index ×2, analytics and fanout ×2 run as `feedline serve
// --stages=<stage>`, each as its own NATS user with its own inbox and
// --nats-declare=false, on a NATS cluster of the test's own, the shared
// OpenSearch node (an alias of the test's own), ClickHouse (a database of
// its own) and Redis Cluster (a key prefix of its own). Through the API:
//
//   - every process answers /readyz, /healthz and /metrics;
//   - a 30,000-row upload finishes while a normalise and an index process
//     are killed with SIGKILL and started again: the counts add up, every
//     valid product is searchable once, ClickHouse holds the upload's
//     changes and run; a re-upload with some prices changed then finishes
//     with exactly those changes;
//   - shoppers who follow two shoppers and the shop see a burst of posts,
//     during which a fanout process is killed and started again, each
//     exactly once, newest first, beside the shop's news (new products and
//     the re-upload's price drops), also for a follower whose first read
//     rebuilds the feed;
//   - no process was refused a NATS operation or dead-lettered a message.
func TestSeparateWorkerProcessesOnNATSClusterOpenSearchClickHouseRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the deployment as separate processes on real engines")
	}
	eng := requireEngines(t, "FEEDLINE_TEST_NATS_SERVER", "FEEDLINE_TEST_ES_URL", "FEEDLINE_TEST_CLICKHOUSE", "FEEDLINE_TEST_REDIS_CLUSTER")
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	ctx := t.Context()

	// Names of this run's own on the shared servers.
	run := fmt.Sprintf("%08x", rand.Uint32())
	partner := "shop-" + run
	alias := "feedline-dist-" + run
	chDB := "feedline_dist_" + run
	// Other tests empty feedline's default keys on the shared cluster.
	redisPrefix := "feedline-dist-" + run + ":"

	c := natstest.Start(t)
	_, admin := c.Admin()
	bin := buildBinary(t)
	esURL := eng["FEEDLINE_TEST_ES_URL"]
	proxy := productHeaderProxy(t, esURL)
	t.Cleanup(func() { dropAlias(t, esURL, alias) })

	chBase, err := url.Parse(eng["FEEDLINE_TEST_CLICKHOUSE"])
	if err != nil {
		t.Fatal(err)
	}
	chOpts, err := clickhouse.ParseDSN(chBase.String())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := clickhouse.Open(chOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chDB)
		ch.Close()
	})
	chBase.Path = "/" + chDB

	redisURL := eng["FEEDLINE_TEST_REDIS_CLUSTER"]
	rc, err := redisfeed.NewClient(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := redisfeed.DeleteKeys(cctx, rc, redisPrefix+"*"); err != nil {
			t.Errorf("delete this run's Redis keys: %v", err)
		}
		rc.Close()
	})

	// The services of compose.yaml, pointed at the test's servers.
	d := loadDeployment(t)
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FEEDLINE_") {
			base = append(base, kv)
		}
	}
	environment := func(service string, pr deploytest.Container, httpAddr string) []string {
		env := maps.Clone(pr.Env)
		user := env["FEEDLINE_NATS_USER"]
		for k, v := range map[string]string{
			"FEEDLINE_DATA": t.TempDir(), "FEEDLINE_HTTP": httpAddr,
			"FEEDLINE_NATS": c.URLs(), "FEEDLINE_NATS_PASSWORD": c.Password(user),
			// The search node runs without the security plugin: no users.
			"FEEDLINE_ES_URL": proxy, "FEEDLINE_ES_USERNAME": "", "FEEDLINE_ES_PASSWORD": "", "FEEDLINE_ES_ALIAS": alias,
			"FEEDLINE_CLICKHOUSE_URL": chBase.String(), "FEEDLINE_REDIS_URL": redisURL, "FEEDLINE_REDIS_PREFIX": redisPrefix,
		} {
			env[k] = v
		}
		if _, ok := env["FEEDLINE_ADMIN_KEY"]; ok {
			env["FEEDLINE_ADMIN_KEY"] = testAdminKey
		}
		if _, ok := env["FEEDLINE_TOKEN_KEY"]; ok {
			env["FEEDLINE_TOKEN_KEY"] = testTokenKey
		}
		if user == "" || user == "admin" || env["FEEDLINE_NATS_INBOX"] != natstest.Inbox(user) {
			t.Fatalf("compose service %s signs in as NATS user %q with inbox %q: want a user of its own and inbox %s",
				service, user, env["FEEDLINE_NATS_INBOX"], natstest.Inbox(user))
		}
		out := slices.Clone(base)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			out = append(out, k+"="+env[k])
		}
		return out
	}

	for _, name := range slices.Sorted(maps.Keys(d.Feedline())) {
		pr := d.Feedline()[name]
		if !pr.OneShot {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(cctx, bin, pr.Args...)
		cmd.Env = environment(name, pr, "")
		cmd.SysProcAttr = natstest.DieWithTest()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "declared on") {
			t.Fatalf("%s (feedline %s): %v\n%s", name, strings.Join(pr.Args, " "), err, out)
		}
	}
	for _, s := range []string{topology.StreamUploads, topology.StreamRaw, topology.StreamProducts, topology.StreamSocial, "KV_" + topology.BucketUploads, "OBJ_" + topology.ObjectUploads} {
		st, err := admin.Stream(ctx, s)
		if err != nil {
			t.Fatalf("stream %s after nats declare: %v", s, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s, r)
		}
	}
	phase("streams and buckets declared as NATS user setup")

	byService := map[string][]*serviceProcess{}
	var procs []*serviceProcess
	for _, name := range slices.Sorted(maps.Keys(d.Feedline())) {
		pr := d.Feedline()[name]
		if pr.OneShot {
			continue
		}
		cfg, err := pr.Config()
		if err != nil {
			t.Fatalf("compose service %s: %v", name, err)
		}
		if pr.Env["FEEDLINE_NATS_DECLARE"] != "false" {
			t.Fatalf("compose service %s runs with FEEDLINE_NATS_DECLARE=%q, want false", name, pr.Env["FEEDLINE_NATS_DECLARE"])
		}
		for i := 1; i <= d.Replicas(name); i++ {
			addr := freeAddr(t)
			p := &serviceProcess{name: fmt.Sprintf("%s-%d", name, i), service: name, stages: cfg.Stages, args: pr.Args,
				env: environment(name, pr, addr), http: addr, logs: &safeBuffer{}}
			procs = append(procs, p)
			byService[name] = append(byService[name], p)
		}
	}
	for _, p := range procs {
		t.Cleanup(func() { p.kill(t) })
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("FEEDLINE_TEST_LOGS") != "" {
			for _, p := range procs {
				t.Logf("logs of %s:\n%s", p.name, tail(withoutRequests(p.logs.String()), 8000))
			}
		}
	})
	// As compose starts them: all at once, once nats-setup is done.
	for _, p := range procs {
		p.start(t, bin)
	}
	for _, p := range procs {
		p.waitReady(t, 90*time.Second)
	}
	var names []string
	for _, p := range procs {
		names = append(names, p.name)
	}
	phase("ready: " + strings.Join(names, ", "))
	for _, svc := range []string{"api", "ingest", "normalise", "index", "analytics", "fanout"} {
		if len(byService[svc]) == 0 {
			t.Fatalf("compose.yaml has no service %s", svc)
		}
	}
	for _, p := range procs {
		if code, body, err := p.get("/healthz"); err != nil || code != http.StatusOK || !strings.Contains(body, `"ok"`) {
			t.Errorf("%s /healthz: %d %s %v", p.name, code, body, err)
		}
		if code, body, err := p.get("/metrics"); err != nil || code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("%s /metrics: %d %v", p.name, code, err)
		}
	}

	api := byService["api"][0]
	ts := &testSystem{t: t, base: "http://" + api.http, searchRetry: 10 * time.Second}

	// The shop is a partner before shoppers can follow it.
	key := ts.addPartner(partner)

	// Shoppers: two authors, followers who follow both and the shop, one
	// of whom reads for the first time at the end.
	const followers = 40
	alice, carol := ts.shopper("alice-"+run), ts.shopper("carol-"+run)
	authors := []*shopper{alice, carol}
	var readers []*shopper
	for i := range followers {
		f := ts.shopper(fmt.Sprintf("f%02d-%s", i, run))
		f.follow("user", alice.id)
		f.follow("user", carol.id)
		f.follow("shop", partner)
		readers = append(readers, f)
	}
	late := readers[followers-1]
	waitUntil(t, 60*time.Second, "every follow applied", func() error {
		for _, f := range readers {
			if n := f.following(); n != 3 {
				return fmt.Errorf("%s follows %d, want 3", f.id, n)
			}
		}
		return nil
	})
	for _, f := range readers[:followers-1] {
		f.page("", 1) // a reader who reads is fanned out to
	}
	phase(fmt.Sprintf("%d followers follow %s, %s and shop %s", followers, alice.id, carol.id, partner))

	// 1. Catalog: an upload through killed workers.
	ts.setMapping(partner, key, `{"preset": "naver_ep"}`)
	const rows = 30_000
	priceOf := func(i int) int { return 1000 + i }
	file, valid := naverCatalogPriced(rows, priceOf)
	invalid := rows - len(valid)
	firstDay := time.Now().UTC().Format(time.DateOnly)
	r := ts.upload(partner, key, file, "mode=full")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)
	up := acc.UploadID
	phase("upload " + up + " accepted")

	normalise1, index1 := byService["normalise"][0], byService["index"][0]
	for _, victim := range []struct {
		p     *serviceProcess
		stage string
	}{{normalise1, "normalise"}, {index1, "index"}} {
		s := ts.waitState(up, key, 90*time.Second, victim.p.name+" at work on the upload", func(s schemas.UploadStatus) bool {
			return uploadEnded(s) || victim.p.counter("feedline_stage_messages_in_total", victim.stage) > 0
		})
		if uploadEnded(s) {
			t.Fatalf("the upload ended (%s %+v) before %s could be killed at work: make the file larger", s.State, s.Counts, victim.p.name)
		}
		victim.p.kill(t)
		phase(fmt.Sprintf("killed %s (SIGKILL) at %+v", victim.p.name, s.Counts))
		victim.p.start(t, bin)
	}
	normalise1.waitReady(t, 60*time.Second)
	index1.waitReady(t, 60*time.Second)
	phase("normalise-1 and index-1 started again")

	st := ts.waitState(up, key, 2*time.Minute, "the upload to end", uploadEnded)
	cn := st.Counts
	if st.State != schemas.StateDone || cn.Read != rows || cn.Accepted != int64(len(valid)) || cn.Unchanged != 0 ||
		cn.Rejected != int64(invalid) || cn.Read != cn.Accepted+cn.Unchanged+cn.Rejected || cn.Indexed != cn.Accepted {
		t.Fatalf("upload through killed workers: %s %+v (%s), want done with %d accepted and indexed, %d rejected",
			st.State, cn, st.Error, len(valid), invalid)
	}
	firstDays := map[string]bool{firstDay: true, time.Now().UTC().Format(time.DateOnly): true}
	phase(fmt.Sprintf("upload done: %+v", cn))

	if n := ts.productCount(url.Values{"partner": {partner}}); n != uint64(len(valid)) {
		t.Errorf("search for the partner's products finds %d, want the %d valid rows", n, len(valid))
	}
	got := ts.allProducts(partner) // fails on a product on two pages
	if len(got) != len(valid) {
		t.Errorf("%d products searchable, want %d", len(got), len(valid))
	}
	for id := range got {
		if _, sku := schemas.SplitProductID(id); !valid[sku] {
			t.Errorf("product %s is searchable but was not a valid row", id)
		}
	}
	for _, i := range []int{1, 777, 12_345, rows - 1} {
		id := schemas.ProductID(partner, fmt.Sprintf("NV-%d", i))
		var p schemas.Product
		if r := ts.do(http.MethodGet, "/v1/products/"+id, "", nil, ""); r.Status != http.StatusOK {
			t.Errorf("GET product %s: %d %s", id, r.Status, r.Body)
		} else if r.json(t, &p); p.Title != fmt.Sprintf("무선 청소기 %d", i) || p.Price != int64(priceOf(i)) {
			t.Errorf("product %s is %q at %d, want 무선 청소기 %d at %d", id, p.Title, p.Price, i, priceOf(i))
		}
		res := ts.search(url.Values{"q": {fmt.Sprintf("청소기 %d", i)}, "partner": {partner}})
		if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != id {
			t.Errorf("search for the title of %s finds %d: %v", id, res.Total, hitIDs(res))
		}
	}
	if r := ts.do(http.MethodGet, "/v1/products/"+schemas.ProductID(partner, "NV-500"), "", nil, ""); r.Status != http.StatusNotFound {
		t.Errorf("the rejected row NV-500 as a product: %d %s", r.Status, r.Body)
	}
	phase("every valid product searchable once")

	count := func(query string) (uint64, error) {
		var n uint64
		err := ch.QueryRow(ctx, strings.ReplaceAll(query, "$db", chDB)).Scan(&n)
		return n, err
	}
	analyticsHold := func(upload string, accepted, read, rejected int64) {
		t.Helper()
		waitUntil(t, 60*time.Second, "ClickHouse to hold upload "+upload, func() error {
			changes, err := count("SELECT count() FROM $db.product_changes FINAL WHERE upload_id = '" + upload + "'")
			if err != nil || changes != uint64(accepted) {
				return fmt.Errorf("%d product changes (%v), want %d", changes, err, accepted)
			}
			var runs, rowsRead, acc, rej int64
			err = ch.QueryRow(ctx, "SELECT toInt64(count()), toInt64(sum(rows_read)), toInt64(sum(accepted)), toInt64(sum(rejected)) FROM "+
				chDB+".upload_runs FINAL WHERE upload_id = '"+upload+"'").Scan(&runs, &rowsRead, &acc, &rej)
			if err != nil || runs != 1 || rowsRead != read || acc != accepted || rej != rejected {
				return fmt.Errorf("%d runs reading %d rows, %d accepted, %d rejected (%v); want 1, %d, %d, %d", runs, rowsRead, acc, rej, err, read, accepted, rejected)
			}
			return nil
		})
	}
	analyticsHold(up, int64(len(valid)), rows, int64(invalid))
	phase("ClickHouse holds the upload's changes and run")

	// The re-upload: 30 prices drop by a fifth (shop news), 600 rise by one.
	var dropped []string
	changed := 0
	repriced := func(i int) int {
		switch {
		case i%500 == 0:
			return priceOf(i) // rejected either way
		case i%1000 == 7:
			return priceOf(i) * 8 / 10
		case i%50 == 3:
			return priceOf(i) + 1
		}
		return priceOf(i)
	}
	for i := 1; i <= rows; i++ {
		if i%500 != 0 && repriced(i) != priceOf(i) {
			changed++
			if i%1000 == 7 {
				dropped = append(dropped, schemas.ProductID(partner, fmt.Sprintf("NV-%d", i)))
			}
		}
	}
	again, _ := naverCatalogPriced(rows, repriced)
	st2 := ts.uploadAndWait(partner, key, again, "mode=full", 2*time.Minute)
	if n := st2.Counts; st2.State != schemas.StateDone || n.Read != rows || n.Accepted != int64(changed) || n.Unchanged != int64(len(valid)-changed) ||
		n.Rejected != int64(invalid) || n.Indexed != n.Accepted {
		t.Fatalf("the re-upload after the restarts: %s %+v (%s), want done with %d accepted and indexed, %d unchanged, %d rejected",
			st2.State, n, st2.Error, changed, len(valid)-changed, invalid)
	}
	for _, i := range []int{7, 29_007, 53} {
		id := schemas.ProductID(partner, fmt.Sprintf("NV-%d", i))
		var p schemas.Product
		ts.do(http.MethodGet, "/v1/products/"+id, "", nil, "").json(t, &p)
		if p.Price != int64(repriced(i)) {
			t.Errorf("after the re-upload %s costs %d, want %d", id, p.Price, repriced(i))
		}
	}
	if n := ts.productCount(url.Values{"partner": {partner}}); n != uint64(len(valid)) {
		t.Errorf("after the re-upload search finds %d of the partner's products, want %d", n, len(valid))
	}
	analyticsHold(st2.ID, int64(changed), rows, int64(invalid))
	phase(fmt.Sprintf("re-upload done: %+v; ClickHouse holds it", st2.Counts))

	// 2. Feed: a burst of posts through a killed fan-out process.
	fanout1 := byService["fanout"][0]
	before := fanout1.counter("feedline_stage_messages_in_total", "fanout")
	const burst = 150
	var posts []string
	killedAt := -1
	for i := range burst {
		posts = append(posts, authors[i%2].post(fmt.Sprintf("post %d of the burst", i)))
		if killedAt < 0 && i >= burst/5 && fanout1.counter("feedline_stage_messages_in_total", "fanout") > before {
			fanout1.kill(t)
			killedAt = i
		}
	}
	if killedAt < 0 {
		t.Fatalf("%s took no post of the burst, so none was lost with it", fanout1.name)
	}
	phase(fmt.Sprintf("%d posts made; %s killed (SIGKILL) after post %d", burst, fanout1.name, killedAt+1))
	fanout1.start(t, bin)
	fanout1.waitReady(t, 60*time.Second)
	phase(fanout1.name + " started again")

	wantPosts := newestFirst(posts)
	wantDrops := slices.Sorted(slices.Values(dropped))
	feedHolds := func(f *shopper) error {
		items := f.feedItems()
		var postIDs, drops []string
		news := 0
		for i, it := range items {
			if i > 0 && it.ID >= items[i-1].ID {
				return fmt.Errorf("feed of %s is not newest first, or holds %s twice (item %d)", f.id, it.ID, i)
			}
			switch it.Kind {
			case schemas.FeedKindPost:
				postIDs = append(postIDs, it.ID)
			case schemas.FeedKindPriceDrop:
				drops = append(drops, it.Product.ID)
			case schemas.FeedKindProduct:
				news++
			default:
				return fmt.Errorf("feed of %s holds a %q item", f.id, it.Kind)
			}
		}
		if !slices.Equal(postIDs, wantPosts) {
			return fmt.Errorf("feed of %s holds %d posts, want the %d of the burst newest first (first difference at %d)", f.id, len(postIDs), len(wantPosts), firstDiff(postIDs, wantPosts))
		}
		if slices.Sort(drops); !slices.Equal(drops, wantDrops) {
			return fmt.Errorf("feed of %s holds %d price drops, want the %d of the re-upload once each", f.id, len(drops), len(wantDrops))
		}
		// Ten new products a shop and day become news: twenty at most if
		// the upload ran across midnight (UTC).
		if lo, hi := 10, 10*len(firstDays); news < lo || news > hi {
			return fmt.Errorf("feed of %s holds %d new-product items, want %d to %d", f.id, news, lo, hi)
		}
		return nil
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the fan-out consumer and the feed store hold, to tell a
		// message never handled from an entry written and not shown.
		for _, name := range []string{"fanout", "fanout-catalog"} {
			stream := map[string]string{"fanout": topology.StreamSocial, "fanout-catalog": topology.StreamProducts}[name]
			if cons, err := admin.Consumer(context.Background(), stream, name); err == nil {
				if info, err := cons.Info(context.Background()); err == nil {
					t.Logf("consumer %s on %s: delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d, waiting pulls %d",
						name, stream, info.Delivered.Stream, info.AckFloor.Stream, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting)
				}
			}
		}
		f := readers[0].id
		n, err := rc.ZCard(context.Background(), redisPrefix+"feed:{"+f+"}").Result()
		t.Logf("feed of %s in Redis: %d entries (%v)", f, n, err)
	})
	waitUntil(t, 90*time.Second, "every follower's feed to hold every post and the shop's news once", func() error {
		for _, f := range readers[:followers-1] {
			if err := feedHolds(f); err != nil {
				return err
			}
		}
		return nil
	})
	phase("every follower's feed holds every post once, newest first")
	// The late follower's first read builds the feed from the timelines.
	waitUntil(t, 30*time.Second, "the late follower's first feed", func() error { return feedHolds(late) })
	phase("the late follower's rebuilt feed is the same")

	// 3. Every process still answers, each replica took part, and none was
	// refused an operation.
	for _, p := range procs {
		if code, body, err := p.get("/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /readyz at the end: %d %s %v", p.name, code, body, err)
		}
		if p.starts == 1 && p.service != "api" {
			took := false
			for _, stage := range p.stages {
				took = took || p.counter("feedline_stage_messages_processed_total", stage) > 0
			}
			if !took {
				t.Errorf("%s (stages %v) processed no message", p.name, p.stages)
			}
		}
		for _, bad := range []string{"nats refused an operation", "message dead-lettered", "stage failed", "panic:"} {
			if strings.Contains(p.logs.String(), bad) {
				t.Errorf("%s logged %q", p.name, bad)
			}
		}
	}
	phase("done")
}

func hitIDs(res schemas.SearchResult) []string {
	var ids []string
	for _, p := range res.Hits {
		ids = append(ids, p.ID)
	}
	return ids
}
