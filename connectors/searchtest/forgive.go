package searchtest

import (
	"reflect"
	"slices"
	"testing"

	"feedline/schemas"
)

// Search that forgives (schemas.TextQuery):
//   - A Latin-script word of letters only matches with typos by its
//     length: 1–2 characters exactly, 3–5 with one edit, longer with two
//     (a transposition of two neighbours is one edit). Hangul and other CJK words, and words with
//     digits, match exactly. Exact matches rank above typos.
//   - The last word, of at least schemas.PrefixMinRunes such characters,
//     also matches as a prefix; exact words rank above completions.
//   - Synonyms of the request's thesaurus: the global list's in every
//     product, a partner's only in that partner's products.
//   - Each hit of a text search says where it matched in its title and
//     description, typos, prefixes and synonyms included, in UTF-16 code
//     units, merged where they touch.

// forgivingCatalog has words to misspell, complete and translate.
func forgivingCatalog() []schemas.Product {
	return []schemas.Product{
		spec{SKU: "kettle", Title: "Electric Kettle", Description: "Boils water fast"}.Product(),
		spec{SKU: "blue-kettle", Title: "Blue Kettle", Description: "Enamel stovetop kettle"}.Product(),
		spec{SKU: "blue-lamp", Title: "Blue Lamp", Description: "Soft light"}.Product(),
		spec{SKU: "desk-lamp", Title: "Desk Lamp", Description: "Adjustable arm"}.Product(),
		spec{SKU: "lampshade", Title: "Lampshade Linen", Description: "Fits most bases"}.Product(),
		spec{SKU: "camp", Title: "Camp Stove", Description: "Folding burner"}.Product(),
		spec{SKU: "mouse", Title: "Wireless Mouse", Description: "Silent clicks"}.Product(),
		spec{SKU: "keyboard", Title: "Mechanical Keyboard", Description: "Brown switches"}.Product(),
		spec{SKU: "box", Title: "Storage Box", Description: "Stackable"}.Product(),
		spec{SKU: "galaxy", Title: "Galaxy S24 case", Description: "Slim fit"}.Product(),
		spec{SKU: "camera", Title: "X100 camera strap", Description: "Leather"}.Product(),
		spec{SKU: "headphone", Title: "유선 헤드폰", Description: "스튜디오 모니터링"}.Product(),
		spec{SKU: "fire", Title: "🔥 Kettle deal", Description: "Hot offer"}.Product(),
	}
}

func testTypos(t *testing.T, open Open) {
	ix := load(t, open, forgivingCatalog()...)
	has := func(q string, skus ...string) {
		t.Helper()
		got := hitIDs(t, ix, schemas.SearchRequest{Text: q})
		for _, sku := range skus {
			if !slices.Contains(got, idOf(sku)) {
				t.Errorf("%q: %s missing from %v", q, sku, got)
			}
		}
	}
	hasNot := func(q string, skus ...string) {
		t.Helper()
		got := hitIDs(t, ix, schemas.SearchRequest{Text: q})
		for _, sku := range skus {
			if slices.Contains(got, idOf(sku)) {
				t.Errorf("%q: %s should not match, got %v", q, sku, got)
			}
		}
	}
	has("kettel", "kettle", "blue-kettle")      // a transposition is one edit
	has("Kettel", "kettle")                     // case folded first
	has("kyeboadr", "keyboard")                 // eight letters: two edits
	has("mose", "mouse")                        // four letters: one edit
	hasNot("maise", "mouse")                    // five letters: one edit only
	hasNot("ox", "box")                         // two letters: exact
	hasNot("헤드펀", "headphone")                  // Hangul: exact
	hasNot("s25 case", "galaxy")                // a word with a digit: exact
	hasNot("electirc kettel zzzzzzz", "kettle") // every forgiving word must match
	has("electirc kettel", "kettle")

	// Exact first: lamp before camp (one edit).
	got := ids(find(t, ix, schemas.SearchRequest{Text: "desk lamp"}).Hits)
	if len(got) == 0 || got[0] != idOf("desk-lamp") {
		t.Errorf("desk lamp: got %v, want desk-lamp first", got)
	}
	got = ids(find(t, ix, schemas.SearchRequest{Text: "camp"}).Hits)
	if len(got) < 2 || got[0] != idOf("camp") {
		t.Errorf("camp: got %v, want the camp stove first, then the lamps one edit away", got)
	}
}

func testPrefix(t *testing.T, open Open) {
	ix := load(t, open, forgivingCatalog()...)
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "blue ket"}); !slices.Equal(got, []string{idOf("blue-kettle")}) {
		t.Errorf("blue ket: got %v, want the blue kettle only", got)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "ket blue"}); slices.Contains(got, idOf("blue-kettle")) {
		t.Errorf("ket blue: only the last word is a prefix, got %v", got)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "ke"}); len(got) != 0 {
		t.Errorf("ke: a two-letter prefix completes nothing, got %v", got)
	}
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "x10"}); slices.Contains(got, idOf("camera")) {
		t.Errorf("x10: a word with a digit is no prefix, got %v", got)
	}
	got := ids(find(t, ix, schemas.SearchRequest{Text: "lamp"}).Hits)
	lampshade := slices.Index(got, idOf("lampshade"))
	if lampshade < 0 {
		t.Fatalf("lamp: lampshade missing from %v", got)
	}
	for _, sku := range []string{"desk-lamp", "blue-lamp"} {
		if i := slices.Index(got, idOf(sku)); i < 0 || i > lampshade {
			t.Errorf("lamp: %s should come before the completion lampshade, got %v", sku, got)
		}
	}
}

