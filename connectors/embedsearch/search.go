package embedsearch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/collector"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"

	"feedline/schemas"
)

// allTermsUpTo is the longest query, in analysed terms, whose every term
// must match; longer queries need three quarters of their terms, so a
// spaced-out Korean phrase ("무선 이어폰") still matches its run-together form
// whose bigrams differ at the join.
const allTermsUpTo = 3

// Search runs one page of a product search. Filters are term and numeric
// range clauses of one conjunction that add nothing to the relevance score.
//
// What a search costs is bounded by what it answers: the page is collected
// from one pass that reads no facet values; Total is exact up to
// schemas.SearchTotalBound; facets count every match when the matches are
// within that bound (from the first page's top hits when they hold them
// all, else in a second pass over at most the bound), and beyond it the
// first schemas.SearchFacetSample hits of the search's order.
func (ix *Index) Search(ctx context.Context, r schemas.SearchRequest) (schemas.SearchResult, error) {
	p, err := ix.plan(r)
	if err != nil {
		return schemas.SearchResult{}, err
	}
	var after []string
	if r.Cursor != "" {
		if after, err = p.decodeCursor(r.Cursor); err != nil {
			return schemas.SearchResult{}, err
		}
	}
	key := keyOf(p, r)
	if res, ok := ix.answers.get(key); ok {
		return res, nil
	}
	generation := ix.answers.now()
	// The same search arriving while it runs waits for its answer instead
	// of computing it again: a cold landing page is asked by many at once.
	v, err, _ := ix.inflight.Do(fmt.Sprintf("%d/%x/%d/%s/%s", generation, key.search, key.limit, key.currency, key.cursor), func() (any, error) {
		res, err := ix.search(ctx, p, r, after)
		if err == nil {
			ix.answers.put(generation, key, res)
		}
		return res, err
	})
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The caller that ran it went away; this one has not.
		return ix.search(ctx, p, r, after)
	}
	if err != nil {
		return schemas.SearchResult{}, err
	}
	return copyResult(v.(schemas.SearchResult)), nil
}

// search answers r from the index, uncached.
func (ix *Index) search(ctx context.Context, p searchPlan, r schemas.SearchRequest, after []string) (schemas.SearchResult, error) {
	adv, err := ix.bleve.Advanced()
	if err != nil {
		return schemas.SearchResult{}, fmt.Errorf("embedsearch: search: %w", err)
	}
	reader, err := adv.Reader() // one snapshot for every pass
	if err != nil {
		return schemas.SearchResult{}, fmt.Errorf("embedsearch: search: %w", err)
	}
	defer reader.Close()
	cached, err := ix.segments.wrap(reader)
	if err != nil {
		return schemas.SearchResult{}, err
	}
	limit := r.PageLimit()
	s := snapshotSearch{ix: ix, reader: reader, cached: cached, plan: p}

	// The first page keeps the facet sample too; one hit past the page
	// tells whether another page follows.
	size := limit + 1
	if after == nil {
		size = max(size, schemas.SearchFacetSample)
	}
	top, matches, err := s.collect(ctx, size, after)
	if err != nil {
		return schemas.SearchResult{}, err
	}
	out := schemas.SearchResult{Hits: make([]schemas.Product, 0, min(len(top), limit))}
	out.Total, out.TotalRelation = schemas.BoundedTotal(matches)
	for i, h := range top {
		if i == limit {
			out.NextCursor = p.encodeCursor(top[i-1])
			break
		}
		prod, err := s.product(h.ID)
		if err != nil {
			return schemas.SearchResult{}, err
		}
		out.Hits = append(out.Hits, prod)
		if p.marks != nil {
			out.Highlights = append(out.Highlights, p.marks.highlight(&prod))
		}
	}

	counts := newFacetCounts(r.Currency)
	switch {
	case after == nil && uint64(len(top)) == matches:
		// The top hits are every match.
		err = s.countHits(counts, top)
		out.FacetsBasis = schemas.FacetsAllMatches
	case matches <= schemas.SearchTotalBound:
		err = s.countAll(ctx, counts)
		out.FacetsBasis = schemas.FacetsAllMatches
	default:
		sample := top
		if after != nil {
			// Later pages state the same facets as the first.
			sample, _, err = s.collect(ctx, schemas.SearchFacetSample, nil)
		}
		if err == nil {
			err = s.countHits(counts, sample[:min(len(sample), schemas.SearchFacetSample)])
		}
		out.FacetsBasis = schemas.FacetsTopHits
	}
	if err != nil {
		return schemas.SearchResult{}, err
	}
	out.Facets = counts.top(facetSize)
	out.PriceStats = counts.priceStats()
	return out, nil
}

