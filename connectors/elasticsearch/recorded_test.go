package elasticsearch

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/schemas"
)

// The TestRecorded… tests run the adapter against an httptest node that
// answers with the recorded examples in testdata (see its README): they
// check the requests the adapter sends and how it reads real answers, not a
// cluster's behaviour, which the TestLiveOpenSearch… tests cover on a real node.

func TestRecordedOpenCreatesTemplateAndFirstIndex(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("GET", "/_alias/products", func(seen) reply {
		return reply{404, `{"error":"alias [products] missing","status":404}`}
	})
	n.on("PUT", "/products-v1", func(seen) reply {
		return reply{200, `{"acknowledged":true,"shards_acknowledged":true,"index":"products-v1"}`}
	})
	cfg := testConfig(n)
	cfg.Shards, cfg.Replicas = 3, 1
	openNode(t, n, cfg)

	got := n.requests("")
	var calls []string
	for _, s := range got {
		calls = append(calls, s.String())
	}
	want := []string{"GET /", "PUT /_index_template/feedline-products", "GET /_alias/products", "PUT /products-v1"}
	if !slices.Equal(calls, want) {
		t.Fatalf("requests %v, want %v", calls, want)
	}

	// The template is the one schemas defines, shaped like the recorded
	// put-template request.
	tmpl := jsonOf(t, got[1].Body).(map[string]any)
	wantTmpl, _ := stdjson.Marshal(NewIndexTemplate("products", 3, 1))
	if canonJSON(t, tmpl) != canonJSON(t, jsonOf(t, wantTmpl)) {
		t.Errorf("template body\n got %s\nwant %s", got[1].Body, wantTmpl)
	}
	for key := range recordedJSON(t, exTemplateReq) {
		if _, ok := tmpl[key]; !ok {
			t.Errorf("template body lacks %q of the recorded request", key)
		}
	}
	settings := tmpl["template"].(map[string]any)["settings"].(map[string]any)
	if settings["number_of_shards"] != 3.0 || settings["number_of_replicas"] != 1.0 {
		t.Errorf("settings %v, want 3 shards and 1 replica", settings)
	}
	if got := tmpl["index_patterns"]; !reflect.DeepEqual(got, []any{"products-v*"}) {
		t.Errorf("index_patterns %v", got)
	}
	analyzer := settings["analysis"].(map[string]any)["analyzer"].(map[string]any)[TextAnalyzer].(map[string]any)
	if f := analyzer["filter"]; !reflect.DeepEqual(f, []any{"cjk_width", "lowercase", "cjk_bigram", "english_plural"}) || analyzer["tokenizer"] != "standard" {
		t.Errorf("text analyzer %v", analyzer)
	}
	stemmer := settings["analysis"].(map[string]any)["filter"].(map[string]any)["english_plural"]
	if !reflect.DeepEqual(stemmer, map[string]any{"type": "stemmer", "language": "plural_english"}) {
		t.Errorf("plural stemmer %v", stemmer)
	}

	// The index is created with the alias, as in the recorded create request.
	create := jsonOf(t, got[3].Body).(map[string]any)
	rec := recordedJSON(t, exCreateAliasReq)
	if reflect.TypeOf(create["aliases"]) != reflect.TypeOf(rec["aliases"]) || len(create) != len(rec) {
		t.Errorf("create body %s is not shaped like the recorded %v", got[3].Body, rec)
	}
	if !reflect.DeepEqual(create["aliases"], map[string]any{"products": map[string]any{}}) {
		t.Errorf("create body %s, want the alias products", got[3].Body)
	}
}

func TestRecordedOpenKeepsExistingAlias(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	openNode(t, n, testConfig(n))
	if c := n.requests("PUT /products-v*"); len(c) != 0 {
		t.Errorf("Open created an index though the alias exists: %v", c)
	}
}

