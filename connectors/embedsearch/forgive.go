package embedsearch

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"feedline/schemas"
)

// What a typo or a prefix completion weighs beside the exact word it
// stands for: less, so exact matches rank first.
const (
	boostFuzzy  = 0.3
	boostPrefix = 0.5
)

// expansionScan bounds the dictionary entries a prefix or a typo reads in
// one field: a three-letter prefix of a large catalog's titles can start
// thousands of words. Of those read, the schemas.ForgivingMaxExpansions
// most frequent (closest first, for typos) become clauses.
const expansionScan = 1024

// textMatch turns a search's text into the clauses that join the filters'
// conjunction, and the highlighter of its hits.
func (ix *Index) textMatch(tq schemas.TextQuery) ([]query.Query, *highlighter) {
	tokens := ix.docs.text.Analyze([]byte(tq.Text))
	exact := distinctTerms(tokens)
	marks := &highlighter{text: ix.docs.text, exact: setOf(exact)}
	if !tq.Forgiving() {
		if len(exact) == 0 {
			// Only punctuation or the like: no text can match.
			return []query.Query{query.NewMatchNoneQuery()}, marks
		}
		return textClauses(exact), marks
	}
	forgiving := ix.forgivingClauses(tq, tokens, marks)
	if len(exact) <= allTermsUpTo {
		// Every term must then match exactly, which the forgiving clauses
		// allow too: they alone decide.
		return forgiving, marks
	}
	// A long query matches with three quarters of its terms exactly, or
	// with each forgiving word in any of its forms and the rest exactly.
	either := query.NewDisjunctionQuery([]query.Query{conjunction(textClauses(exact)), conjunction(forgiving)})
	return []query.Query{either}, marks
}

// forgivingClauses are the required clauses of a text: one per forgiving
// word, one per synonym match, and the rest of the terms matched exactly.
func (ix *Index) forgivingClauses(tq schemas.TextQuery, tokens analysis.TokenStream, marks *highlighter) []query.Query {
	var clauses []query.Query
	var rest []string
	synonymAt := map[int]schemas.SynonymMatch{}
	for _, m := range tq.Synonyms {
		synonymAt[m.From] = m
	}
	for i := 0; i < len(tq.Words); i++ {
		if m, ok := synonymAt[i]; ok {
			clauses = append(clauses, ix.synonymClause(tq, m, tokens, marks))
			i = m.To - 1
			continue
		}
		w := tq.Words[i]
		if q, ok := forgivingWord(w, tokens, marks); ok {
			clauses = append(clauses, q)
			continue
		}
		for _, t := range wordTerms(w, tokens) {
			if !slices.Contains(rest, t) {
				rest = append(rest, t)
			}
		}
	}
	if len(rest) > 0 {
		clauses = append(clauses, textClauses(rest)...)
	}
	if len(clauses) == 0 {
		clauses = []query.Query{query.NewMatchNoneQuery()}
	}
	return clauses
}

// forgivingWord is the clause of a forgiving word: its term exactly, with
// typos, and as a prefix when it is the last word.
func forgivingWord(w schemas.QueryWord, tokens analysis.TokenStream, marks *highlighter) (query.Query, bool) {
	terms := wordTerms(w, tokens)
	if !w.Forgiving || len(terms) != 1 {
		return nil, false
	}
	q := &forgivingTerm{term: terms[0], fuzziness: schemas.AutoFuzziness(terms[0])}
	if w.Prefix {
		q.prefix = true
	}
	if q.fuzziness == 0 && !q.prefix {
		return crossFieldTerm{term: q.term}, true
	}
	marks.forgiving = append(marks.forgiving, q)
	return q, true
}

// synonymClause matches the words of m as typed or as any alternative; an
// alternative of some partners' lists only in those partners' products.
func (ix *Index) synonymClause(tq schemas.TextQuery, m schemas.SynonymMatch, tokens analysis.TokenStream, marks *highlighter) query.Query {
	var own query.Query
	if m.To-m.From == 1 {
		own, _ = forgivingWord(tq.Words[m.From], tokens, marks)
	}
	if own == nil {
		var terms []string
		for _, w := range tq.Words[m.From:m.To] {
			terms = append(terms, wordTerms(w, tokens)...)
		}
		own = conjunction(termClauses(terms))
	}
	either := []query.Query{own}
	for _, alt := range m.Alternatives {
		terms := distinctTerms(ix.docs.text.Analyze([]byte(alt.Term)))
		if len(terms) == 0 {
			continue
		}
		marks.addSynonym(terms, alt.Partners)
		q := conjunction(termClauses(terms))
		if len(alt.Partners) > 0 {
			q = query.NewConjunctionQuery([]query.Query{unscored{anyTerm(fieldPartner, alt.Partners)}, q})
		}
		either = append(either, q)
	}
	if len(either) == 1 {
		return own
	}
	return query.NewDisjunctionQuery(either)
}

