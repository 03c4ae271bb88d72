package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"feedline/schemas"
)

// TestLiveOpenSearchAliasVersions: a second Open finds the alias in place,
// NewVersion builds the next index beside it, Promote swaps the alias.
func TestLiveOpenSearchAliasVersions(t *testing.T) {
	t.Parallel()
	cfg := liveConfig(liveURL(t))
	ix := openLive(t, cfg)
	if err := ix.Healthy(t.Context()); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	again, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	_ = again.Close()

	old := product("old", "Old catalog lamp")
	if _, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(old, 1)}); err != nil {
		t.Fatal(err)
	}
	next, err := ix.NewVersion(t.Context())
	if err != nil {
		t.Fatalf("NewVersion: %v", err)
	}
	defer next.Close()
	fresh := product("new", "New catalog lamp")
	if _, err := next.Apply(t.Context(), []schemas.ProductChange{upsert(fresh, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Promote(t.Context(), next); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Text: "lamp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != fresh.ID {
		t.Errorf("after Promote the alias finds %v, want only %s", res.Hits, fresh.ID)
	}
	names, err := ix.Versions(t.Context())
	if err != nil || !slices.Equal(names, []string{cfg.Alias + "-v1", cfg.Alias + "-v2"}) {
		t.Fatalf("Versions: %v, %v", names, err)
	}
	if err := ix.DropIndex(t.Context(), names[0]); err != nil {
		t.Errorf("DropIndex: %v", err)
	}
}

// storedVersion reads the _version the node keeps for id in the index
// behind ix: with version_type=external it is the change's version.
func storedVersion(t *testing.T, ix *Index, id string) (int64, bool) {
	t.Helper()
	var doc struct {
		Found   bool  `json:"found"`
		Version int64 `json:"_version"`
	}
	err := ix.conn.call(t.Context(), esapi.GetRequest{Index: ix.target, DocumentID: url.PathEscape(id)}, &doc)
	if isStatus(err, http.StatusNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return doc.Version, doc.Found
}

// TestLiveOpenSearchExternalVersions: the node keeps the change's version as
// the document's (version_type=external); an older version never replaces a
// newer one, in one call, across calls, or from writers racing each other;
// a delete's tombstone holds against an older upsert.
func TestLiveOpenSearchExternalVersions(t *testing.T) {
	t.Parallel()
	ix := openLive(t, liveConfig(liveURL(t)))
	ctx := t.Context()
	lamp := product("lamp/1 ?", "Desk lamp")
	apply := func(changes ...schemas.ProductChange) schemas.ApplyResult {
		t.Helper()
		res, err := ix.Apply(ctx, changes)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return res
	}

	if res := apply(upsert(lamp, 5)); res.Indexed != 1 {
		t.Fatalf("first write: %+v", res)
	}
	if v, ok := storedVersion(t, ix, lamp.ID); !ok || v != 5 {
		t.Fatalf("node keeps version %d (found %v), want the change's 5", v, ok)
	}
	older := lamp
	older.Title = "Old desk lamp"
	if res := apply(upsert(older, 3)); res.Stale != 1 || res.Indexed != 0 {
		t.Errorf("older version: %+v, want it stale", res)
	}
	if res := apply(upsert(lamp, 5)); res.Indexed != 1 || res.Stale != 0 {
		t.Errorf("the same version again: %+v, want it counted as indexed", res)
	}
	if got, err := ix.Get(ctx, lamp.ID); err != nil || got.Title != "Desk lamp" || got.Version != 5 {
		t.Errorf("after the older write: %+v, %v", got, err)
	}

	// One call with several versions of a product keeps the highest.
	newer := lamp
	newer.Title = "Desk lamp, brass"
	res := apply(upsert(older, 6), upsert(newer, 8), upsert(lamp, 7))
	if res.Indexed != 1 || res.Stale != 2 {
		t.Errorf("three versions in one call: %+v", res)
	}
	if v, _ := storedVersion(t, ix, lamp.ID); v != 8 {
		t.Errorf("node keeps version %d, want 8", v)
	}

	// The tombstone keeps the delete's version.
	if res := apply(remove(lamp.ID, 9)); res.Deleted != 1 {
		t.Errorf("delete: %+v", res)
	}
	if res := apply(upsert(newer, 8)); res.Stale != 1 {
		t.Errorf("upsert older than the delete: %+v, want it stale", res)
	}
	if _, err := ix.Get(ctx, lamp.ID); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("Get after delete: %v, want ErrNotFound", err)
	}
	if sr, err := ix.Search(ctx, schemas.SearchRequest{Text: "lamp"}); err != nil || sr.Total != 0 {
		t.Errorf("search after delete: %+v, %v", sr, err)
	}
	if v, ok := storedVersion(t, ix, lamp.ID); !ok || v != 9 {
		t.Errorf("tombstone at version %d (found %v), want 9", v, ok)
	}
	if res := apply(upsert(newer, 10)); res.Indexed != 1 {
		t.Errorf("upsert newer than the delete: %+v", res)
	}
	if got, err := ix.Get(ctx, lamp.ID); err != nil || got.Version != 10 {
		t.Errorf("after re-creating: %+v, %v", got, err)
	}

	// Writers racing with shuffled versions: the highest of each product wins.
	const products, versions, writers = 40, 12, 4
	var changes []schemas.ProductChange
	for i := range products {
		p := product(fmt.Sprintf("race-%02d", i), "Racing kettle")
		for v := uint64(1); v <= versions; v++ {
			if v == versions && i%4 == 0 {
				changes = append(changes, remove(p.ID, v))
				continue
			}
			q := p
			q.Title = fmt.Sprintf("Racing kettle mark %d", v)
			changes = append(changes, upsert(q, v))
		}
	}
	rand.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w * 10; k < len(changes); k += writers * 10 {
				if _, err := ix.Apply(ctx, changes[k:min(k+10, len(changes))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("racing Apply: %v", err)
	}
	for i := range products {
		id := schemas.ProductID("shop1", fmt.Sprintf("race-%02d", i))
		if v, _ := storedVersion(t, ix, id); v != versions {
			t.Errorf("%s at version %d, want %d", id, v, versions)
		}
		got, err := ix.Get(ctx, id)
		switch {
		case i%4 == 0 && !errors.Is(err, schemas.ErrNotFound):
			t.Errorf("%s deleted last, Get: %+v, %v", id, got, err)
		case i%4 != 0 && (err != nil || got.Title != fmt.Sprintf("Racing kettle mark %d", versions)):
			t.Errorf("%s: %+v, %v, want mark %d", id, got, err, versions)
		}
	}
}

// TestLiveOpenSearchProductsMultiGet: feed items are hydrated with one
// _mget; missing ids and tombstones are left out, ids with any characters
// come back under their own id.
func TestLiveOpenSearchProductsMultiGet(t *testing.T) {
	t.Parallel()
	ix := openLive(t, liveConfig(liveURL(t)))
	ctx := t.Context()
	a := product("무선/이어폰 1", "무선 이어폰")
	a.Attributes = map[string]string{"색상": "검정"}
	sale := int64(79000)
	a.SalePrice = &sale
	b := product("b?x=1&y", "Trail shoe")
	if _, err := ix.Apply(ctx, []schemas.ProductChange{upsert(a, 3), upsert(b, 5), upsert(product("gone", "Gone"), 1), remove("shop1:gone", 2)}); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Products(ctx, []string{a.ID, "shop1:missing", b.ID, "shop1:gone", a.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]schemas.Product{a.ID: mustVersion(a, 3), b.ID: mustVersion(b, 5)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Products\n got %+v\nwant %+v", got, want)
	}

	// A feed page's worth: 300 ids in one call.
	var changes []schemas.ProductChange
	var ids []string
	for i := range 300 {
		p := product(fmt.Sprintf("page-%03d", i), "Page item")
		changes = append(changes, upsert(p, 1))
		ids = append(ids, p.ID)
	}
	if _, err := ix.Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	page, err := ix.Products(ctx, ids)
	if err != nil || len(page) != 300 {
		t.Fatalf("300 ids: %d products, %v", len(page), err)
	}
	for _, id := range ids {
		if page[id].ID != id {
			t.Errorf("%s came back as %+v", id, page[id])
			break
		}
	}
}

// TestLiveOpenSearchRefusedTemplateIsAnOpenError: a node that refuses the
// index template (here another template claims the same indexes at the same
// priority) makes Open fail with the node's reason, and nothing is created.
func TestLiveOpenSearchRefusedTemplateIsAnOpenError(t *testing.T) {
	t.Parallel()
	cfg := liveConfig(liveURL(t))
	admin := openLive(t, liveConfig(liveURL(t))) // a connection for the setup
	squatter := "squatter-" + cfg.Alias
	body := fmt.Sprintf(`{"index_patterns":[%q],"priority":200,"template":{"settings":{"number_of_shards":1}}}`, IndexPattern(cfg.Alias))
	if err := admin.conn.call(t.Context(), esapi.IndicesPutIndexTemplateRequest{Name: squatter, Body: strings.NewReader(body)}, nil); err != nil {
		t.Fatalf("put the other template: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.conn.call(context.Background(), esapi.IndicesDeleteIndexTemplateRequest{Name: squatter}, nil)
	})

	ix, err := Open(t.Context(), cfg)
	if err == nil {
		dropLive(t, ix)
		t.Fatal("Open succeeded though the node refuses the template")
	}
	t.Logf("Open: %v", err)
	for _, want := range []string{"put index template", "status 400", squatter, "priority"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not say %q", err, want)
		}
	}
	if errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("a refused template is reported as an outage: %v", err)
	}
	var exists struct{}
	err = admin.conn.call(t.Context(), esapi.IndicesGetAliasRequest{Name: []string{cfg.Alias}}, &exists)
	if !isStatus(err, http.StatusNotFound) {
		t.Errorf("alias %s after the refused Open: %v, want none", cfg.Alias, err)
	}
}
