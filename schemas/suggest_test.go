package schemas

import (
	"reflect"
	"testing"
)

func TestSuggestKey(t *testing.T) {
	for in, want := range map[string]string{
		"  Sony  WH ": "sony wh",
		"ＳＯＮＹ":        "sony",
		"헤드\t폰":       "헤드 폰",
		"a\x1fb":      "ab",
		"":            "",
	} {
		if got := SuggestKey(in); got != want {
			t.Errorf("SuggestKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggestTerms(t *testing.T) {
	p := Product{
		Title:    "Sony 무선 헤드폰 WH1000XM5 - 블랙 x",
		Brand:    " Sony ",
		Category: []string{"전자제품", "음향기기"},
	}
	want := []string{
		"sony\x1fb\x1fSony",
		"전자제품\x1fc\x1f전자제품",
		"음향기기\x1fc\x1f전자제품 > 음향기기",
		"sony\x1ft\x1fsony",
		"무선\x1ft\x1f무선",
		"헤드폰\x1ft\x1f헤드폰",
		"블랙\x1ft\x1f블랙",
	}
	if got := p.SuggestTerms(); !reflect.DeepEqual(got, want) {
		t.Errorf("SuggestTerms\n got %q\nwant %q", got, want)
	}
	for _, term := range want {
		if s, ok := SuggestionOf(term, 1); !ok || s.Text == "" {
			t.Errorf("SuggestionOf(%q) = %v, %v", term, s, ok)
		}
	}
}

func TestFinishSuggestions(t *testing.T) {
	got := FinishSuggestions([]RankedTerm{
		{"sound\x1ft\x1fsound", 1},
		{"sony\x1ft\x1fsony", 5},
		{"sony\x1fb\x1fSony", 3},
		{"sonata\x1fb\x1fSonata", 0},
		{"bad term", 9},
		{"solar\x1ft\x1fsolar", 1},
	}, 2)
	want := []Suggestion{{Text: "Sony", Kind: SuggestBrand, Count: 3}, {Text: "solar", Kind: SuggestTerm, Count: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FinishSuggestions = %v, want %v", got, want)
	}
}