func TestRecordedOpenLosesCreationRace(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	var mu sync.Mutex
	created := false
	n.on("GET", "/_alias/products", func(seen) reply {
		mu.Lock()
		defer mu.Unlock()
		if !created {
			return reply{404, `{"error":"alias [products] missing","status":404}`}
		}
		return reply{200, `{"products-v1":{"aliases":{"products":{}}}}`}
	})
	// Another worker created the index between our alias check and create.
	n.on("PUT", "/products-v1", func(seen) reply {
		mu.Lock()
		created = true
		mu.Unlock()
		return reply{400, `{"error":{"root_cause":[{"type":"resource_already_exists_exception","reason":"index [products-v1/abc] already exists"}],` +
			`"type":"resource_already_exists_exception","reason":"index [products-v1/abc] already exists","index":"products-v1"},"status":400}`}
	})
	openNode(t, n, testConfig(n))
	if c := n.requests("GET /_alias/products"); len(c) != 2 {
		t.Errorf("alias checked %d times, want before and after the lost race", len(c))
	}
}

func TestRecordedOpenRefusesOldCluster(t *testing.T) {
	t.Parallel()
	cases := []struct {
		distribution, number string
		ok                   bool
	}{
		{"", "7.17.0", false},
		{"opensearch", "1.3.19", false},
		{"opensearch", "2.19.6", true}, // it answers the 7.10 API the adapter uses
		{"", "8.19.7", true},
	}
	for _, c := range cases {
		n := newNode(t)
		n.on("GET", "/", func(seen) reply {
			info := recordedJSON(t, exInfo)
			v := info["version"].(map[string]any) // adapted: another version
			v["number"] = c.number
			if c.distribution != "" {
				v["distribution"] = c.distribution
			}
			return reply{200, info}
		})
		ix, err := Open(t.Context(), testConfig(n))
		switch {
		case c.ok && err != nil:
			t.Errorf("Open on %s %s: %v", c.distribution, c.number, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.number)):
			t.Errorf("Open on %s %s: err %v, want a version error", c.distribution, c.number, err)
		}
		if err == nil {
			_ = ix.Close()
		}
	}
}

func product(sku, title string) schemas.Product {
	return schemas.Product{
		ID: schemas.ProductID("shop1", sku), Partner: "shop1", SKU: sku, Title: title,
		Brand: "삼성", Category: []string{"전자제품", "음향기기"}, Price: 99000, Currency: "KRW",
		Availability: schemas.InStock, UpdatedAt: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), Version: 1,
	}
}

func upsert(p schemas.Product, v uint64) schemas.ProductChange {
	p.Version = v
	return schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: v, Product: &p}
}

func remove(id string, v uint64) schemas.ProductChange {
	return schemas.ProductChange{Kind: schemas.ChangeDelete, ID: id, Version: v}
}

func TestRecordedBulkRequestShape(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix := openNode(t, n, testConfig(n))
	sale := int64(79000)
	p := product("a", `Quote " and \ back`)
	p.SalePrice = &sale
	if _, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(p, 7), remove("shop1:b", 9)}); err != nil {
		t.Fatal(err)
	}
	bulks := n.requests("POST /products/_bulk")
	if len(bulks) != 1 {
		t.Fatalf("%d bulk requests, want 1", len(bulks))
	}
	for _, q := range []string{"refresh=wait_for", "filter_path="} {
		if !strings.Contains(bulks[0].Query, q) {
			t.Errorf("bulk query %q lacks %q", bulks[0].Query, q)
		}
	}
	// Our parser reads the recorded bulk request, so it reads real bodies.
	if rec := parseBulk(t, recorded(t, exBulkReq)); len(rec) != 4 || rec[1].Op != "delete" || rec[3].Op != "update" {
		t.Fatalf("recorded bulk request parsed as %+v", rec)
	}
	actions := parseBulk(t, bulks[0].Body)
	if len(actions) != 2 {
		t.Fatalf("bulk actions %+v", actions)
	}
	a, d := actions[0], actions[1]
	if a.ID != p.ID || *a.Version != 7 || a.VersionType != "external" {
		t.Errorf("upsert action %+v", a)
	}
	var stored schemas.Product
	if err := stdjson.Unmarshal(a.Source, &stored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, mustVersion(p, 7)) {
		t.Errorf("stored product\n got %+v\nwant %+v", stored, p)
	}
	if !slices.Equal(a.Doc.CategoryPaths, []string{"전자제품", "전자제품 > 음향기기"}) || *a.Doc.EffectivePrice != 79000 || *a.Doc.Deleted {
		t.Errorf("derived fields %+v", a.Doc)
	}
	// A delete is a tombstone indexed at the delete's version.
	if d.Op != "index" || d.ID != "shop1:b" || *d.Version != 9 || d.Doc.Deleted == nil || !*d.Doc.Deleted || d.Doc.Version != 9 {
		t.Errorf("delete action %+v doc %s", d, d.Source)
	}
}