func termClauses(terms []string) []query.Query {
	out := make([]query.Query, len(terms))
	for i, t := range terms {
		out[i] = crossFieldTerm{term: t}
	}
	return out
}

func conjunction(qs []query.Query) query.Query {
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

// wordTerms are the distinct terms of the tokens within w.
func wordTerms(w schemas.QueryWord, tokens analysis.TokenStream) []string {
	var out []string
	for _, t := range tokens {
		if t.Start < w.End && t.End > w.Start && !slices.Contains(out, string(t.Term)) {
			out = append(out, string(t.Term))
		}
	}
	return out
}

func distinctTerms(tokens analysis.TokenStream) []string {
	out := make([]string, 0, len(tokens))
	for _, t := range tokens {
		if term := string(t.Term); !slices.Contains(out, term) {
			out = append(out, term)
		}
	}
	return out
}

func setOf(terms []string) map[string]struct{} {
	m := make(map[string]struct{}, len(terms))
	for _, t := range terms {
		m[t] = struct{}{}
	}
	return m
}

// forgivingTerm matches one term in any text field exactly, as
// crossFieldTerm, or with up to fuzziness edits, or, with prefix, as the
// start of a longer term. The words it expands to are read from the
// index's dictionaries once per snapshot and search (a search makes its
// searcher for each of its passes).
type forgivingTerm struct {
	term      string
	fuzziness int
	prefix    bool

	mu       sync.Mutex
	snapshot index.IndexReader
	expanded []fieldExpansion
}

// fieldExpansion is what a forgiving term expands to in one field, with
// each term's weight.
type fieldExpansion struct {
	field string
	terms []string
	boost []float64
}

func (q *forgivingTerm) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, o search.SearcherOptions) (search.Searcher, error) {
	expanded, err := q.expansions(ctx, r)
	if err != nil {
		return nil, err
	}
	qs := []query.Query{crossFieldTerm{term: q.term}}
	for _, e := range expanded {
		for i, t := range e.terms {
			qs = append(qs, termQuery(e.field, t, e.boost[i]))
		}
	}
	if len(qs) == 1 {
		return qs[0].Searcher(ctx, r, m, o)
	}
	return query.NewDisjunctionQuery(qs).Searcher(ctx, r, m, o)
}

func (q *forgivingTerm) expansions(ctx context.Context, r index.IndexReader) ([]fieldExpansion, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.snapshot == r {
		return q.expanded, nil
	}
	docs, err := r.DocCount()
	if err != nil {
		return nil, err
	}
	idf := func(df uint64) float64 { return 1 + math.Log(float64(docs)/float64(df+1)) }
	var out []fieldExpansion
	for _, f := range textFields {
		var found []expansion
		if q.fuzziness > 0 {
			typos, err := fuzzyTerms(r, f.name, q.term, q.fuzziness)
			if err != nil {
				return nil, err
			}
			found = append(found, typos...)
		}
		if q.prefix {
			completions, err := prefixTerms(r, f.name, q.term)
			if err != nil {
				return nil, err
			}
			for _, c := range completions {
				if !slices.ContainsFunc(found, func(e expansion) bool { return e.term == c.term }) {
					found = append(found, c)
				}
			}
		}
		if len(found) == 0 {
			continue
		}
		// Every expansion is weighed by the IDF of the most common among
		// them and the exact term, as Elasticsearch's blended frequencies
		// do: a rare misspelling in one product must not outrank the word
		// as it is spelt. bleve applies IDF twice, hence the square.
		tfr, err := r.TermFieldReader(ctx, []byte(q.term), f.name, false, false, false)
		if err != nil {
			return nil, err
		}
		maxDF := tfr.Count()
		if err := tfr.Close(); err != nil {
			return nil, err
		}
		for _, e := range found {
			maxDF = max(maxDF, e.count)
		}
		blended := idf(maxDF)
		fe := fieldExpansion{field: f.name}
		for _, e := range found {
			ratio := blended / idf(e.count)
			fe.terms = append(fe.terms, e.term)
			fe.boost = append(fe.boost, f.boost*e.weight*ratio*ratio)
		}
		out = append(out, fe)
	}
	q.snapshot, q.expanded = r, out
	return out, ctx.Err()
}