func synonymCatalog() []schemas.Product {
	return []schemas.Product{
		spec{Partner: "shop1", SKU: "stand", Title: "Laptop Stand", Description: "Aluminium"}.Product(),
		spec{Partner: "shop2", SKU: "gaming", Title: "Gaming Laptop", Description: "RTX graphics"}.Product(),
		spec{Partner: "shop2", SKU: "pouch", Title: "노트북 파우치", Description: "13인치"}.Product(),
		spec{Partner: "shop1", SKU: "buds", Title: "Wireless Earbuds", Description: "Long battery"}.Product(),
		spec{Partner: "shop1", SKU: "tv", Title: "Smart television 55", Description: "4K panel"}.Product(),
	}
}

func testSynonyms(t *testing.T, open Open) {
	ix := load(t, open, synonymCatalog()...)
	th := schemas.NewThesaurus(
		schemas.SynonymList{Groups: [][]string{{"earphones", "earbuds"}, {"tv", "television"}}},
		map[string]schemas.SynonymList{"shop2": {Groups: [][]string{{"노트북", "laptop"}}}},
	)
	stand, gaming, pouch := idOf("stand"), schemas.ProductID("shop2", "gaming"), schemas.ProductID("shop2", "pouch")
	for _, c := range []struct {
		q         string
		want, not []string
	}{
		{"earphones", []string{idOf("buds")}, nil},
		{"wireless earphones", []string{idOf("buds")}, nil},
		{"smart tv", []string{idOf("tv")}, nil},
		{"노트북", []string{gaming, pouch}, []string{stand}}, // shop2's synonym, not shop1's products
		{"laptop", []string{stand, gaming, pouch}, nil},
	} {
		got := hitIDs(t, ix, schemas.SearchRequest{Text: c.q, Synonyms: th})
		if len(c.not) == 0 && !sameSet(got, c.want) {
			t.Errorf("%q with synonyms: got %v, want %v", c.q, got, c.want)
		}
		for _, id := range c.want {
			if !slices.Contains(got, id) {
				t.Errorf("%q with synonyms: %s missing from %v", c.q, id, got)
			}
		}
		for _, id := range c.not {
			if slices.Contains(got, id) {
				t.Errorf("%q with synonyms: %s should not match, got %v", c.q, id, got)
			}
		}
	}
	// Without the lists, only the words themselves.
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "노트북"}); !slices.Equal(got, []string{pouch}) {
		t.Errorf("노트북 without synonyms: got %v", got)
	}
	// A partner filter keeps that partner's synonyms only.
	if got := hitIDs(t, ix, schemas.SearchRequest{Text: "노트북", Partners: []string{"shop1"}, Synonyms: th}); len(got) != 0 {
		t.Errorf("노트북 in shop1: got %v, want nothing", got)
	}
	// A search whose synonyms differ is another search: its cursor does
	// not continue the other.
	r := schemas.SearchRequest{Text: "laptop", Limit: 1, Synonyms: th}
	res := find(t, ix, r)
	if res.NextCursor == "" {
		t.Fatal("laptop with synonyms: no cursor on a page of 1")
	}
	plain := schemas.SearchRequest{Text: "laptop", Limit: 1, Cursor: res.NextCursor}
	if _, err := ix.Search(t.Context(), plain); err == nil {
		t.Error("a cursor of a search with synonyms continued one without")
	}
}

func testHighlights(t *testing.T, open Open) {
	cat := append(forgivingCatalog(), synonymCatalog()...)
	cat = append(cat, textCatalog()...)
	ix := open(t)
	apply(t, ix, Upserts(cat...)...)
	th := schemas.NewThesaurus(schemas.SynonymList{}, map[string]schemas.SynonymList{"shop2": {Groups: [][]string{{"노트북", "laptop"}}}})
	for _, c := range []struct {
		q    string
		id   string
		want schemas.Highlight
	}{
		{"blue ket", idOf("blue-kettle"), schemas.Highlight{"title": {{0, 4}, {5, 11}}, "description": {{16, 22}}}},
		{"kettel", idOf("kettle"), schemas.Highlight{"title": {{9, 15}}}},
		{"kettle", idOf("fire"), schemas.Highlight{"title": {{3, 9}}}}, // after a character of two UTF-16 units
		{"earbud", idOf("en-1"), schemas.Highlight{"title": {{9, 16}}}},
		{"이어폰", idOf("ko-2"), schemas.Highlight{"title": {{2, 5}}}}, // bigrams of one word merged
		{"boils", idOf("kettle"), schemas.Highlight{"description": {{0, 5}}}},
		{"노트북", schemas.ProductID("shop2", "gaming"), schemas.Highlight{"title": {{7, 13}}}},
	} {
		res := find(t, ix, schemas.SearchRequest{Text: c.q, Synonyms: th, Limit: 100})
		if len(res.Highlights) != len(res.Hits) {
			t.Errorf("%q: %d highlights for %d hits", c.q, len(res.Highlights), len(res.Hits))
			continue
		}
		i := slices.IndexFunc(res.Hits, func(p schemas.Product) bool { return p.ID == c.id })
		if i < 0 {
			t.Errorf("%q: %s not found", c.q, c.id)
			continue
		}
		if got := res.Highlights[i]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: highlight of %s = %v, want %v", c.q, c.id, got, c.want)
		}
	}
	// No text, nothing to mark.
	res := find(t, ix, schemas.SearchRequest{Limit: 5})
	for i, h := range res.Highlights {
		if len(h) != 0 {
			t.Errorf("no text: hit %d has highlight %v", i, h)
		}
	}
}