// snapshotSearch runs the passes of one search on one index snapshot.
type snapshotSearch struct {
	ix     *Index
	reader index.IndexReader // searchers read the snapshot itself
	cached index.IndexReader // collectors read ids through the segment cache
	plan   searchPlan
}

func (s snapshotSearch) searcher(ctx context.Context) (search.Searcher, error) {
	opts := search.SearcherOptions{}
	if !s.plan.scored {
		opts.Score = "none"
	}
	sr, err := s.plan.query.Searcher(ctx, s.reader, s.ix.bleve.Mapping(), opts)
	if err != nil {
		return nil, fmt.Errorf("embedsearch: search: %w", err)
	}
	return sr, nil
}

// collect returns the first size hits in the plan's order (after the
// cursor's sort values, when given) and how many documents match.
func (s snapshotSearch) collect(ctx context.Context, size int, after []string) (search.DocumentMatchCollection, uint64, error) {
	sr, err := s.searcher(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer sr.Close()
	order := s.plan.order.Copy()
	var coll *collector.TopNCollector
	if after != nil {
		coll = collector.NewTopNCollectorAfter(size, order, after)
	} else {
		coll = collector.NewTopNCollector(size, 0, order)
	}
	if err := coll.Collect(ctx, sr, s.cached); err != nil {
		return nil, 0, fmt.Errorf("embedsearch: search: %w", err)
	}
	return coll.Results(), coll.Total(), nil
}

func (s snapshotSearch) product(id string) (schemas.Product, error) {
	d, err := s.reader.Document(id)
	if err != nil {
		return schemas.Product{}, fmt.Errorf("embedsearch: get %s: %w", id, err)
	}
	var src []byte
	if d != nil {
		d.VisitFields(func(f index.Field) {
			if f.Name() == fieldSource {
				src = f.Value()
			}
		})
	}
	return s.ix.sources.decode(id, src)
}

// countHits adds the facet values of hits to counts.
func (s snapshotSearch) countHits(counts *facetCounts, hits search.DocumentMatchCollection) error {
	count, err := s.facetCounter(counts)
	if err != nil {
		return err
	}
	for _, h := range hits {
		if err := count(h.IndexInternalID); err != nil {
			return err
		}
	}
	return nil
}

// facetCounter returns a func adding one document's facet values to
// counts: from the segment cache, or else from doc values.
func (s snapshotSearch) facetCounter(counts *facetCounts) (func(index.IndexInternalID) error, error) {
	if cs, ok := s.cached.(*cachedSnapshot); ok {
		return func(id index.IndexInternalID) error { cs.countFacets(id, counts); return nil }, nil
	}
	dv, err := s.reader.DocValueReader(facetDocValues)
	if err != nil {
		return nil, fmt.Errorf("embedsearch: facets: %w", err)
	}
	return func(id index.IndexInternalID) error {
		if err := dv.VisitDocValues(id, counts.add); err != nil {
			return fmt.Errorf("embedsearch: facets: %w", err)
		}
		counts.endDoc()
		return nil
	}, nil
}

// countAll adds the facet values of every match to counts, in one pass
// that neither scores nor sorts.
func (s snapshotSearch) countAll(ctx context.Context, counts *facetCounts) error {
	noScore := s
	noScore.plan.scored = false
	sr, err := noScore.searcher(ctx)
	if err != nil {
		return err
	}
	defer sr.Close()
	count, err := s.facetCounter(counts)
	if err != nil {
		return err
	}
	sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(sr.DocumentMatchPoolSize()+1, 0), IndexReader: s.reader}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		m, err := sr.Next(sctx)
		if err != nil {
			return fmt.Errorf("embedsearch: facets: %w", err)
		}
		if m == nil {
			return nil
		}
		if err := count(m.IndexInternalID); err != nil {
			return err
		}
		sctx.DocumentMatchPool.Put(m)
	}
}

