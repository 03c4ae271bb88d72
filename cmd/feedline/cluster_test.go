package main

// feedline on a real three-node NATS JetStream cluster, every stream and
// bucket at R3, as compose.yaml deploys it. Tests that leave the nodes alone
// use the cluster of `make services`; tests that kill a node run a cluster
// of their own (pipeline/natstest).

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/pipeline/natstest"
	"feedline/schemas"
	"feedline/topology"
)

// naverCatalog is rows Naver EP rows NV-1…, priced 1000 + row + priceBump;
// every 500th has a price no one can read, so it is rejected. It returns
// the file and the valid ids.
func naverCatalog(rows int, priceBump int) ([]byte, map[string]bool) {
	return naverCatalogPriced(rows, func(i int) int { return 1000 + i%50_000 + priceBump })
}

// naverCatalogPriced is naverCatalog with row i priced priceOf(i).
func naverCatalogPriced(rows int, priceOf func(row int) int) ([]byte, map[string]bool) {
	var b bytes.Buffer
	b.WriteString("id\ttitle\tprice_pc\tnormal_price\tlink\timage_link\tcategory_name1\tcategory_name2\tbrand\tmaker\n")
	valid := map[string]bool{}
	for i := 1; i <= rows; i++ {
		price := fmt.Sprint(priceOf(i))
		if i%500 == 0 {
			price = "문의"
		} else {
			valid[fmt.Sprintf("NV-%d", i)] = true
		}
		fmt.Fprintf(&b, "NV-%d\t무선 청소기 %d\t%s\t%s\thttps://shop.example/nv%d\thttps://img.example/nv%d.jpg\t가전\t청소기\tLG\tLG전자\n",
			i, i, price, price, i, i)
	}
	return b.Bytes(), valid
}

// startClusterSystem runs every stage in this process on cluster c, signed
// in as admin, with streams and buckets at R3.
func startClusterSystem(t *testing.T, c *natstest.Cluster, log *slog.Logger) *testSystem {
	t.Helper()
	return startTestSystemWith(t, t.TempDir(), func(cfg *serveConfig) {
		cfg.NATS, cfg.NATSReplicas = c.URLs(), 3
		cfg.NATSAuth = pipeline.ClientAuth{User: "admin", Password: c.Password("admin")}
		if log != nil {
			cfg.Log = log
		}
	})
}

