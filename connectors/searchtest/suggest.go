package searchtest

import (
	"fmt"
	"reflect"
	"testing"

	"feedline/schemas"
)

// Suggestions (schemas.ProductSuggester), for a backend that offers them:
//   - A prefix (any case, width folded) completes brands, the last level of
//     category paths and title words (two letters or more, no digit), a
//     Korean syllable prefix included: 헤드 finds 헤드폰.
//   - Each suggestion counts the live products carrying it; the most carried
//     come first, ties by key, then brand, category, term, then text. A term
//     whose key is also a listed brand or category is left out.
//   - Updates, deletes and stale or replayed changes keep the counts exact
//     once Apply returns; a value no live product carries is not suggested.

func suggester(t *testing.T, ix schemas.ProductIndex) schemas.ProductSuggester {
	t.Helper()
	s, ok := ix.(schemas.ProductSuggester)
	if !ok {
		t.Skipf("%T offers no suggestions", ix)
	}
	return s
}

func suggest(t *testing.T, s schemas.ProductSuggester, prefix string, limit int) []schemas.Suggestion {
	t.Helper()
	got, err := s.Suggest(t.Context(), schemas.SuggestRequest{Prefix: prefix, Limit: limit})
	if err != nil {
		t.Fatalf("Suggest(%q): %v", prefix, err)
	}
	if got == nil {
		t.Fatalf("Suggest(%q) is nil, want a list", prefix)
	}
	return got
}

func sug(kind, text string, count int) schemas.Suggestion {
	return schemas.Suggestion{Text: text, Kind: kind, Count: count}
}

// suggestCatalog: three Sony products, two 소니 headphones among Korean
// titles, a brand sharing its key with a title word.
func suggestCatalog() []schemas.Product {
	audio := []string{"전자제품", "음향기기", "헤드폰"}
	return []schemas.Product{
		spec{SKU: "s1", Title: "Sony 무선 헤드폰 WH1000XM5", Brand: "Sony", Category: audio, Price: 1000}.Product(),
		spec{SKU: "s2", Title: "Sony 헤드폰 케이스", Brand: "Sony", Category: []string{"전자제품", "액세서리"}, Price: 1000}.Product(),
		spec{SKU: "s3", Title: "Sound bar", Brand: "Sony", Category: []string{"Electronics", "Audio", "Soundbars"}, Price: 1000}.Product(),
		spec{SKU: "s4", Title: "헤드셋 게이밍", Brand: "Razer", Category: audio, Price: 1000}.Product(),
		spec{SKU: "s5", Title: "Solar lamp", Brand: "Ｓｏｌａｒｉｓ", Category: []string{"Home", "Lighting"}, Price: 1000}.Product(),
		spec{SKU: "s6", Title: "Noise cancelling headphones", Brand: "Bose", Category: []string{"Electronics", "Audio", "Headphones"}, Price: 1000}.Product(),
	}
}

func testSuggestions(t *testing.T, open Open) {
	ix := load(t, open, suggestCatalog()...)
	s := suggester(t, ix)
	for _, c := range []struct {
		prefix string
		limit  int
		want   []schemas.Suggestion
	}{
		// "sony" is a title word of two products too, but the brand names it.
		{"so", 0, []schemas.Suggestion{
			sug(schemas.SuggestBrand, "Sony", 3),
			sug(schemas.SuggestTerm, "solar", 1),
			sug(schemas.SuggestBrand, "Ｓｏｌａｒｉｓ", 1),
			sug(schemas.SuggestTerm, "sound", 1),
			sug(schemas.SuggestCategory, "Electronics > Audio > Soundbars", 1),
		}},
		{"SO", 2, []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 3), sug(schemas.SuggestTerm, "solar", 1)}},
		{"ｓｏｎ", 0, []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 3)}},
		{"헤드", 0, []schemas.Suggestion{
			sug(schemas.SuggestCategory, "전자제품 > 음향기기 > 헤드폰", 2),
			sug(schemas.SuggestTerm, "헤드셋", 1),
		}},
		{"음향", 0, []schemas.Suggestion{sug(schemas.SuggestCategory, "전자제품 > 음향기기", 2)}},
		{"  Noise ", 0, []schemas.Suggestion{sug(schemas.SuggestTerm, "noise", 1)}},
		{"head", 0, []schemas.Suggestion{sug(schemas.SuggestCategory, "Electronics > Audio > Headphones", 1)}},
		{"wh", 0, []schemas.Suggestion{}},   // "wh1000xm5" holds digits: no word of it
		{"zzz", 0, []schemas.Suggestion{}},  // nothing
		{"", 0, []schemas.Suggestion{}},     // nothing typed
		{"so.*", 0, []schemas.Suggestion{}}, // no pattern syntax
	} {
		if got := suggest(t, s, c.prefix, c.limit); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Suggest(%q, limit %d)\n got %v\nwant %v", c.prefix, c.limit, got, c.want)
		}
	}
	// The Korean title word 헤드폰 is named by its category: left out.
	for _, sg := range suggest(t, s, "헤드폰", 0) {
		if sg.Kind == schemas.SuggestTerm {
			t.Errorf("헤드폰: term %v listed beside the category of the same name", sg)
		}
	}
}