// searchPlan is a request turned into a bleve query and sort order, with the
// key that ties cursors to it.
type searchPlan struct {
	query  query.Query
	order  search.SortOrder
	scored bool
	key    uint64
	marks  *highlighter // nil without text
}

func (ix *Index) plan(r schemas.SearchRequest) (searchPlan, error) {
	c := r.Canonical()
	text, sort := c.Text, c.Sort
	var p searchPlan
	switch sort {
	case schemas.SortRelevance:
		p.order = search.SortOrder{&search.SortScore{Desc: true}, &search.SortDocID{}}
		p.scored = text != ""
	case schemas.SortPriceAsc:
		p.order = search.SortOrder{numberSort(fieldPriceSort, false), &search.SortDocID{}}
	case schemas.SortPriceDesc:
		p.order = search.SortOrder{numberSort(fieldPriceSort, true), &search.SortDocID{}}
	case schemas.SortNewest:
		p.order = search.SortOrder{numberSort(fieldUpdated, true), &search.SortDocID{}}
	default:
		return p, fmt.Errorf("embedsearch: unknown sort %q", r.Sort)
	}

	brands, categories, partners, avail := c.Brands, c.Categories, c.Partners, c.Availability

	var clauses []query.Query
	if text != "" {
		var match []query.Query
		match, p.marks = ix.textMatch(c.TextQuery())
		if key, ok := schemas.IdentifierKey(text); ok {
			// The product carrying it, first: its boost outweighs any text score.
			var textMatch query.Query = query.NewConjunctionQuery(match)
			if len(match) == 1 {
				textMatch = match[0]
			}
			either := query.NewDisjunctionQuery([]query.Query{termQuery(fieldIdentifier, key, boostIdentifier), textMatch})
			match = []query.Query{either}
		}
		clauses = append(clauses, match...)
	}
	filter := func(q query.Query) {
		if p.scored {
			q = unscored{q}
		}
		clauses = append(clauses, q)
	}
	if len(brands) > 0 {
		filter(anyTerm(fieldBrandKeyword, brands))
	}
	if len(categories) > 0 {
		filter(anyTerm(fieldCategory, categories))
	}
	if len(partners) > 0 {
		filter(anyTerm(fieldPartner, partners))
	}
	if len(avail) > 0 {
		filter(anyTerm(fieldAvailability, avail))
	}
	if c.Currency != "" {
		// Minor units of other currencies do not compare: a price filter
		// or sort leaves their products out.
		filter(termQuery(fieldCurrency, c.Currency, 1))
	}
	if r.MinPrice != nil || r.MaxPrice != nil {
		filter(priceRange(r.MinPrice, r.MaxPrice))
	}
	switch len(clauses) {
	case 0:
		// Every product, and no tombstone.
		p.query = termQuery(fieldLive, liveTerm, 1)
	case 1:
		p.query = clauses[0]
	default:
		p.query = query.NewConjunctionQuery(clauses)
	}

	p.key = c.Key()
	return p, nil
}

func numberSort(field string, desc bool) *search.SortField {
	return &search.SortField{Field: field, Type: search.SortFieldAsNumber, Desc: desc}
}

// textClauses matches each term in any text field (so "삼성 이어폰" finds a
// Samsung brand with 이어폰 in the title) and returns the clauses that join the
// filters' conjunction.
func textClauses(terms []string) []query.Query {
	perTerm := make([]query.Query, len(terms))
	for i, t := range terms {
		perTerm[i] = crossFieldTerm{term: t}
	}
	if len(perTerm) <= allTermsUpTo {
		return perTerm
	}
	d := query.NewDisjunctionQuery(perTerm)
	d.SetMin(float64(len(perTerm) * 3 / 4))
	return []query.Query{d}
}

var textFields = []struct {
	name  string
	boost float64
}{
	{fieldTitle, boostTitle},
	{fieldBrand, boostBrand},
	{fieldDescription, boostDescription},
}