func mustVersion(p schemas.Product, v uint64) schemas.Product {
	p.Version = v
	return p
}

func TestRecordedBulkPartialFailure(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	// BulkResponseExample2 as recorded: two items refused with
	// document_missing_exception (404), then one created.
	n.on("POST", "/products/_bulk", func(seen) reply { return reply{200, recorded(t, exBulkErrors)} })
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{
		upsert(product("5", "Five"), 1), upsert(product("6", "Six"), 1), upsert(product("7", "Seven"), 1),
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Indexed != 1 || res.Stale != 0 || len(res.Rejected) != 2 {
		t.Fatalf("result %+v, want 1 indexed and 2 rejected", res)
	}
	for i, r := range res.Rejected {
		if r.At != i || r.Reason != "document_missing_exception: ["+string(rune('5'+i))+"]: document missing" {
			t.Errorf("rejected %+v", r)
		}
	}
	if c := n.requests("POST /products/_bulk"); len(c) != 1 {
		t.Errorf("%d bulk requests, want 1: refused items are not retried", len(c))
	}
}

func TestRecordedBulkMixedOperations(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	// BulkResponseExample1 as recorded: index 201, delete 404 not_found,
	// create 201, update 200.
	n.on("POST", "/products/_bulk", func(seen) reply { return reply{200, recorded(t, exBulkOK)} })
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{
		upsert(product("1", "One"), 1), remove("shop1:2", 1), upsert(product("3", "Three"), 1), upsert(product("4", "Four"), 1),
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Indexed != 3 || res.Deleted != 0 || len(res.Rejected) != 1 || res.Rejected[0].At != 1 {
		t.Errorf("result %+v, want 3 indexed and the 404 item rejected", res)
	}
}

func TestRecordedBulkFilteredResponse(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	// BulkResponseExample3 is the recorded answer with filter_path: items
	// keep only their error, so the status is missing.
	n.on("POST", "/products/_bulk", func(seen) reply { return reply{200, recorded(t, exBulkFiltered)} })
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("5", "Five"), 1), upsert(product("6", "Six"), 1)})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Rejected) != 2 || !strings.HasPrefix(res.Rejected[0].Reason, "document_missing_exception") {
		t.Errorf("result %+v, want both rejected with the recorded error", res)
	}
}

