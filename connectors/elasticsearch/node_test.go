package elasticsearch

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// recorded returns the body of a recorded example in testdata: the text of
// a string value as is, a structured value as JSON.
func recorded(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("recorded example: %v", err)
	}
	var ex struct {
		Value yaml.Node `yaml:"value"`
	}
	if err := yaml.Unmarshal(raw, &ex); err != nil {
		t.Fatalf("recorded example %s: %v", name, err)
	}
	if ex.Value.Kind == yaml.ScalarNode {
		return []byte(ex.Value.Value)
	}
	var v any
	if err := ex.Value.Decode(&v); err != nil {
		t.Fatalf("recorded example %s: %v", name, err)
	}
	b, err := stdjson.Marshal(v)
	if err != nil {
		t.Fatalf("recorded example %s: %v", name, err)
	}
	return b
}

// recordedJSON decodes a recorded example into generic JSON values, for
// tests that adapt a copy.
func recordedJSON(t testing.TB, name string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := stdjson.Unmarshal(recorded(t, name), &v); err != nil {
		t.Fatalf("recorded example %s is not a JSON object: %v", name, err)
	}
	return v
}

const (
	exInfo           = "_global.info/response/RootNodeInfoResponseExample1.yaml"
	exTemplateReq    = "indices.put_index_template/request/IndicesPutIndexTemplateRequestExample1.yaml"
	exCreateAliasReq = "indices.create/request/indicesCreateRequestExample3.yaml"
	exUpdateAliases  = "indices.update_aliases/request/IndicesUpdateAliasesExample1.yaml"
	exBulkReq        = "_global.bulk/request/BulkRequestExample1.yaml"
	exBulkOK         = "_global.bulk/response/BulkResponseExample1.yaml"
	exBulkErrors     = "_global.bulk/response/BulkResponseExample2.yaml"
	exBulkFiltered   = "_global.bulk/response/BulkResponseExample3.yaml"
	exSearch         = "_global.search/200_response/SearchResponseExample1.yaml"
	exGet            = "_global.get/response/GetResponseExample1.yaml"
)

// seen is one request the node received.
type seen struct {
	Method string
	Path   string
	Query  string
	Body   []byte
}

func (s seen) String() string { return s.Method + " " + s.Path }

// reply is a node's answer: a status and a body (bytes sent as they are,
// brokenOff as the start of a longer answer, anything else as JSON).
type reply struct {
	status int
	body   any
}

// brokenOff is the first part of an answer whose connection then breaks.
type brokenOff []byte

type route struct {
	method, pattern string // pattern as in path.Match
	answer          func(seen) reply
}

// node answers like an Elasticsearch node: the product header, JSON bodies,
// and routes tests set. By default it knows the alias "products" on
// "products-v1" and keeps the external version of bulk-indexed documents,
// answering version conflicts the way Elasticsearch words them.
type node struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	seen   []seen
	routes []route
	docs   map[string]storedDoc
	down   bool // answer 503 to everything
}

type storedDoc struct {
	version int64
	source  stdjson.RawMessage
}