// crossFieldTerm matches one analysed term in any text field. When scoring,
// every field weighs the term by the IDF it has in the field where it is
// most common, as Elasticsearch's cross_fields does: with each field's own
// IDF, a word common in titles but rare in descriptions would rank
// description matches above title matches whatever the boosts.
type crossFieldTerm struct{ term string }

func (q crossFieldTerm) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, o search.SearcherOptions) (search.Searcher, error) {
	var df [3]uint64
	var maxDF uint64
	for i, f := range textFields {
		tfr, err := r.TermFieldReader(ctx, []byte(q.term), f.name, false, false, false)
		if err != nil {
			return nil, err
		}
		df[i] = tfr.Count()
		if err := tfr.Close(); err != nil {
			return nil, err
		}
		maxDF = max(maxDF, df[i])
	}
	if maxDF == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	docs, err := r.DocCount()
	if err != nil {
		return nil, err
	}
	// bleve's TF-IDF applies a term's IDF twice (query weight and document
	// score), so the boost scales by the squared ratio.
	idf := func(df uint64) float64 { return 1 + math.Log(float64(docs)/float64(df+1)) }
	blended := idf(maxDF)
	qs := make([]query.Query, 0, len(textFields))
	for i, f := range textFields {
		if df[i] == 0 {
			continue
		}
		ratio := blended / idf(df[i])
		qs = append(qs, termQuery(f.name, q.term, f.boost*ratio*ratio))
	}
	if len(qs) == 1 {
		return qs[0].Searcher(ctx, r, m, o)
	}
	return query.NewDisjunctionQuery(qs).Searcher(ctx, r, m, o)
}

func termQuery(field, term string, boost float64) *query.TermQuery {
	q := query.NewTermQuery(term)
	q.SetField(field)
	q.SetBoost(boost)
	return q
}

// anyTerm matches documents holding one of values in field.
func anyTerm(field string, values []string) query.Query {
	if len(values) == 1 {
		return termQuery(field, values[0], 1)
	}
	qs := make([]query.Query, len(values))
	for i, v := range values {
		qs[i] = termQuery(field, v, 1)
	}
	return query.NewDisjunctionQuery(qs)
}

func priceRange(lo, hi *int64) query.Query {
	inclusive := true
	var min, max *float64
	if lo != nil {
		f := priceTerm(*lo)
		min = &f
	}
	if hi != nil {
		f := priceTerm(*hi)
		max = &f
	}
	q := query.NewNumericRangeInclusiveQuery(min, max, &inclusive, &inclusive)
	q.SetField(fieldPrice)
	return q
}

// unscored wraps a filter so it narrows matches without adding to their
// score: a brand filter must not rank one brand's products above another's.
type unscored struct{ query.Query }

func (u unscored) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, o search.SearcherOptions) (search.Searcher, error) {
	o.Score = "none"
	o.Explain = false
	return u.Query.Searcher(ctx, r, m, o)
}

// cursor is what NextCursor carries: the sort values of the page's last hit
// and the key of the search they belong to.
type cursor struct {
	Key   uint64   `json:"k"`
	After []string `json:"a"`
}

func (p searchPlan) encodeCursor(last *search.DocumentMatch) string {
	after := make([]string, len(p.order))
	for i, s := range p.order {
		switch s.(type) {
		case *search.SortScore:
			after[i] = strconv.FormatFloat(last.Score, 'g', -1, 64)
		case *search.SortDocID:
			after[i] = last.ID
		default:
			after[i] = last.DecodedSort[i]
		}
	}
	b, _ := json.Marshal(cursor{Key: p.key, After: after}) // strings and a number cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p searchPlan) decodeCursor(s string) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("embedsearch: %w", schemas.ErrBadCursor)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Key != p.key || len(c.After) != len(p.order) {
		return nil, fmt.Errorf("embedsearch: %w", schemas.ErrBadCursor)
	}
	for i, s := range p.order {
		switch s.(type) {
		case *search.SortDocID:
		default:
			if _, err := strconv.ParseFloat(c.After[i], 64); err != nil {
				return nil, fmt.Errorf("embedsearch: %w", schemas.ErrBadCursor)
			}
		}
	}
	return c.After, nil
}