// expansion is one term a forgiving term stands for in a field.
type expansion struct {
	term     string
	count    uint64 // documents holding it in the field
	distance uint8
	weight   float64
}

// fuzzyTerms are the field's terms within fuzziness edits of term, but
// term itself: the closest and then most frequent of the first
// expansionScan, at most schemas.ForgivingMaxExpansions.
func fuzzyTerms(r index.IndexReader, field, term string, fuzziness int) ([]expansion, error) {
	fr, ok := r.(index.IndexReaderFuzzy)
	if !ok {
		return nil, nil
	}
	dict, _, err := fr.FieldDictFuzzyAutomaton(field, term, fuzziness, "")
	if err != nil {
		return nil, err
	}
	found, err := scanDict(dict, term, boostFuzzy)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b expansion) int {
		return cmp.Or(cmp.Compare(a.distance, b.distance), cmp.Compare(b.count, a.count), strings.Compare(a.term, b.term))
	})
	return found[:min(len(found), schemas.ForgivingMaxExpansions)], nil
}

// prefixTerms are the field's terms starting with prefix, but prefix
// itself: the most frequent of the first expansionScan, at most
// schemas.ForgivingMaxExpansions.
func prefixTerms(r index.IndexReader, field, prefix string) ([]expansion, error) {
	dict, err := r.FieldDictPrefix(field, []byte(prefix))
	if err != nil {
		return nil, err
	}
	found, err := scanDict(dict, prefix, boostPrefix)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b expansion) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.term, b.term))
	})
	return found[:min(len(found), schemas.ForgivingMaxExpansions)], nil
}

// scanDict reads up to expansionScan entries of dict, leaving out term,
// and closes it.
func scanDict(dict index.FieldDict, term string, weight float64) (found []expansion, err error) {
	defer func() {
		if cerr := dict.Close(); err == nil {
			err = cerr
		}
	}()
	for range expansionScan {
		e, err := dict.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if e.Term != term {
			found = append(found, expansion{term: e.Term, count: e.Count, distance: e.EditDistance, weight: weight})
		}
	}
	return found, nil
}

// highlighter marks, in a hit's title and description, the words the
// search's text matched: its terms, their typos and completions, and
// synonyms (a partner's only in its own products).
type highlighter struct {
	text      analysis.Analyzer
	exact     map[string]struct{}
	forgiving []*forgivingTerm
	synonyms  map[string]struct{}            // of every product
	partners  map[string]map[string]struct{} // partner → terms of its products
}

func (h *highlighter) addSynonym(terms, partners []string) {
	if len(partners) == 0 {
		if h.synonyms == nil {
			h.synonyms = map[string]struct{}{}
		}
		for _, t := range terms {
			h.synonyms[t] = struct{}{}
		}
		return
	}
	if h.partners == nil {
		h.partners = map[string]map[string]struct{}{}
	}
	for _, p := range partners {
		if h.partners[p] == nil {
			h.partners[p] = map[string]struct{}{}
		}
		for _, t := range terms {
			h.partners[p][t] = struct{}{}
		}
	}
}

// highlight is where p matched, or nil when nothing is to be marked.
func (h *highlighter) highlight(p *schemas.Product) schemas.Highlight {
	var out schemas.Highlight
	for _, f := range []struct{ name, value string }{
		{schemas.HighlightTitle, p.Title},
		{schemas.HighlightDescription, p.Description},
	} {
		if f.value == "" {
			continue
		}
		var ranges [][2]int
		for _, tok := range h.text.Analyze([]byte(f.value)) {
			if h.matches(string(tok.Term), p.Partner) {
				ranges = append(ranges, [2]int{tok.Start, tok.End})
			}
		}
		if len(ranges) == 0 {
			continue
		}
		if out == nil {
			out = schemas.Highlight{}
		}
		out[f.name] = schemas.HighlightRanges(f.value, ranges)
	}
	return out
}

func (h *highlighter) matches(term, partner string) bool {
	if _, ok := h.exact[term]; ok {
		return true
	}
	if _, ok := h.synonyms[term]; ok {
		return true
	}
	if _, ok := h.partners[partner][term]; ok {
		return true
	}
	for _, f := range h.forgiving {
		if f.prefix && strings.HasPrefix(term, f.term) {
			return true
		}
		if f.fuzziness > 0 && schemas.WithinEdits(f.term, term, f.fuzziness) {
			return true
		}
	}
	return false
}