func TestRecordedVersionConflicts(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix := openNode(t, n, testConfig(n))
	p := product("s", "Second title")
	apply := func(changes ...schemas.ProductChange) schemas.ApplyResult {
		t.Helper()
		res, err := ix.Apply(t.Context(), changes)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return res
	}
	check := func(name string, res, want schemas.ApplyResult) {
		t.Helper()
		if res.Indexed != want.Indexed || res.Deleted != want.Deleted || res.Stale != want.Stale ||
			!slices.Equal(res.StaleAt, want.StaleAt) || len(res.Rejected) != 0 {
			t.Errorf("%s: %+v, want %+v", name, res, want)
		}
	}
	check("v2", apply(upsert(p, 2)), schemas.ApplyResult{Indexed: 1})
	check("v1 after v2 (409, current higher)", apply(upsert(p, 1)), schemas.ApplyResult{Stale: 1, StaleAt: []int{0}})
	check("v2 again (409, current equal)", apply(upsert(p, 2)), schemas.ApplyResult{Indexed: 1})
	check("delete v3", apply(remove(p.ID, 3)), schemas.ApplyResult{Deleted: 1})
	check("delete v3 again", apply(remove(p.ID, 3)), schemas.ApplyResult{Deleted: 1})
	check("upsert v2 after delete v3", apply(upsert(p, 2)), schemas.ApplyResult{Stale: 1, StaleAt: []int{0}})
	if _, err := ix.Get(t.Context(), p.ID); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get after delete: %v, want ErrNotFound", err)
	}

	// One call, one product several times: only the highest version is
	// sent; the others are stale, or count like it when equal.
	before := len(n.requests("POST /products/_bulk"))
	a, b := product("a", "Alpha"), product("b", "Beta")
	changes := []schemas.ProductChange{upsert(a, 1), upsert(a, 2), upsert(b, 2), upsert(b, 1), upsert(b, 2), remove("shop1:c", 5), upsert(product("c", "Gamma"), 4)}
	res := apply(changes...)
	check("same product twice", res, schemas.ApplyResult{Indexed: 3, Deleted: 1, Stale: 3, StaleAt: []int{0, 3, 6}})
	bulks := n.requests("POST /products/_bulk")[before:]
	var sent []string
	for _, bk := range bulks {
		for _, act := range parseBulk(t, bk.Body) {
			sent = append(sent, act.ID)
		}
	}
	if !sameSet(sent, []string{a.ID, b.ID, "shop1:c"}) {
		t.Errorf("sent %v, want each product once", sent)
	}
	// A replay answers 409 with equal versions and reports the same counts.
	check("replay", apply(changes...), schemas.ApplyResult{Indexed: 3, Deleted: 1, Stale: 3, StaleAt: []int{0, 3, 6}})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestRecordedConflictWithoutVersions(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("POST", "/products/_bulk", func(s seen) reply {
		return reply{200, bulkResponse([]map[string]any{bulkError(t, "products-v1", "shop1:a", 409, "version_conflict_engine_exception", "[shop1:a]: version conflict")})}
	})
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 3)})
	if err != nil || res.Stale != 1 || res.Indexed != 0 {
		t.Errorf("conflict without versions: %+v, %v; want it stale", res, err)
	}
}

func TestRecordedItemRetries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		status int
		typ    string
	}{
		{"429", 429, "es_rejected_execution_exception"},
		{"503", 503, "unavailable_shards_exception"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t)
			var mu sync.Mutex
			refusals := 1
			inner := n.bulk
			n.on("POST", "/products/_bulk", func(s seen) reply {
				mu.Lock()
				refuse := refusals > 0
				refusals--
				mu.Unlock()
				if !refuse {
					return inner(s)
				}
				// The first item is refused under load, the rest indexed.
				actions := parseBulk(t, s.Body)
				items := []map[string]any{bulkError(t, "products-v1", actions[0].ID, c.status, c.typ, "rejected execution of coordinating operation")}
				for _, a := range actions[1:] {
					items = append(items, bulkItem(t, "products-v1", a.ID, *a.Version))
				}
				return reply{200, bulkResponse(items)}
			})
			ix := openNode(t, n, testConfig(n))
			res, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1), upsert(product("b", "B"), 1)})
			if err != nil || res.Indexed != 2 {
				t.Fatalf("Apply: %+v, %v; want both indexed after a retry", res, err)
			}
			bulks := n.requests("POST /products/_bulk")
			if len(bulks) != 2 {
				t.Fatalf("%d bulk requests, want 2", len(bulks))
			}
			if again := parseBulk(t, bulks[1].Body); len(again) != 1 || again[0].ID != "shop1:a" {
				t.Errorf("retry sent %+v, want only the refused item", again)
			}
		})
	}
}

