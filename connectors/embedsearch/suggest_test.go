package embedsearch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"feedline/schemas"
)

// TestSuggestionsCountedOnOpen: a reopened index counts the terms already
// indexed from its dictionary, deleted products left out, and answers an
// outage until it has; changes applied meanwhile are counted once.
func TestSuggestionsCountedOnOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "products")
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := catalogGen{rng: rand.New(rand.NewPCG(5, 6))}
	changes := g.batch("shop", 0, 400, 1)
	if _, err := ix.Apply(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	var deletes []schemas.ProductChange
	for _, c := range changes[:100] {
		deletes = append(deletes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: c.ID, Version: 2})
	}
	if _, err := ix.Apply(t.Context(), deletes); err != nil {
		t.Fatal(err)
	}
	want := map[string][]schemas.Suggestion{}
	for _, prefix := range []string{"so", "헤드", "전자", "무선", "s", "노"} {
		want[prefix] = suggestAll(t, ix, prefix)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.Suggest(t.Context(), schemas.SuggestRequest{Prefix: "so"}); err != nil && !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Suggest while counting: %v, want nil or an outage", err)
	}
	// Applied while the count may still run: counted by Apply alone.
	more := g.batch("shop2", 0, 50, 1)
	if _, err := ix.Apply(t.Context(), more); err != nil {
		t.Fatal(err)
	}
	<-ix.suggestCounted
	for prefix, w := range want {
		got := suggestAll(t, ix, prefix)
		if !reflect.DeepEqual(got, expectAfter(w, more, prefix)) {
			t.Errorf("%q after reopening\n got %v\nwant %v", prefix, got, expectAfter(w, more, prefix))
		}
	}
}

// suggestAll is every suggestion of prefix, up to the cap.
func suggestAll(t *testing.T, ix *Index, prefix string) []schemas.Suggestion {
	t.Helper()
	got, err := ix.Suggest(t.Context(), schemas.SuggestRequest{Prefix: prefix, Limit: schemas.SuggestMaxLimit})
	if err != nil {
		t.Fatalf("Suggest(%q): %v", prefix, err)
	}
	return got
}

// expectAfter is what the suggestions of prefix must be once products are
// added to a state that answered before.
func expectAfter(before []schemas.Suggestion, added []schemas.ProductChange, prefix string) []schemas.Suggestion {
	counts := map[string]int{}
	for _, s := range before {
		counts[termOf(s)] += s.Count
	}
	key := schemas.SuggestKey(prefix)
	for _, c := range added {
		for _, term := range c.Product.SuggestTerms() {
			if len(schemas.SuggestTermKey(term)) >= len(key) && schemas.SuggestTermKey(term)[:len(key)] == key {
				counts[term]++
			}
		}
	}
	var cands []schemas.RankedTerm
	for term, n := range counts {
		cands = append(cands, schemas.RankedTerm{Term: term, Count: n})
	}
	return schemas.FinishSuggestions(cands, schemas.SuggestMaxLimit)
}

func termOf(s schemas.Suggestion) string {
	key := schemas.SuggestKey(s.Text)
	if s.Kind == schemas.SuggestCategory {
		key = schemas.SuggestKey(s.Text[lastSep(s.Text):])
	}
	letter := map[string]string{schemas.SuggestBrand: "b", schemas.SuggestCategory: "c", schemas.SuggestTerm: "t"}[s.Kind]
	return key + "\x1f" + letter + "\x1f" + s.Text
}

func lastSep(path string) int {
	for i := len(path) - len(schemas.CategorySeparator); i >= 0; i-- {
		if path[i:i+len(schemas.CategorySeparator)] == schemas.CategorySeparator {
			return i + len(schemas.CategorySeparator)
		}
	}
	return 0
}

// TestSuggestionsUnderConcurrentApply: callers updating the same products
// at once leave the counts a single caller would.
func TestSuggestionsUnderConcurrentApply(t *testing.T) {
	ix := openTemp(t)
	brands := []string{"Sony", "Sonos", "Sonata"}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for v := range 20 {
				var batch []schemas.ProductChange
				for i := range 30 {
					version := uint64(v*4 + c + 1)
					p := schemas.Product{ID: fmt.Sprintf("shop:%d", i), Partner: "shop", SKU: fmt.Sprint(i), Title: "Sound system",
						Brand: brands[(i+v+c)%len(brands)], Price: 100, Currency: "KRW", Availability: schemas.InStock, Version: version}
					batch = append(batch, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: version, Product: &p})
				}
				if _, err := ix.Apply(t.Context(), batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range res.Hits {
		counts[p.Brand]++
	}
	var want []schemas.RankedTerm
	for b, n := range counts {
		want = append(want, schemas.RankedTerm{Term: schemas.SuggestKey(b) + "\x1fb\x1f" + b, Count: n})
	}
	want = append(want, schemas.RankedTerm{Term: "sound\x1ft\x1fsound", Count: 30})
	if got, w := suggestAll(t, ix, "so"), schemas.FinishSuggestions(want, schemas.SuggestMaxLimit); !reflect.DeepEqual(got, w) {
		t.Errorf("after concurrent updates\n got %v\nwant %v", got, w)
	}
}