func newNode(t *testing.T) *node {
	n := &node{t: t, docs: map[string]storedDoc{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	n.on("GET", "/", func(seen) reply { return reply{200, recorded(t, exInfo)} })
	n.on("PUT", "/_index_template/*", func(seen) reply { return reply{200, `{"acknowledged":true}`} })
	n.on("GET", "/_alias/products", func(seen) reply {
		return reply{200, `{"products-v1":{"aliases":{"products":{}}}}`}
	})
	n.on("POST", "/*/_bulk", n.bulk)
	n.on("GET", "/*/_doc/*", n.get)
	n.on("POST", "/*/_refresh", func(seen) reply {
		return reply{200, `{"_shards":{"total":1,"successful":1,"failed":0}}`}
	})
	n.on("GET", "/_cluster/health", func(seen) reply { return reply{200, health("green")} })
	n.on("GET", "/*/_mapping", func(s seen) reply {
		index := strings.Split(strings.TrimPrefix(s.Path, "/"), "/")[0]
		return reply{200, map[string]any{index: map[string]any{"mappings": map[string]any{
			"_meta": map[string]any{"feedline_mapping_version": 1}, "dynamic": "false",
		}}}}
	})
	return n
}

func health(status string) string {
	return `{"cluster_name":"my_test_cluster","status":"` + status + `","timed_out":false,"number_of_nodes":1,` +
		`"number_of_data_nodes":1,"active_primary_shards":1,"active_shards":1,"relocating_shards":0,` +
		`"initializing_shards":0,"unassigned_shards":0,"active_shards_percent_as_number":100.0}`
}

// on adds a route; later routes take precedence over earlier ones.
func (n *node) on(method, pattern string, answer func(seen) reply) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes = append([]route{{method, pattern, answer}}, n.routes...)
}

func (n *node) setDown(down bool) {
	n.mu.Lock()
	n.down = down
	n.mu.Unlock()
}

// requests returns what the node received so far, optionally only those
// whose "METHOD /path" matches pattern.
func (n *node) requests(pattern string) []seen {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []seen
	for _, s := range n.seen {
		if ok, _ := path.Match(pattern, s.String()); pattern == "" || ok {
			out = append(out, s)
		}
	}
	return out
}

func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: body}
	n.mu.Lock()
	n.seen = append(n.seen, s)
	down := n.down
	var answer func(seen) reply
	for _, rt := range n.routes {
		if ok, _ := path.Match(rt.pattern, s.Path); ok && rt.method == s.Method {
			answer = rt.answer
			break
		}
	}
	n.mu.Unlock()

	rep := reply{404, `{"error":{"root_cause":[],"type":"unknown_route","reason":"no route in the test node"},"status":404}`}
	switch {
	case down:
		rep = reply{503, `{"error":{"type":"unavailable_shards_exception","reason":"node is down"},"status":503}`}
	case answer != nil:
		rep = answer(s)
	}
	var out []byte
	switch b := rep.body.(type) {
	case brokenOff:
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Length", fmt.Sprint(2*len(b)))
		w.WriteHeader(rep.status)
		_, _ = w.Write(b)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-answer
	case []byte:
		out = b
	case string:
		out = []byte(b)
	default:
		var err error
		if out, err = stdjson.Marshal(b); err != nil {
			n.t.Errorf("node: encode answer: %v", err)
		}
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(out)
}

// bulkAction is one action line of a bulk body and its source line.
type bulkAction struct {
	Op          string
	ID          string  `json:"_id"`
	Index       string  `json:"_index"`
	Version     *int64  `json:"version"`
	VersionType string  `json:"version_type"`
	Source      []byte  `json:"-"`
	Doc         docView `json:"-"`
}

// docView is what tests read of an indexed document.
type docView struct {
	ID             string   `json:"id"`
	Title          string   `json:"title"`
	Version        uint64   `json:"version"`
	Deleted        *bool    `json:"deleted"`
	CategoryPaths  []string `json:"category_paths"`
	EffectivePrice *int64   `json:"effective_price"`
}

// parseBulk reads an NDJSON bulk body; delete actions have no source line.
func parseBulk(t testing.TB, body []byte) []bulkAction {
	t.Helper()
	var out []bulkAction
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var meta map[string]bulkAction
		if err := stdjson.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			t.Fatalf("bulk action line %q: %v", line, err)
		}
		var a bulkAction
		for op, m := range meta {
			a = m
			a.Op = op
		}
		if a.Op != "delete" {
			if !sc.Scan() {
				t.Fatalf("bulk action %s %s has no source line", a.Op, a.ID)
			}
			a.Source = bytes.Clone(bytes.TrimSpace(sc.Bytes()))
			if err := stdjson.Unmarshal(a.Source, &a.Doc); err != nil {
				t.Fatalf("bulk source of %s: %v", a.ID, err)
			}
		}
		out = append(out, a)
	}
	return out
}