func testSuggestionLimit(t *testing.T, open Open) {
	var cat []schemas.Product
	for i := range 30 {
		// Lampa00 to Lampa04 are carried by two products, the rest by one.
		cat = append(cat, spec{SKU: fmt.Sprintf("l%02d", i), Title: "Lamp", Brand: fmt.Sprintf("Lampa%02d", i%25), Price: 100}.Product())
	}
	ix := load(t, open, cat...)
	s := suggester(t, ix)
	got := suggest(t, s, "lampa", 0)
	if len(got) != schemas.SuggestDefaultLimit {
		t.Fatalf("default limit: %d suggestions, want %d: %v", len(got), schemas.SuggestDefaultLimit, got)
	}
	want := []schemas.Suggestion{sug(schemas.SuggestBrand, "Lampa00", 2), sug(schemas.SuggestBrand, "Lampa01", 2)}
	if !reflect.DeepEqual(got[:2], want) {
		t.Errorf("most carried first, then by text: got %v, want %v first", got[:2], want)
	}
	if got := suggest(t, s, "lampa", 1000); len(got) != schemas.SuggestMaxLimit {
		t.Errorf("limit 1000: %d suggestions, want the cap %d", len(got), schemas.SuggestMaxLimit)
	}
	// "lamp" is every product's title word, and no brand is "lamp".
	if got := suggest(t, s, "lamp", 1); !reflect.DeepEqual(got, []schemas.Suggestion{sug(schemas.SuggestTerm, "lamp", 30)}) {
		t.Errorf("lamp: %v", got)
	}
}

func testSuggestionsFollowChanges(t *testing.T, open Open) {
	cat := suggestCatalog()
	ix := load(t, open, cat...)
	s := suggester(t, ix)
	check := func(step, prefix string, want []schemas.Suggestion) {
		t.Helper()
		if got := suggest(t, s, prefix, 0); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Suggest(%q)\n got %v\nwant %v", step, prefix, got, want)
		}
	}
	// A replay changes nothing.
	apply(t, ix, Upserts(cat...)...)
	check("replayed", "sony", []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 3)})

	// An update moves the product from one brand to another; an older
	// change arriving later does not move it again.
	moved := cat[2]
	moved.Brand = "Sonos"
	apply(t, ix, upsertAt(moved, 2))
	check("updated", "son", []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 2), sug(schemas.SuggestBrand, "Sonos", 1)})
	stale := cat[2]
	stale.Brand = "Sonata"
	apply(t, ix, upsertAt(stale, 1))
	check("stale", "son", []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 2), sug(schemas.SuggestBrand, "Sonos", 1)})

	// Deleting every product of a brand or a word stops suggesting it.
	apply(t, ix, deleteAt(cat[0].ID, 2), deleteAt(cat[1].ID, 2))
	check("deleted", "son", []schemas.Suggestion{sug(schemas.SuggestBrand, "Sonos", 1)})
	check("deleted", "헤드", []schemas.Suggestion{
		sug(schemas.SuggestTerm, "헤드셋", 1),
		sug(schemas.SuggestCategory, "전자제품 > 음향기기 > 헤드폰", 1),
	})
	// An older upsert arriving after the delete does not bring it back.
	apply(t, ix, upsertAt(cat[0], 1))
	check("late upsert", "sony", []schemas.Suggestion{})
	// A product deleted and then indexed again counts once.
	apply(t, ix, upsertAt(cat[0], 3))
	apply(t, ix, upsertAt(cat[0], 3))
	check("indexed again", "sony", []schemas.Suggestion{sug(schemas.SuggestBrand, "Sony", 1)})
}
