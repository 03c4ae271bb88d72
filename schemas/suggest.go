package schemas

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Suggestion kinds: what choosing a suggestion narrows the search by.
const (
	SuggestBrand    = "brand"    // the brand filter
	SuggestCategory = "category" // the category filter, Text being the whole path
	SuggestTerm     = "term"     // a word of product titles, searched as text
)

// Suggestion bounds: a prefix longer than SuggestMaxPrefix runes is not
// typing any more, and a list longer than SuggestMaxLimit is not read.
const (
	SuggestDefaultLimit = 8
	SuggestMaxLimit     = 20
	SuggestMaxPrefix    = 64
)

// SuggestRequest asks for what a shopper may be typing.
type SuggestRequest struct {
	Prefix string `json:"q"`
	Limit  int    `json:"limit,omitempty"`
}

// SuggestLimit is the request's list size after the default and the cap.
func (r SuggestRequest) SuggestLimit() int {
	if r.Limit <= 0 {
		return SuggestDefaultLimit
	}
	return min(r.Limit, SuggestMaxLimit)
}

// Suggestion is one completion of a prefix: a brand, a category path or a
// title word, with the number of live products carrying it.
type Suggestion struct {
	Text  string `json:"text"`
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// ProductSuggester is a ProductIndex that completes what a shopper types.
// Suggestions match SuggestKey(Prefix) against the start of a brand, of
// the last level of a category path or of a title word, and come most
// carried first (ties: key, then brand before category before term, then
// text); a term whose key is also a listed brand or category is left out.
type ProductSuggester interface {
	Suggest(ctx context.Context, r SuggestRequest) ([]Suggestion, error)
}

// SuggestKey is s as suggestions match it: width folded, lower case,
// spaces collapsed, trimmed.
func SuggestKey(s string) string {
	s = width.Fold.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case unicode.IsControl(r):
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// suggestSep separates the parts of a suggestion term; SuggestKey drops
// control characters, so no key or text holds it.
const suggestSep = "\x1f"

// Kind letters of suggestion terms: their order is the tie-break order.
var suggestKinds = map[string]string{SuggestBrand: "b", SuggestCategory: "c", SuggestTerm: "t"}

// maxTitleWords bounds the words one title contributes.
const maxTitleWords = 16

// SuggestTerms are the suggestion terms of the product, each "key␟kind␟text":
// sorted by term, they are in suggestion order for equal counts, and the
// key prefix of a term is what a prefix matches. Backends keep them as
// exact terms and count the live products carrying each.
func (p *Product) SuggestTerms() []string {
	out := make([]string, 0, 4+len(p.Category))
	add := func(key, kind, text string) {
		if key == "" || text == "" {
			return
		}
		t := key + suggestSep + suggestKinds[kind] + suggestSep + text
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if brand := cleanText(p.Brand); brand != "" {
		add(SuggestKey(brand), SuggestBrand, brand)
	}
	for _, path := range p.CategoryPaths() {
		path = cleanText(path)
		leaf := path
		if i := strings.LastIndex(path, CategorySeparator); i >= 0 {
			leaf = path[i+len(CategorySeparator):]
		}
		add(SuggestKey(leaf), SuggestCategory, path)
	}
	words := 0
	for w := range strings.FieldsFuncSeq(p.Title, notWordRune) {
		if words == maxTitleWords {
			break
		}
		if n := utf8.RuneCountInString(w); n < 2 || n > 32 || strings.ContainsFunc(w, unicode.IsDigit) {
			continue
		}
		key := SuggestKey(w)
		add(key, SuggestTerm, key)
		words++
	}
	return out
}

func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r)
}

// cleanText drops control characters and surrounding spaces.
func cleanText(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, s)
	}
	return strings.TrimSpace(s)
}

// SuggestTermKey is the key part of a suggestion term, what a prefix matches.
func SuggestTermKey(term string) string {
	key, _, _ := strings.Cut(term, suggestSep)
	return key
}

// SuggestionOf decodes a suggestion term carried by count products.
func SuggestionOf(term string, count int) (Suggestion, bool) {
	key, rest, ok := strings.Cut(term, suggestSep)
	if !ok {
		return Suggestion{}, false
	}
	letter, text, ok := strings.Cut(rest, suggestSep)
	if !ok || key == "" {
		return Suggestion{}, false
	}
	var kind string
	switch letter {
	case "b":
		kind = SuggestBrand
	case "c":
		kind = SuggestCategory
	case "t":
		kind = SuggestTerm
	default:
		return Suggestion{}, false
	}
	return Suggestion{Text: text, Kind: kind, Count: count}, true
}

// SuggestCandidates is how many of the best terms a backend reads to
// answer limit suggestions: room for the terms FinishSuggestions leaves out.
func SuggestCandidates(limit int) int { return 2*limit + 4 }

// RankedTerm is a suggestion term and its live count.
type RankedTerm struct {
	Term  string
	Count int
}

// CompareRanked is suggestion order: count descending, then term.
func CompareRanked(a, b RankedTerm) int {
	return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Term, b.Term))
}

// FinishSuggestions turns the best candidate terms (any order) into at
// most limit suggestions: in suggestion order, carried by at least one
// product, without a term shadowed by a brand or category of its key.
func FinishSuggestions(cands []RankedTerm, limit int) []Suggestion {
	slices.SortFunc(cands, CompareRanked)
	named := map[string]bool{}
	for _, c := range cands {
		if s, ok := SuggestionOf(c.Term, c.Count); ok && s.Kind != SuggestTerm && c.Count > 0 {
			named[SuggestTermKey(c.Term)] = true
		}
	}
	out := make([]Suggestion, 0, min(limit, len(cands)))
	for _, c := range cands {
		if len(out) == limit {
			break
		}
		s, ok := SuggestionOf(c.Term, c.Count)
		if !ok || c.Count <= 0 || (s.Kind == SuggestTerm && named[SuggestTermKey(c.Term)]) {
			continue
		}
		out = append(out, s)
	}
	return out
}