func TestRecordedItemRetriesExhausted(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("POST", "/products/_bulk", func(s seen) reply {
		var items []map[string]any
		for _, a := range parseBulk(t, s.Body) {
			items = append(items, bulkError(t, "products-v1", a.ID, 429, "es_rejected_execution_exception", "queue full"))
		}
		return reply{200, bulkResponse(items)}
	})
	cfg := testConfig(n)
	ix := openNode(t, n, cfg)
	_, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1)})
	if !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("Apply: %v, want ErrUnavailable with the last reason", err)
	}
	if got := len(n.requests("POST /products/_bulk")); got != cfg.MaxRetries+1 {
		t.Errorf("%d bulk requests, want %d", got, cfg.MaxRetries+1)
	}
}

func TestRecordedItemRejected(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("POST", "/products/_bulk", func(s seen) reply {
		actions := parseBulk(t, s.Body)
		items := []map[string]any{
			bulkItem(t, "products-v1", actions[0].ID, 1),
			bulkError(t, "products-v1", actions[1].ID, 400, "mapper_parsing_exception", "failed to parse field [price] of type [long]"),
		}
		return reply{200, bulkResponse(items)}
	})
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1), upsert(product("b", "B"), 1), upsert(product("b", "B"), 1)})
	if err != nil {
		t.Fatal(err)
	}
	want := []schemas.RejectedChange{
		{At: 1, Reason: "mapper_parsing_exception: failed to parse field [price] of type [long]"},
		{At: 2, Reason: "mapper_parsing_exception: failed to parse field [price] of type [long]"},
	}
	if res.Indexed != 1 || !reflect.DeepEqual(res.Rejected, want) {
		t.Errorf("result %+v, want 1 indexed and %+v", res, want)
	}
	if got := len(n.requests("POST /products/_bulk")); got != 1 {
		t.Errorf("%d bulk requests: a refused document is not retried", got)
	}
}

func TestRecordedVersionOutOfRange(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix := openNode(t, n, testConfig(n))
	res, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1<<63)})
	if err != nil || len(res.Rejected) != 1 || !strings.HasPrefix(res.Rejected[0].Reason, "version_out_of_range") {
		t.Errorf("result %+v, %v", res, err)
	}
	if got := len(n.requests("POST /products/_bulk")); got != 0 {
		t.Errorf("%d bulk requests for an unstorable version", got)
	}
}

func TestRecordedBreakerOpensOn503(t *testing.T) {
	n := newNode(t)
	cfg := testConfig(n)
	ix := openNode(t, n, cfg)
	n.setDown(true)
	changes := []schemas.ProductChange{upsert(product("a", "A"), 1)}
	if _, err := ix.Apply(t.Context(), changes); !errors.Is(err, schemas.ErrUnavailable) {
		t.Fatalf("Apply on a down node: %v, want ErrUnavailable", err)
	}
	if !ix.conn.open() {
		t.Fatal("breaker still closed after the node kept answering 503")
	}

	// While open, nothing reaches the node.
	before := len(n.requests(""))
	start := time.Now()
	if _, err := ix.Apply(t.Context(), changes); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Apply while open: %v", err)
	}
	if _, err := ix.Search(t.Context(), schemas.SearchRequest{}); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Search while open: %v", err)
	}
	if err := ix.Healthy(t.Context()); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Healthy while open: %v", err)
	}
	if after := len(n.requests("")); after != before {
		t.Errorf("%d requests reached the node while the breaker was open", after-before)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("open-circuit calls took %v, want an immediate answer", d)
	}

	// After the breaker timeout one probe goes through; the node is back,
	// so the circuit closes and writes flow again.
	n.setDown(false)
	time.Sleep(cfg.BreakerTimeout + 50*time.Millisecond)
	if err := ix.Healthy(t.Context()); err != nil {
		t.Fatalf("Healthy after recovery: %v", err)
	}
	if res, err := ix.Apply(t.Context(), changes); err != nil || res.Indexed != 1 {
		t.Errorf("Apply after recovery: %+v, %v", res, err)
	}
}

