package schemas

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A search's text forgives what a shopper types: both backends build the
// same query from a TextQuery.
//
//   - A Latin-script word of letters only may match with typos, as
//     Elasticsearch's fuzziness AUTO counts them on its analysed term: one
//     or two characters exactly, three to five with one edit, longer with
//     two. Hangul, other CJK and any word holding a digit (an identifier, a
//     model number) match exactly.
//   - The last word, when such a word of at least PrefixMinRunes
//     characters, also matches as the start of a longer word ("blue ket"
//     finds "Blue Kettle").
//   - Synonyms (SynonymMatch) add alternatives to the words they cover.
//
// An exact match outranks a typo or a prefix completion. A product matches
// when the text matches exactly by the usual rule (every term of up to
// three, three quarters of more), or when each forgiving word and each
// synonym match holds, in any of its forms, and the other words match
// exactly by that rule.

// PrefixMinRunes is the shortest last word that also matches as a prefix:
// shorter prefixes would expand to too many words to be worth a search.
const PrefixMinRunes = 3

// ForgivingMaxExpansions bounds the words a typo or a prefix expands to,
// per field, in either backend: Elasticsearch's max_expansions default.
const ForgivingMaxExpansions = 50

// TextQuery is a search's text, word by word.
type TextQuery struct {
	Text  string
	Words []QueryWord
	// Synonyms are the synonym matches found in Words, in order, not
	// overlapping.
	Synonyms []SynonymMatch
}

// QueryWord is one whitespace-separated word of a search's text, without
// the punctuation around it.
type QueryWord struct {
	Text       string
	Start, End int // bytes of TextQuery.Text
	// Forgiving words are Latin letters only: they may match with typos,
	// and as a prefix when Prefix.
	Forgiving bool
	Prefix    bool
}

// ParseText splits text into its words and finds the synonyms the
// thesaurus (which may be nil) has for them, in products of any of
// partners (none: of every partner).
func ParseText(text string, th *Thesaurus, partners []string) TextQuery {
	q := TextQuery{Text: text}
	for start := 0; start < len(text); {
		r, n := utf8.DecodeRuneInString(text[start:])
		if unicode.IsSpace(r) {
			start += n
			continue
		}
		end := start
		for end < len(text) {
			r, n := utf8.DecodeRuneInString(text[end:])
			if unicode.IsSpace(r) {
				break
			}
			end += n
		}
		if w, ok := trimWord(text, start, end); ok {
			q.Words = append(q.Words, w)
		}
		start = end
	}
	if n := len(q.Words); n > 0 {
		last := &q.Words[n-1]
		last.Prefix = last.Forgiving && utf8.RuneCountInString(last.Text) >= PrefixMinRunes
	}
	if th != nil {
		q.Synonyms = th.match(q.Words, partners)
	}
	return q
}

// trimWord is text[start:end] without the punctuation and symbols at its
// ends; false when nothing is left.
func trimWord(text string, start, end int) (QueryWord, bool) {
	isEdge := func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }
	for start < end {
		r, n := utf8.DecodeRuneInString(text[start:end])
		if !isEdge(r) {
			break
		}
		start += n
	}
	for end > start {
		r, n := utf8.DecodeLastRuneInString(text[start:end])
		if !isEdge(r) {
			break
		}
		end -= n
	}
	if start == end {
		return QueryWord{}, false
	}
	w := QueryWord{Text: text[start:end], Start: start, End: end, Forgiving: true}
	for _, r := range w.Text {
		if !unicode.IsLetter(r) || !unicode.Is(unicode.Latin, r) {
			w.Forgiving = false
			break
		}
	}
	return w, true
}

// Forgiving reports whether the text has anything to forgive: a word that
// may match with typos or as a prefix, or a synonym.
func (q TextQuery) Forgiving() bool {
	if len(q.Synonyms) > 0 {
		return true
	}
	for _, w := range q.Words {
		if w.Forgiving {
			return true
		}
	}
	return false
}

// Covered reports whether word i is part of a synonym match.
func (q TextQuery) Covered(i int) bool {
	for _, s := range q.Synonyms {
		if i >= s.From && i < s.To {
			return true
		}
	}
	return false
}

// Remainder is the text of the words that match exactly only: neither
// forgiving nor part of a synonym match, joined by spaces.
func (q TextQuery) Remainder() string {
	var b strings.Builder
	for i, w := range q.Words {
		if w.Forgiving || q.Covered(i) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.Text)
	}
	return b.String()
}

// AutoFuzziness is how many edits an analysed term of a forgiving word may
// differ by: Elasticsearch's AUTO, counted in characters.
func AutoFuzziness(term string) int {
	switch n := utf8.RuneCountInString(term); {
	case n <= 2:
		return 0
	case n <= 5:
		return 1
	default:
		return 2
	}
}

// WithinEdits reports whether a and b differ by at most k edits: a
// character inserted, deleted or replaced, or two neighbours swapped, as
// both backends' automata count them (optimal string alignment).
func WithinEdits(a, b string, k int) bool {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > k || -d > k {
		return false
	}
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > k {
			return false
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)] <= k
}
