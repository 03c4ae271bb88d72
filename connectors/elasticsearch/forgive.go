package elasticsearch

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"feedline/schemas"
)

// What a typo or a prefix completion weighs beside the exact word, as in
// the embedded index: less, so exact matches rank first.
const (
	boostFuzzy  = 0.3
	boostPrefix = 0.5
)

// forgivingMatch matches each forgiving word exactly, with typos (AUTO
// fuzziness, a transposition being one edit, as in the embedded index) or,
// when last, as a prefix; each synonym match as typed or as any of its
// alternatives; and the other words exactly, three quarters of their terms
// past three.
func forgivingMatch(tq schemas.TextQuery) obj {
	var must []any
	synonymAt := map[int]schemas.SynonymMatch{}
	for _, m := range tq.Synonyms {
		synonymAt[m.From] = m
	}
	var rest []string
	for i := 0; i < len(tq.Words); i++ {
		if m, ok := synonymAt[i]; ok {
			must = append(must, synonymMatch(tq, m))
			i = m.To - 1
			continue
		}
		if w := tq.Words[i]; w.Forgiving {
			must = append(must, forgivingWord(w))
		} else {
			rest = append(rest, w.Text)
		}
	}
	if len(rest) > 0 {
		must = append(must, obj{"multi_match": obj{
			"type":                 "cross_fields",
			"query":                strings.Join(rest, " "),
			"fields":               boostedTextFields(),
			"minimum_should_match": textMatch,
		}})
	}
	return obj{"bool": obj{"must": must}}
}

// allTerms matches every term of text, each in any text field.
func allTerms(text string) obj {
	return obj{"multi_match": obj{
		"type":     "cross_fields",
		"query":    text,
		"fields":   boostedTextFields(),
		"operator": "and",
	}}
}

func forgivingWord(w schemas.QueryWord) obj {
	either := []any{allTerms(w.Text)}
	// Shorter words get no edit from AUTO; the clause would only cost.
	if utf8.RuneCountInString(w.Text) >= 3 {
		either = append(either, obj{"multi_match": obj{
			"type":           "best_fields",
			"query":          w.Text,
			"fields":         boostedTextFields(),
			"fuzziness":      "AUTO",
			"max_expansions": schemas.ForgivingMaxExpansions,
			"boost":          boostFuzzy,
		}})
	}
	if w.Prefix {
		either = append(either, obj{"multi_match": obj{
			"type":           "bool_prefix",
			"query":          w.Text,
			"fields":         boostedTextFields(),
			"max_expansions": schemas.ForgivingMaxExpansions,
			"boost":          boostPrefix,
		}})
	}
	if len(either) == 1 {
		return either[0].(obj)
	}
	return obj{"bool": obj{"should": either, "minimum_should_match": 1}}
}

// synonymMatch matches the words of m as typed or as any alternative; an
// alternative of some partners' lists only in those partners' products.
func synonymMatch(tq schemas.TextQuery, m schemas.SynonymMatch) obj {
	var own obj
	if w := tq.Words[m.From]; m.To-m.From == 1 && w.Forgiving {
		own = forgivingWord(w)
	} else {
		words := make([]string, 0, m.To-m.From)
		for _, w := range tq.Words[m.From:m.To] {
			words = append(words, w.Text)
		}
		own = allTerms(strings.Join(words, " "))
	}
	either := []any{own}
	for _, alt := range m.Alternatives {
		var q any = allTerms(alt.Term)
		if len(alt.Partners) > 0 {
			q = obj{"bool": obj{"filter": []any{obj{"terms": obj{FieldPartner: alt.Partners}}}, "must": []any{q}}}
		}
		either = append(either, q)
	}
	return obj{"bool": obj{"should": either, "minimum_should_match": 1}}
}

// Marks around highlighted words: private-use characters, which product
// text does not hold (a value that does is left unmarked).
const (
	markStart = "\ue000"
	markEnd   = "\ue001"
)

// highlightRequest asks for each highlighted field whole, marked.
func highlightRequest() obj {
	fields := obj{}
	for _, f := range []string{FieldTitle, FieldDescription} {
		fields[f] = obj{"number_of_fragments": 0}
	}
	return obj{
		"pre_tags":  []string{markStart},
		"post_tags": []string{markEnd},
		"fields":    fields,
	}
}

// highlightOf reads a hit's marked fields into ranges of its values.
func highlightOf(p *schemas.Product, marked map[string][]string) schemas.Highlight {
	var out schemas.Highlight
	for _, f := range []struct{ name, value string }{
		{schemas.HighlightTitle, p.Title},
		{schemas.HighlightDescription, p.Description},
	} {
		frags := marked[f.name]
		if len(frags) != 1 {
			continue
		}
		ranges, ok := markedRanges(frags[0], f.value)
		if !ok || len(ranges) == 0 {
			continue
		}
		if out == nil {
			out = schemas.Highlight{}
		}
		out[f.name] = ranges
	}
	return out
}

// markedRanges are the UTF-16 ranges between marks in marked, when
// marked is value with marks added.
func markedRanges(marked, value string) ([][2]int, bool) {
	var ranges [][2]int
	var plain strings.Builder
	units, start := 0, -1
	for _, r := range marked {
		switch string(r) {
		case markStart:
			start = units
		case markEnd:
			if start >= 0 {
				ranges = append(ranges, [2]int{start, units})
			}
			start = -1
		default:
			plain.WriteRune(r)
			units += utf16.RuneLen(r)
		}
	}
	if plain.String() != value {
		return nil, false
	}
	return schemas.MergeRanges(ranges), true
}