func TestRecordedBreakerHalfOpenFailsAgain(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	cfg := testConfig(n)
	ix := openNode(t, n, cfg)
	n.setDown(true)
	for !ix.conn.open() {
		if _, err := ix.Search(t.Context(), schemas.SearchRequest{}); !errors.Is(err, schemas.ErrUnavailable) {
			t.Fatalf("Search on a down node: %v", err)
		}
	}
	time.Sleep(cfg.BreakerTimeout + 50*time.Millisecond)
	before := len(n.requests(""))
	if _, err := ix.Search(t.Context(), schemas.SearchRequest{}); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("half-open probe on a down node: %v", err)
	}
	if !ix.conn.open() {
		t.Error("failed half-open probe did not reopen the circuit")
	}
	// The probe itself was sent (with its transport retries), nothing after.
	if got := len(n.requests("")) - before; got != cfg.MaxRetries+1 {
		t.Errorf("%d requests during half-open, want the one probe with %d retries", got, cfg.MaxRetries)
	}
}

func TestRecordedConnectionRefused(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	cfg := testConfig(n)
	ix := openNode(t, n, cfg)
	n.srv.CloseClientConnections()
	n.srv.Close()
	changes := []schemas.ProductChange{upsert(product("a", "A"), 1)}
	if _, err := ix.Apply(t.Context(), changes); !errors.Is(err, schemas.ErrUnavailable) {
		t.Fatalf("Apply with the node gone: %v, want ErrUnavailable", err)
	}
	if !ix.conn.open() {
		t.Error("breaker closed after refused connections")
	}
	if err := ix.Healthy(t.Context()); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Healthy with the node gone: %v", err)
	}
}

func TestRecordedHealthy(t *testing.T) {
	for _, c := range []struct {
		status string
		ok     bool
	}{{"green", true}, {"yellow", true}, {"red", false}} {
		n := newNode(t)
		ix := openNode(t, n, testConfig(n))
		n.on("GET", "/_cluster/health", func(seen) reply { return reply{200, health(c.status)} })
		err := ix.Healthy(t.Context())
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.status, err)
		}
		if !c.ok && !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", c.status, err)
		}
	}

	// A node that does not answer within HealthTimeout is unhealthy.
	n := newNode(t)
	cfg := testConfig(n)
	cfg.HealthTimeout = 50 * time.Millisecond
	cfg.MaxRetries = 1
	ix := openNode(t, n, cfg)
	release := make(chan struct{})
	defer close(release)
	n.on("GET", "/_cluster/health", func(seen) reply {
		select {
		case <-release:
		case <-time.After(2 * time.Second):
		}
		return reply{200, health("green")}
	})
	start := time.Now()
	if err := ix.Healthy(t.Context()); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("slow node: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Healthy took %v with a 50ms timeout", d)
	}
}

func TestRecordedFlushRefreshes(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix := openNode(t, n, testConfig(n))
	if err := ix.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := n.requests("POST /products/_refresh"); len(got) != 1 {
		t.Errorf("refresh requests %v", got)
	}
}

func TestRecordedClose(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix, err := Open(t.Context(), testConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
	if err := ix.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestRecordedGet(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ix := openNode(t, n, testConfig(n))
	p := product("a/b?c", "무선 이어폰")
	p.Attributes = map[string]string{"색상": "검정"}
	if _, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(p, 4), remove("shop1:gone", 2)}); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Get(t.Context(), p.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, mustVersion(p, 4)) {
		t.Errorf("Get\n got %+v\nwant %+v", got, p)
	}
	if gets := n.requests("GET /products/_doc/*"); len(gets) != 1 || gets[0].Path != "/products/_doc/shop1:a%2Fb%3Fc" {
		t.Errorf("get requests %v, want the id path-escaped", gets)
	}
	if _, err := ix.Get(t.Context(), "shop1:missing"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if _, err := ix.Get(t.Context(), "shop1:gone"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get tombstone: %v", err)
	}
	n.on("GET", "/*/_doc/*", func(seen) reply {
		return reply{404, `{"error":{"type":"index_not_found_exception","reason":"no such index [products]"},"status":404}`}
	})
	if _, err := ix.Get(t.Context(), p.ID); err == nil || errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get without an index: %v, want an error other than ErrNotFound", err)
	}
}

