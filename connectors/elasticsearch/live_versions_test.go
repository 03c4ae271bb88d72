package elasticsearch

import (
	"slices"
	"testing"

	"feedline/schemas"
)

// TestLiveOpenSearchAliasVersions: a second Open finds the alias in place,
// NewVersion builds the next index beside it, Promote swaps the alias.
func TestLiveOpenSearchAliasVersions(t *testing.T) {
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
