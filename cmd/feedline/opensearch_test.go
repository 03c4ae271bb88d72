package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/api"
	"feedline/connectors/elasticsearch"
	"feedline/schemas"
)

// The TestOpenSearch… tests run the whole system with Elasticsearch as its
// search index on the real node of FEEDLINE_TEST_ES_URL: OpenSearch 2.19.6,
// started by `make services`. With CI=true they fail when it is unset.

func searchNodeURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("FEEDLINE_TEST_ES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FEEDLINE_TEST_ES_URL is not set; .ci/run starts a search node for this test (make services)")
		}
		t.Skip("FEEDLINE_TEST_ES_URL is not set")
	}
	return u
}

// onSearchNode points a test system at addr under a fresh alias, whose
// indexes and template are deleted after the test.
func onSearchNode(t *testing.T, addr string) func(*serveConfig) {
	alias := fmt.Sprintf("feedline-e2e-%016x", rand.Uint64())
	t.Cleanup(func() { dropAlias(t, searchNodeURL(t), alias) })
	return func(c *serveConfig) {
		c.ESURLs = []string{addr}
		c.ESAlias = alias
		c.ESTransport = elasticsearch.OpenSearchTransport{Base: http.DefaultTransport.(*http.Transport).Clone()}
	}
}

// nodeCall sends one request to the search node and decodes a JSON answer.
func nodeCall(t *testing.T, method, u, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s answered %s: %v", method, u, data, err)
		}
	}
	return res.StatusCode
}

func dropAlias(t *testing.T, node, alias string) {
	var indexes map[string]any
	if nodeCall(t, "GET", node+"/"+alias+"-v*", "", &indexes) == http.StatusOK {
		for name := range indexes {
			nodeCall(t, "DELETE", node+"/"+name, "", nil)
		}
	}
	nodeCall(t, "DELETE", node+"/_index_template/feedline-"+alias, "", nil)
}

// TestOpenSearchUploadSearchAndShopNews: an upload is searchable through
// the API with the index on the real node, and a follower's feed shows the
// shop's news with products hydrated from it (one _mget per page).
func TestOpenSearchUploadSearchAndShopNews(t *testing.T) {
	t.Parallel()
	node := searchNodeURL(t)
	dir := t.TempDir()
	tune := onSearchNode(t, node)
	var alias string
	ts := startTestSystemWith(t, dir, func(c *serveConfig) { tune(c); alias = c.ESAlias })
	if _, err := os.Stat(filepath.Join(dir, "search")); !os.IsNotExist(err) {
		t.Fatalf("the embedded index was opened beside Elasticsearch: %v", err)
	}
	key := ts.addPartner("acme")
	bob := ts.shopper("bob")
	bob.follow("shop", "acme")
	eventually(t, "bob follows acme", func() bool {
		var p schemas.FollowPage
		bob.do(http.MethodGet, "/v1/users/bob/following", "").json(t, &p)
		return len(p.Items) == 1
	})
	bob.page("", 1)

	ts.setMapping("acme", key, customMapping)
	st := ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")
	if want := (schemas.Counts{Read: 7, Accepted: 5, Rejected: 2, Indexed: 5}); st.State != schemas.StateDone || st.Counts != want {
		t.Fatalf("upload ended %s with %+v, want done with %+v", st.State, st.Counts, want)
	}
	res := ts.search(url.Values{"q": {"무선"}})
	if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != "acme:A2" {
		t.Errorf("search 무선 = %+v, want only A2", res)
	}
	res = ts.search(url.Values{"q": {"earbud"}, "category": {"Audio"}})
	if res.Total != 1 || res.Hits[0].ID != "acme:A1" {
		t.Errorf("search earbud in Audio = %+v, want A1", res)
	}
	if got := ts.allProducts("acme"); len(got) != len(validSKUs) {
		t.Errorf("%d products searchable, want %d", len(got), len(validSKUs))
	}
	// The documents are on the node, under the alias, at their versions.
	var doc struct {
		Found   bool            `json:"found"`
		Version uint64          `json:"_version"`
		Source  schemas.Product `json:"_source"`
	}
	if nodeCall(t, "GET", node+"/"+alias+"/_doc/acme:A1", "", &doc) != http.StatusOK || !doc.Found || doc.Source.Title != "Wireless Earbuds Pro" || doc.Version != doc.Source.Version {
		t.Errorf("acme:A1 on the node: %+v", doc)
	}

	eventually(t, "five new-product items", func() bool { return len(bob.feedIDs()) == len(validSKUs) })
	cheaper := slices.Clone(testCatalog)
	for i := range cheaper {
		if cheaper[i].SKU == "A1" {
			cheaper[i].Price = "1000"
		}
	}
	ts.uploadOK("acme", key, delimited(cheaper, ","), "mode=full")
	eventually(t, "the price drop", func() bool { return len(bob.feedIDs()) == len(validSKUs)+1 })
	p := bob.page("", 20)
	if top := p.Items[0]; top.Kind != schemas.FeedKindPriceDrop || top.Product == nil || top.Product.ID != "acme:A1" || top.Product.Price != 1000 {
		t.Errorf("newest item %+v product %+v, want acme:A1's price drop hydrated with its new price", top, top.Product)
	}
	for _, it := range p.Items[1:] {
		if it.Kind != schemas.FeedKindProduct || it.Product == nil || it.Product.Partner != "acme" || it.Product.Title == "" {
			t.Errorf("item %+v, want a new product hydrated from the index", it)
		}
	}
}

