package elasticsearch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"feedline/connectors/searchtest"
	"feedline/schemas"
)

// The TestLive… tests run against a real node, e.g.
//
//	FEEDLINE_ES_URL=http://elastic:secret@localhost:9200 go test ./connectors/elasticsearch/
//
// Each Open uses a fresh alias and removes its indexes and template after.

func liveConfig(t *testing.T) Config {
	t.Helper()
	addr := os.Getenv("FEEDLINE_ES_URL")
	if addr == "" {
		t.Skip("FEEDLINE_ES_URL is not set: no Elasticsearch node to run against (the TestRecorded… tests cover the adapter offline)")
	}
	return Config{
		Addresses: []string{addr},
		APIKey:    os.Getenv("FEEDLINE_ES_API_KEY"),
		Alias:     fmt.Sprintf("feedline-test-%016x", rand.Uint64()),
		Refresh:   "true",
	}
}

func openLive(t *testing.T, cfg Config) *Index {
	t.Helper()
	ix, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Names, not a wildcard: clusters refuse wildcard deletes by default.
		names, err := ix.Versions(ctx)
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, name := range names {
			if err := ix.conn.call(ctx, esapi.IndicesDeleteRequest{Index: []string{name}}, nil); err != nil {
				t.Errorf("cleanup %s: %v", name, err)
			}
		}
		if err := ix.conn.call(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: templateName(ix.alias)}, nil); err != nil {
			t.Errorf("cleanup template: %v", err)
		}
		_ = ix.Close()
	})
	return ix
}

func TestLiveContract(t *testing.T) {
	liveConfig(t)
	searchtest.Run(t, func(t *testing.T) schemas.ProductIndex { return openLive(t, liveConfig(t)) })
}

func TestLiveVersions(t *testing.T) {
	cfg := liveConfig(t)
	ix := openLive(t, cfg)
	if err := ix.Healthy(t.Context()); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	// A second Open of the same alias (another worker) finds it in place.
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