// waitState polls an upload until cond holds, for at most limit. A 503
// (retry in a few seconds) is what a client may be told while the cluster
// elects a leader; the poll goes on.
func (ts *testSystem) waitState(id, key string, limit time.Duration, what string, cond func(schemas.UploadStatus) bool) schemas.UploadStatus {
	ts.t.Helper()
	deadline := time.Now().Add(limit)
	var s schemas.UploadStatus
	for {
		r := ts.do(http.MethodGet, "/v1/uploads/"+id, key, nil, "")
		switch r.Status {
		case http.StatusOK:
			s = schemas.UploadStatus{}
			r.json(ts.t, &s)
			if cond(s) {
				return s
			}
		case http.StatusServiceUnavailable:
			ts.t.Logf("status of %s: %s", id, r.Body)
		default:
			ts.t.Fatalf("status of %s: %d %s", id, r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("upload %s: %s did not happen within %s: %s %+v", id, what, limit, s.State, s.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An upload being normalised and indexed finishes while a NATS node is
// killed (the leader of PRODUCTS, which normalise writes and index reads):
// the counts add up, every valid product is searchable exactly once; the
// node comes back and the cluster takes the next upload. While a majority
// of the nodes is down, /readyz says NATS is not ready, and ready again
// once they are back.
func TestUploadSurvivesANATSNodeLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and restarts NATS nodes")
	}
	c := natstest.Start(t)
	var logs safeBuffer
	ts := startClusterSystem(t, c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	_, admin := c.Admin()
	key := ts.addPartner("naver")
	ts.setMapping("naver", key, `{"preset": "naver_ep"}`)
	const rows = 30_000
	file, valid := naverCatalog(rows, 0)

	r := ts.upload("naver", key, file, "")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)
	before := ts.waitState(acc.UploadID, key, 2*time.Minute, "normalise and index under way", func(s schemas.UploadStatus) bool {
		return s.Counts.Read > 0 && s.Counts.Indexed > 0 || s.State == schemas.StateDone
	})
	if before.State == schemas.StateDone {
		t.Fatalf("the upload was done before a node could be killed: make the file larger")
	}
	leader, err := c.StreamLeader(t.Context(), admin, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	killed := c.Node(leader)
	c.Kill(killed)
	killedAt := time.Now()
	t.Logf("killed %s, the leader of PRODUCTS, at %+v", leader, before.Counts)

	st := ts.waitState(acc.UploadID, key, 3*time.Minute, "the upload to end", func(s schemas.UploadStatus) bool {
		return s.State == schemas.StateDone || s.State == schemas.StateFailed
	})
	t.Logf("upload ended %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	cn := st.Counts
	if st.State != schemas.StateDone || cn.Read != rows || cn.Read != cn.Accepted+cn.Unchanged+cn.Rejected ||
		cn.Accepted != int64(len(valid)) || cn.Rejected != rows-int64(len(valid)) || cn.Indexed != cn.Accepted {
		t.Fatalf("upload through a node loss: %s %+v (%s), want done with %d accepted and indexed, %d rejected",
			st.State, cn, st.Error, len(valid), rows-len(valid))
	}
	got := ts.allProducts("naver") // fails on a product on two pages
	if len(got) != len(valid) {
		t.Errorf("%d products searchable, want %d", len(got), len(valid))
	}
	for id := range got {
		if !valid[strings.TrimPrefix(id, "naver:")] {
			t.Errorf("product %s is searchable but was not a valid row", id)
		}
	}

	c.Restart(killed)
	t.Logf("%s is back %s after the kill", leader, time.Since(killedAt).Round(time.Millisecond))
	again, _ := naverCatalog(2_000, 7) // 2,000 products change price
	next := ts.uploadOK("naver", key, again, "mode=delta")
	if n := next.Counts; next.State != schemas.StateDone || n.Read != 2_000 || n.Accepted != 1_996 || n.Rejected != 4 || n.Indexed != n.Accepted {
		t.Errorf("the upload after the node came back: %s %+v", next.State, n)
	}
	if p := got["naver:NV-7"]; p.Price != 1007 {
		t.Errorf("NV-7 before the second upload costs %v, want 1007", p.Price)
	}
	var p schemas.Product
	ts.do(http.MethodGet, "/v1/products/naver:NV-7", "", nil, "").json(t, &p)
	if p.Price != 1014 {
		t.Errorf("NV-7 after the second upload costs %v, want 1014", p.Price)
	}

	t.Logf("second upload done %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	// Two of three nodes down: no JetStream quorum.
	ready := func() response { return ts.do(http.MethodGet, "/readyz", "", nil, "") }
	if r := ready(); r.Status != http.StatusOK {
		t.Fatalf("readyz with every node up: %d %s", r.Status, r.Body)
	}
	down := []int{(killed + 1) % 3, (killed + 2) % 3}
	for _, n := range down {
		c.Kill(n)
	}
	eventually(t, "readyz to say NATS is not ready", func() bool {
		r := ready()
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "nats is not ready")
	})
	t.Logf("readyz says NATS is not ready %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	for _, n := range down {
		c.Restart(n)
	}
	deadline := time.Now().Add(time.Minute)
	for r := ready(); r.Status != http.StatusOK; r = ready() {
		if time.Now().After(deadline) {
			t.Fatalf("readyz a minute after the nodes came back: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "dead-lettered") {
		t.Errorf("something was dead-lettered:\n%s", logs.String())
	}
}

// A shopper with 1,500 followers posts while a NATS node is killed (the
// leader of the fan-out stage's consumer): every post reaches every
// follower's feed exactly once.
func TestFanOutSurvivesANATSNodeLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and restarts a NATS node")
	}
	c := natstest.Start(t)
	var logs safeBuffer
	ts := startClusterSystem(t, c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	_, admin := c.Admin()
	ctx := t.Context()
	const followers, posts = 1_500, 6
	star := ts.shopper("star")
	readers := make([]*shopper, followers)
	for i := range readers {
		readers[i] = ts.shopper(fmt.Sprintf("fan-%04d", i))
		readers[i].follow("user", "star")
	}
	eventually(t, "every follow applied", func() bool {
		_, n, err := ts.sys.feeds.FollowCounts(ctx, "", schemas.Author(schemas.FolloweeUser, "star"))
		return err == nil && n == followers
	})
	for _, r := range readers {
		r.page("", 1) // a reader who reads is fanned out to
	}

	var ids []string
	for i := range posts {
		ids = append(ids, star.post(fmt.Sprint("news ", i)))
		if i == 1 {
			leader, err := c.ConsumerLeader(ctx, admin, topology.StreamSocial, "fanout")
			if err != nil {
				t.Fatal(err)
			}
			c.Kill(c.Node(leader))
			t.Logf("killed %s, the leader of the fanout consumer, after post %d", leader, i+1)
		}
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	feedOf := func(reader string) map[string]int {
		entries, err := ts.sys.feeds.Feed(ctx, reader, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, e := range entries {
			got[e.ID]++
		}
		return got
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, r := range readers {
		for {
			got := feedOf(r.id)
			missing := 0
			for id := range want {
				if got[id] == 0 {
					missing++
				}
			}
			if missing == 0 {
				for id, n := range got {
					if !want[id] || n != 1 {
						t.Fatalf("feed of %s holds %s %d times; want each of the %d posts once", r.id, id, n, posts)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("feed of %s lacks %d of the %d posts two minutes after they were made", r.id, missing, posts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if strings.Contains(logs.String(), "dead-lettered") {
		t.Errorf("something was dead-lettered:\n%s", logs.String())
	}
}

// A wrong --nats fails at start, within seconds, saying what is at the
// address: nothing, or something that is not a NATS server.
func TestServeSaysWhyItCannotReachNATS(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accepts and says nothing, as an HTTP port does
		}
	}()
	closed := freeAddr(t)
	for _, tc := range []struct{ name, url, want string }{
		{"nothing listening", "nats://" + closed, "nothing answers"},
		{"not a NATS server", "nats://" + silent.Addr().String(), "is not a NATS server"},
		{"one of two wrong", "nats://" + closed + ",nats://" + silent.Addr().String(), "is not a NATS server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			start := time.Now()
			sys, err := startSystem(ctx, serveConfig{
				DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Stages: allStages, NATS: tc.url, NATSReplicas: 3,
				NATSAuth: pipeline.ClientAuth{User: "admin", Password: "x"}, Log: slog.New(slog.DiscardHandler),
			})
			if err == nil {
				_ = sys.Stop(t.Context())
				t.Fatal("started")
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("took %s to fail", took)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q does not say %q about the address", err, tc.want)
			}
		})
	}
}

// The services of compose.yaml, each as its own NATS user, on a three-node
// cluster of the test's own (it declares feedline's real stream names, which
// another run on the shared cluster would delete under it), every stream and
// bucket at R3: a 100,000-row Naver EP upload is normalised, indexed and
// searchable.
func TestComposeServicesOnTheNATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every stage")
	}
	c := natstest.Start(t)
	u := emptyRedisDB(t, 9)
	_, admin := c.Admin()

	d := loadDeployment(t)
	natsURL := c.URLs()
	onCluster := func(service string) serveConfig {
		cfg := localConfig(t, d, service, natsURL, u.String())
		cfg.NATSReplicas = 3
		cfg.NATSAuth.Password = c.Password(cfg.NATSAuth.User)
		// The one-off declaring service reads its settings from the environment.
		t.Setenv("FEEDLINE_NATS_PASSWORD", cfg.NATSAuth.Password)
		t.Setenv("FEEDLINE_NATS_REPLICAS", "3")
		return cfg
	}
	for name, pr := range d.Feedline() {
		if pr.OneShot {
			onCluster(name)
			var out, errOut bytes.Buffer
			if code := run(t.Context(), pr.Args, &out, &errOut); code != 0 {
				t.Fatalf("service %s (feedline %v) exited %d: %s", name, pr.Args, code, errOut.String())
			}
		}
	}
	var logs safeBuffer
	var apiSys *testSystem
	systems := map[string]*system{}
	for _, service := range []string{"api", "ingest", "normalise", "index", "analytics", "fanout"} {
		cfg := onCluster(service)
		cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("service", service)
		if service == "api" {
			cfg.AdminKey, cfg.TokenKey = testAdminKey, testTokenKey
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		sys, err := startSystem(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("service %s as NATS user %s: %v\n%s", service, cfg.NATSAuth.User, err, logs.String())
		}
		ts := &testSystem{t: t, sys: sys, base: "http://" + sys.addr, dir: cfg.DataDir}
		t.Cleanup(ts.stop)
		systems[service] = sys
		if service == "api" {
			apiSys = ts
		}
	}
	for _, s := range []string{topology.StreamRaw, topology.StreamProducts, "KV_" + topology.BucketUploads, "OBJ_" + topology.ObjectUploads} {
		st, err := admin.Stream(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s, r)
		}
	}
	key := apiSys.addPartner("naver")
	apiSys.setMapping("naver", key, `{"preset": "naver_ep"}`)
	const rows = 100_000
	file, valid := naverCatalog(rows, 0)
	st := apiSys.uploadOK("naver", key, file, "")
	if cn := st.Counts; st.State != schemas.StateDone || cn.Read != rows || cn.Accepted != int64(len(valid)) ||
		cn.Read != cn.Accepted+cn.Unchanged+cn.Rejected || cn.Indexed != cn.Accepted {
		t.Fatalf("100,000 rows through the services on the cluster: %s %+v (%s)", st.State, cn, st.Error)
	}
	// Without Elasticsearch each process has its own embedded index: the
	// index service's holds the catalog.
	index := systems["index"].index
	held := exactCount(t, func(lo, hi int64) schemas.SearchResult {
		res, err := index.Search(t.Context(), schemas.SearchRequest{Partners: []string{"naver"}, MinPrice: &lo, MaxPrice: &hi, Limit: 1})
		if err != nil {
			t.Fatalf("search the index service's index: %v", err)
		}
		return res
	})
	if held != uint64(len(valid)) {
		t.Errorf("index holds %d products, want %d", held, len(valid))
	}
	if p, err := index.Get(t.Context(), "naver:NV-77777"); err != nil || p.Price != 1000+77777%50_000 {
		t.Errorf("product NV-77777: %+v %v", p, err)
	}
	for _, c := range []string{"fetch failed", "nats refused", "dead-lettered"} {
		if strings.Contains(logs.String(), c) {
			t.Errorf("the services logged %q:\n%s", c, logs.String())
		}
	}
}