// TestOpenSearchRefusedTemplateStopsStartup: a node that refuses the index
// template stops the system at start with the node's reason.
func TestOpenSearchRefusedTemplateStopsStartup(t *testing.T) {
	t.Parallel()
	node := searchNodeURL(t)
	cfg := serveConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Stages: allStages, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	onSearchNode(t, node)(&cfg)
	squatter := "squatter-" + cfg.ESAlias
	body := fmt.Sprintf(`{"index_patterns":["%s-v*"],"priority":200,"template":{"settings":{"number_of_shards":1}}}`, cfg.ESAlias)
	if code := nodeCall(t, "PUT", node+"/_index_template/"+squatter, body, nil); code != http.StatusOK {
		t.Fatalf("put the other template: %d", code)
	}
	t.Cleanup(func() { nodeCall(t, "DELETE", node+"/_index_template/"+squatter, "", nil) })

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sys, err := startSystem(ctx, cfg)
	if err == nil {
		_ = sys.Stop(ctx)
		t.Fatal("the system started though the node refuses its index template")
	}
	for _, want := range []string{"elasticsearch: put index template", squatter, "same priority"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error %q does not say %q", err, want)
		}
	}
}

// proxy forwards loopback connections to the search node; stopping it is
// an outage for the system behind it only, not for the shared node.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every forwarded connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestOpenSearchReadyzSaysWhenTheIndexIsDown: /readyz answers 503 naming
// the search index while the node cannot be reached, and ready again once
// it can.
func TestOpenSearchReadyzSaysWhenTheIndexIsDown(t *testing.T) {
	t.Parallel()
	node := searchNodeURL(t)
	u, err := url.Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, u.Host)
	tune := onSearchNode(t, "http://"+px.addr)
	ts := startTestSystemWith(t, t.TempDir(), tune)
	if r := ts.do("GET", "/readyz", "", nil, ""); r.Status != http.StatusOK {
		t.Fatalf("readyz with the node up: %d %s", r.Status, r.Body)
	}
	px.stop()
	r := ts.do("GET", "/readyz", "", nil, "")
	var h api.Problem
	r.json(t, &h)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(h.Detail, "search index not ready") || !strings.Contains(h.Detail, "elasticsearch") {
		t.Errorf("readyz with the node unreachable: %d %s, want 503 naming the search index", r.Status, r.Body)
	}
	if r := ts.do("GET", "/healthz", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("healthz with the node unreachable: %d %s; the process itself is alive", r.Status, r.Body)
	}
	// A search meanwhile is told the outage, and to retry; not a 500.
	if r := ts.do("GET", "/v1/search?q=kettle", "", nil, ""); r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
		strings.Contains(string(r.Body), px.addr) {
		t.Errorf("search with the node unreachable: %d Retry-After %q %s, want 503 with Retry-After and no address", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	px.start()
	// Within the circuit breaker's timeout (30 s) should it have opened.
	deadline := time.Now().Add(45 * time.Second)
	for {
		r := ts.do("GET", "/readyz", "", nil, "")
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %s 45 s after the node came back", r.Status, r.Body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// roundCatalog is n products whose every fourth price carries the round,
// so each full upload of a new round changes a quarter of the catalog.
func roundCatalog(n, round int) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "sku,name,brand,category,price,currency,stock,url")
	for i := range n {
		fmt.Fprintf(&b, "R%05d,Kettle %d,Acme,Home > Kitchen,%d,KRW,in stock,https://shop.example/R%05d\n", i, i, roundPrice(i, round), i)
	}
	return b.Bytes()
}

func roundPrice(i, round int) int64 {
	p := int64(1000 + i)
	if i%4 == 0 {
		p += int64(round) * 100_000
	}
	return p
}

// TestOpenSearchReindexWhileUploading: feedline reindex (its work after
// reading the flags) builds the next index version from the log of the
// running system and swaps the alias while full uploads keep changing a
// quarter of the catalog through the index stage. Searches through the API
// never fail or find fewer products, and afterwards every product has the
// price of the last upload: nothing written during the reindex is lost.
func TestOpenSearchReindexWhileUploading(t *testing.T) {
	t.Parallel()
	node := searchNodeURL(t)
	var cfg serveConfig
	tune := onSearchNode(t, node)
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { tune(c); cfg = *c })
	const n = 6000
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	if st := ts.uploadOK("acme", key, roundCatalog(n, 0), "mode=full"); st.Counts.Indexed != n {
		t.Fatalf("first upload: %+v", st.Counts)
	}

	// Searches all along, straight over HTTP (not ts.search: another goroutine).
	stop := make(chan struct{})
	searched := make(chan error, 1)
	var searches, fewest int
	go func() {
		fewest = n
		for {
			select {
			case <-stop:
				searched <- nil
				return
			case <-time.After(30 * time.Millisecond):
			}
			res, err := http.Get(ts.base + "/v1/search?partner=acme&limit=1")
			if err != nil {
				searched <- err
				return
			}
			var sr schemas.SearchResult
			err = json.NewDecoder(res.Body).Decode(&sr)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				searched <- fmt.Errorf("search answered %d: %v", res.StatusCode, err)
				return
			}
			searches++
			fewest = min(fewest, int(sr.Total))
		}
	}()

	tool := serveConfig{NATS: ts.natsURL(), ESURLs: cfg.ESURLs, ESAlias: cfg.ESAlias, ESTransport: cfg.ESTransport,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	bus, err := connectTool(t.Context(), tool)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var out, progress bytes.Buffer
	reindexed := make(chan error, 1)
	go func() { reindexed <- reindex(t.Context(), tool, bus, &out, &progress) }()

	// Uploads go on until the reindex is over, and once more after it.
	round, done := 0, false
	for !done && round < 8 {
		select {
		case err := <-reindexed:
			if err != nil {
				t.Fatalf("reindex: %v", err)
			}
			done = true
		default:
		}
		round++
		if st := ts.uploadOK("acme", key, roundCatalog(n, round), "mode=full"); st.State != schemas.StateDone || st.Counts.Indexed != n/4 {
			t.Fatalf("upload of round %d: %s %+v, want %d indexed", round, st.State, st.Counts, n/4)
		}
	}
	if !done {
		if err := <-reindexed; err != nil {
			t.Fatalf("reindex: %v", err)
		}
	}
	close(stop)
	if err := <-searched; err != nil {
		t.Fatalf("a search during the reindex failed: %v", err)
	}
	if searches < 10 || fewest < n {
		t.Errorf("%d searches during the reindex, the fewest products found %d, want %d", searches, fewest, n)
	}
	alias := cfg.ESAlias
	if want := fmt.Sprintf("alias %s: %s-v1 → %s-v2;", alias, alias, alias); !strings.HasPrefix(out.String(), want) {
		t.Errorf("reindex said %q, want it to start %q", out.String(), want)
	}
	var aliases map[string]any
	if nodeCall(t, "GET", node+"/_alias/"+alias, "", &aliases) != http.StatusOK || len(aliases) != 1 || aliases[alias+"-v2"] == nil {
		t.Errorf("alias %s is on %v, want %s-v2 alone", alias, aliases, alias)
	}

	got := ts.allProducts("acme")
	if len(got) != n {
		t.Fatalf("%d products searchable after the reindex, want %d", len(got), n)
	}
	wrong := 0
	for i := range n {
		id := fmt.Sprintf("acme:R%05d", i)
		if p := got[id]; p.Price != roundPrice(i, round) {
			if wrong++; wrong <= 5 {
				t.Errorf("%s at price %d, want %d of the last upload (round %d)", id, p.Price, roundPrice(i, round), round)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d products lost a change written during the reindex", wrong, n)
	}
	t.Logf("%d upload rounds, %d searches; %s", round, searches, strings.TrimSpace(out.String()))
}
