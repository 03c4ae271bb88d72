package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blevesearch/bleve/v2"
)

// TestSearchIndexOfAnotherLayoutIsRebuiltAtStart: a release that changes
// the embedded index's layout finds the old index at its first start; the
// index stage acknowledged every batch long ago, so only a rebuild from
// the log brings the products back.
func TestSearchIndexOfAnotherLayoutIsRebuiltAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startTestSystem(t, dir)
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "")
	want := ts.allProducts("acme")
	if len(want) != 5 {
		t.Fatalf("%d products before the restart, want 5", len(want))
	}
	ts.stop()

	// An index written by another layout: no layout marker of this one.
	search := filepath.Join(dir, "search")
	if err := os.RemoveAll(search); err != nil {
		t.Fatal(err)
	}
	old, err := bleve.New(search, bleve.NewIndexMapping())
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// What a start cut short mid-rebuild left beside it.
	if err := os.MkdirAll(search+".rebuilding", 0o755); err != nil {
		t.Fatal(err)
	}

	ts = startTestSystem(t, dir)
	defer ts.stop()
	got := ts.allProducts("acme")
	if len(got) != len(want) {
		t.Fatalf("%d products after the rebuild, want %d", len(got), len(want))
	}
	for id, p := range want {
		if g, ok := got[id]; !ok || g.Version != p.Version || g.Title != p.Title {
			t.Errorf("%s after the rebuild: %+v (found %v), want %+v", id, g, ok, p)
		}
	}
	for _, leftover := range []string{search + ".rebuilding", search + ".old"} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("%s is left behind (%v)", leftover, err)
		}
	}
	// Indexing goes on in the rebuilt index.
	again := ts.uploadOK("acme", key, delimited(testCatalog, ","), "")
	if again.Counts.Unchanged != 5 {
		t.Errorf("re-upload after the rebuild: %+v, want 5 unchanged", again.Counts)
	}
}