// bulkItem adapts the recorded successful index item to id and version.
func bulkItem(t testing.TB, index, id string, version int64) map[string]any {
	items := recordedJSON(t, exBulkOK)["items"].([]any)
	item := items[0].(map[string]any)["index"].(map[string]any)
	item["_index"], item["_id"], item["_version"] = index, id, version
	return map[string]any{"index": item}
}

// bulkError adapts the recorded failed item (BulkResponseExample2) to id,
// status and error.
func bulkError(t testing.TB, index, id string, status int, typ, reason string) map[string]any {
	items := recordedJSON(t, exBulkErrors)["items"].([]any)
	item := items[0].(map[string]any)["update"].(map[string]any)
	errObj := item["error"].(map[string]any)
	item["_index"], item["_id"], item["status"] = index, id, status
	errObj["type"], errObj["reason"], errObj["index"] = typ, reason, index
	return map[string]any{"index": item}
}

func conflictReason(id string, current, provided int64) string {
	return fmt.Sprintf("[%s]: version conflict, current version [%d] is higher or equal to the one provided [%d]", id, current, provided)
}

func bulkResponse(items []map[string]any) map[string]any {
	errs := false
	for _, it := range items {
		for _, v := range it {
			if _, ok := v.(map[string]any)["error"]; ok {
				errs = true
			}
		}
	}
	return map[string]any{"took": 3, "errors": errs, "items": items}
}

// bulk applies a bulk body with external versioning.
func (n *node) bulk(s seen) reply {
	index := strings.Split(strings.TrimPrefix(s.Path, "/"), "/")[0]
	actions := parseBulk(n.t, s.Body)
	items := make([]map[string]any, 0, len(actions))
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range actions {
		if a.Op != "index" || a.Version == nil || a.VersionType != "external" {
			n.t.Errorf("bulk action %+v: want an index action with an external version", a)
			continue
		}
		cur, ok := n.docs[a.ID]
		if ok && cur.version >= *a.Version {
			items = append(items, bulkError(n.t, index, a.ID, 409, "version_conflict_engine_exception", conflictReason(a.ID, cur.version, *a.Version)))
			continue
		}
		n.docs[a.ID] = storedDoc{version: *a.Version, source: a.Source}
		items = append(items, bulkItem(n.t, index, a.ID, *a.Version))
	}
	return reply{200, bulkResponse(items)}
}

// get answers from the stored documents with the recorded get response.
func (n *node) get(s seen) reply {
	parts := strings.Split(strings.TrimPrefix(s.Path, "/"), "/")
	id, err := url.PathUnescape(parts[2])
	if err != nil {
		n.t.Errorf("get %s: %v", s.Path, err)
	}
	n.mu.Lock()
	doc, ok := n.docs[id]
	n.mu.Unlock()
	if !ok {
		return reply{404, map[string]any{"_index": "products-v1", "_id": id, "found": false}}
	}
	r := recordedJSON(n.t, exGet)
	r["_index"], r["_id"], r["_version"], r["_source"] = "products-v1", id, doc.version, doc.source
	return reply{200, r}
}

// testConfig points at the node with fast retries and a quick breaker.
func testConfig(n *node) Config {
	return Config{
		Addresses:       []string{n.srv.URL},
		Refresh:         "wait_for",
		Workers:         1, // one bulk request per Apply, in order, for recorded answers
		MaxRetries:      2,
		RetryBackoff:    func(int) time.Duration { return time.Millisecond },
		BreakerFailures: 3,
		BreakerTimeout:  200 * time.Millisecond,
		RequestTimeout:  5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func openNode(t *testing.T, n *node, cfg Config) *Index {
	t.Helper()
	ix, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	return ix
}

// jsonOf decodes a request body into generic JSON values.
func jsonOf(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := stdjson.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	return v
}

// canonJSON re-encodes generic JSON so equal documents compare equal.
func canonJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := stdjson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back any
	_ = stdjson.Unmarshal(b, &back)
	b, _ = stdjson.Marshal(back)
	return string(b)
}