func TestRecordedVersions(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("GET", "/products-v*/_alias", func(seen) reply {
		return reply{200, `{"products-v1":{"aliases":{}},"products-v2":{"aliases":{"products":{}}},"products-v10":{"aliases":{}},"products-vx":{"aliases":{}}}`}
	})
	n.on("GET", "/_alias/products", func(seen) reply {
		return reply{200, `{"products-v2":{"aliases":{"products":{}}}}`}
	})
	n.on("PUT", "/products-v11", func(seen) reply {
		return reply{200, `{"acknowledged":true,"shards_acknowledged":true,"index":"products-v11"}`}
	})
	n.on("POST", "/_aliases", func(seen) reply { return reply{200, `{"acknowledged":true}`} })
	n.on("DELETE", "/products-v1", func(seen) reply { return reply{200, `{"acknowledged":true}`} })
	ix := openNode(t, n, testConfig(n))

	versions, err := ix.Versions(t.Context())
	if err != nil || !slices.Equal(versions, []string{"products-v1", "products-v2", "products-v10"}) {
		t.Fatalf("Versions: %v, %v", versions, err)
	}
	if cur, err := ix.Current(t.Context()); err != nil || cur != "products-v2" {
		t.Fatalf("Current: %q, %v", cur, err)
	}
	next, err := ix.NewVersion(t.Context())
	if err != nil {
		t.Fatalf("NewVersion: %v", err)
	}
	defer next.Close()
	if next.Target() != "products-v11" || next.Alias() != "products" {
		t.Errorf("new version targets %s of %s", next.Target(), next.Alias())
	}
	if c := n.requests("PUT /products-v11"); len(c) != 1 || len(c[0].Body) != 0 {
		t.Errorf("create requests %v: want one, bodiless (the template applies)", c)
	}
	if _, err := next.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1)}); err != nil {
		t.Fatal(err)
	}
	if c := n.requests("POST /products-v11/_bulk"); len(c) != 1 {
		t.Errorf("the new version wrote through %v", n.requests("POST /*/_bulk"))
	}

	if err := ix.Promote(t.Context(), next); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if c := n.requests("POST /products-v11/_refresh"); len(c) != 1 {
		t.Error("Promote did not refresh the new index first")
	}
	swaps := n.requests("POST /_aliases")
	if len(swaps) != 1 {
		t.Fatalf("alias updates %v, want one atomic call", swaps)
	}
	body := jsonOf(t, swaps[0].Body).(map[string]any)
	want := map[string]any{"actions": []any{
		map[string]any{"remove": map[string]any{"index": "products-v2", "alias": "products"}},
		map[string]any{"add": map[string]any{"index": "products-v11", "alias": "products"}},
	}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("alias update %s", swaps[0].Body)
	}
	// The add action is shaped like the recorded update_aliases request.
	recAdd := recordedJSON(t, exUpdateAliases)["actions"].([]any)[0].(map[string]any)["add"].(map[string]any)
	ourAdd := body["actions"].([]any)[1].(map[string]any)["add"].(map[string]any)
	for k := range recAdd {
		if _, ok := ourAdd[k]; !ok {
			t.Errorf("add action lacks %q of the recorded request", k)
		}
	}

	if err := ix.DropIndex(t.Context(), "products-v1"); err != nil {
		t.Errorf("DropIndex: %v", err)
	}
	if err := ix.DropIndex(t.Context(), "products-v2"); err == nil {
		t.Error("DropIndex removed the index behind the alias")
	}
	if err := ix.DropIndex(t.Context(), "orders-v1"); err == nil {
		t.Error("DropIndex removed an index of another alias")
	}
	if c := n.requests("DELETE /*"); len(c) != 1 || c[0].Path != "/products-v1" {
		t.Errorf("deletes %v", c)
	}
	if err := ix.Promote(t.Context(), ix); err == nil {
		t.Error("Promote accepted the alias itself")
	}
}

