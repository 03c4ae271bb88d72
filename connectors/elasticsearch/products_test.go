package elasticsearch

import (
	stdjson "encoding/json"
	"reflect"
	"testing"

	"feedline/schemas"
)

// TestRecordedProductsIsOneMultiGet: feed pages hydrate their catalog
// items with one _mget, leaving out missing products and tombstones.
func TestRecordedProductsIsOneMultiGet(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.on("POST", "/*/_mget", func(s seen) reply {
		var req struct {
			IDs []string `json:"ids"`
		}
		if err := stdjson.Unmarshal(s.Body, &req); err != nil {
			t.Errorf("mget body %s: %v", s.Body, err)
		}
		var docs []map[string]any
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, id := range req.IDs {
			d, ok := n.docs[id]
			if !ok {
				docs = append(docs, map[string]any{"_index": "products-v1", "_id": id, "found": false})
				continue
			}
			docs = append(docs, map[string]any{"_index": "products-v1", "_id": id, "_version": d.version, "found": true, "_source": d.source})
		}
		return reply{200, map[string]any{"docs": docs}}
	})
	ix := openNode(t, n, testConfig(n))
	a, b := product("a", "무선 이어폰"), product("b", "Trail shoe")
	if _, err := ix.Apply(t.Context(), []schemas.ProductChange{upsert(a, 3), upsert(b, 5), remove("shop1:gone", 2)}); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Products(t.Context(), []string{a.ID, "shop1:missing", b.ID, "shop1:gone"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]schemas.Product{a.ID: mustVersion(a, 3), b.ID: mustVersion(b, 5)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Products\n got %+v\nwant %+v", got, want)
	}
	if reqs := n.requests("POST /products/_mget"); len(reqs) != 1 {
		t.Errorf("%d mget requests, want 1", len(reqs))
	}
	if got, err := ix.Products(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v %v", got, err)
	}
	if reqs := n.requests("POST /products/_mget"); len(reqs) != 1 {
		t.Error("no ids still asked the node")
	}
}