// unusedPort is an address nothing listens on.
func unusedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestRecordedOpenUnavailable(t *testing.T) {
	t.Parallel()
	cfg := testConfig(newNode(t))
	cfg.Addresses = []string{unusedPort(t)}
	if _, err := Open(t.Context(), cfg); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Open with no node: %v, want ErrUnavailable", err)
	}
}

func TestRecordedConcurrentApply(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	cfg := testConfig(n)
	cfg.Workers = 3
	cfg.FlushBytes = 4 << 10 // several bulk requests per call
	ix := openNode(t, n, cfg)
	const callers, each = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			var changes []schemas.ProductChange
			for i := range each {
				changes = append(changes, upsert(product(fmt.Sprintf("c%d-%d", c, i), "Concurrent lamp"), 2))
			}
			// Every caller also writes one shared product, at its own version.
			changes = append(changes, upsert(product("shared", fmt.Sprintf("Shared v%d", 10+c)), uint64(10+c)))
			res, err := ix.Apply(t.Context(), changes)
			if err != nil {
				errs <- err
				return
			}
			if res.Indexed+res.Stale != each+1 || res.Indexed < each || len(res.Rejected) != 0 {
				errs <- fmt.Errorf("caller %d: %+v", c, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(n.requests("POST /products/_bulk")) <= callers {
		t.Errorf("%d bulk requests: FlushBytes did not split the calls", len(n.requests("POST /products/_bulk")))
	}
	got, err := ix.Get(t.Context(), "shop1:shared")
	if err != nil || got.Title != fmt.Sprintf("Shared v%d", 10+callers-1) {
		t.Errorf("shared product %q, %v: want the highest version", got.Title, err)
	}
	n.mu.Lock()
	stored := len(n.docs)
	n.mu.Unlock()
	if stored != callers*each+1 {
		t.Errorf("%d documents stored, want %d", stored, callers*each+1)
	}
}

func TestRecordedOpenWarnsOnOtherMappingVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		version int
		warn    bool
	}{{MappingVersion, false}, {MappingVersion + 7, true}} {
		n := newNode(t)
		n.on("GET", "/products-v1/_mapping", func(seen) reply {
			return reply{200, map[string]any{"products-v1": map[string]any{"mappings": map[string]any{
				"_meta": map[string]any{"feedline_mapping_version": c.version}}}}}
		})
		var logs strings.Builder
		cfg := testConfig(n)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		openNode(t, n, cfg)
		if warned := strings.Contains(logs.String(), "run feedline reindex"); warned != c.warn {
			t.Errorf("mapping version %d: warned %v, want %v:\n%s", c.version, warned, c.warn, logs.String())
		}
	}
}

func TestRecordedSharedConnectionClosesLast(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("GET", "/products-v*/_alias", func(seen) reply { return reply{200, `{"products-v1":{"aliases":{"products":{}}}}`} })
	n.on("PUT", "/products-v2", func(seen) reply { return reply{200, `{"acknowledged":true}`} })
	ix, err := Open(t.Context(), testConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	next, err := ix.NewVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// The version still works after the Index it came from closed...
	if _, err := next.Apply(t.Context(), []schemas.ProductChange{upsert(product("a", "A"), 1)}); err != nil {
		t.Errorf("Apply on the version after the parent closed: %v", err)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	// ...and the last Close closes the client.
	if err := next.conn.es.Close(t.Context()); err == nil {
		t.Error("client still open after both indexes closed")
	}
}
