package embedsearch

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// segmentCache keeps, for every segment of the index, what a search would
// otherwise decode again for each hit: its external id (the sort
// tie-break; stored fields are compressed per document) and its facet
// values (doc values are compressed per chunk, and top hits are scattered
// over many chunks). Segments never change, so a segment's values are
// read once, on first use, and dropped when merging retires the segment.
type segmentCache struct {
	mu   sync.Mutex
	segs map[segment.Segment]*segmentValues
}

// segmentValues are one segment's cached values, by local document number:
// about 20 bytes a document beside its id and multi-valued facets.
type segmentValues struct {
	once     sync.Once
	err      error
	ids      []string
	facets   map[string]*termColumn // brand, category
	single   []*ordColumn           // singleFacetFields, in order
	currency ordColumn
	prices   []int64 // effective price
}

// termColumn holds a field's terms per document: terms[start[d]:start[d+1]]
// index into dict.
type termColumn struct {
	start []uint32
	terms []uint32
	dict  []string
}

// ordColumn holds a single-valued field's term per document: dict[ords[d]-1],
// none where ords[d] is 0.
type ordColumn struct {
	ords []uint32
	dict []string
	of   map[string]uint32
}

func (c *ordColumn) set(d uint64, term []byte) {
	o, ok := c.of[string(term)]
	if !ok {
		c.dict = append(c.dict, string(term))
		o = uint32(len(c.dict))
		c.of[c.dict[o-1]] = o
	}
	c.ords[d] = o
}

func (c *ordColumn) value(d uint64) (string, bool) {
	if d >= uint64(len(c.ords)) || c.ords[d] == 0 {
		return "", false
	}
	return c.dict[c.ords[d]-1], true
}

// cachedSnapshot is an index snapshot whose external ids and facet values
// come from the cache. Searchers get the plain snapshot; collectors and
// facet counts get this.
type cachedSnapshot struct {
	index.IndexReader
	offsets []uint64
	values  []*segmentValues
}

// wrap returns r with cached ids and facet values, or r itself when it is
// not a scorch snapshot.
func (c *segmentCache) wrap(r index.IndexReader) (index.IndexReader, error) {
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return r, nil
	}
	segs := snap.Segments()
	cs := &cachedSnapshot{IndexReader: r, offsets: make([]uint64, len(segs)), values: make([]*segmentValues, len(segs))}
	c.mu.Lock()
	if c.segs == nil {
		c.segs = make(map[segment.Segment]*segmentValues)
	}
	live := make(map[segment.Segment]bool, len(segs))
	var running uint64
	for i, ss := range segs {
		seg := ss.Segment()
		cs.offsets[i] = running
		running += seg.Count() // deleted documents included, as scorch numbers them
		live[seg] = true
		v, ok := c.segs[seg]
		if !ok {
			v = &segmentValues{}
			c.segs[seg] = v
		}
		cs.values[i] = v
	}
	if len(c.segs) > 2*len(segs)+8 {
		// Merged-away segments: a snapshot still using one keeps its own pointer.
		for seg := range c.segs {
			if !live[seg] {
				delete(c.segs, seg)
			}
		}
	}
	c.mu.Unlock()
	for i, ss := range segs {
		if err := cs.values[i].fill(r, cs.offsets[i], ss); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// fill reads the segment's ids and facet values, once.
func (v *segmentValues) fill(r index.IndexReader, offset uint64, ss *scorch.SegmentSnapshot) error {
	v.once.Do(func() {
		n := ss.Segment().Count()
		v.ids = make([]string, n)
		for d := range n {
			id, err := ss.DocID(d)
			if err != nil {
				v.err = fmt.Errorf("embedsearch: read ids: %w", err)
				return
			}
			v.ids[d] = string(id)
		}
		dv, err := r.DocValueReader(facetDocValues)
		if err != nil {
			v.err = fmt.Errorf("embedsearch: read facet values: %w", err)
			return
		}
		v.facets = make(map[string]*termColumn, len(multiFacetFields))
		ords := make(map[string]map[string]uint32, len(multiFacetFields))
		for _, f := range multiFacetFields {
			v.facets[f] = &termColumn{start: make([]uint32, 0, n+1)}
			ords[f] = map[string]uint32{}
		}
		newOrds := func() *ordColumn { return &ordColumn{ords: make([]uint32, n), of: map[string]uint32{}} }
		v.single = make([]*ordColumn, len(singleFacetFields))
		for i := range singleFacetFields {
			v.single[i] = newOrds()
		}
		v.currency = *newOrds()
		v.prices = make([]int64, n)
		buf := make([]byte, 8)
		for d := range n {
			for _, f := range multiFacetFields {
				col := v.facets[f]
				col.start = append(col.start, uint32(len(col.terms)))
			}
			id := index.NewIndexInternalID(buf, offset+d)
			err := dv.VisitDocValues(id, func(field string, term []byte) {
				switch field {
				case fieldCurrency:
					v.currency.set(d, term)
					return
				case fieldPriceSort:
					if p, err := numeric.PrefixCoded(term).Int64(); err == nil {
						v.prices[d] = int64(numeric.Int64ToFloat64(p))
					}
					return
				}
				if i := slices.Index(singleFacetFields, field); i >= 0 {
					v.single[i].set(d, term)
					return
				}
				col, ok := v.facets[field]
				if !ok {
					return
				}
				o, seen := ords[field][string(term)]
				if !seen {
					o = uint32(len(col.dict))
					col.dict = append(col.dict, string(term))
					ords[field][col.dict[o]] = o
				}
				col.terms = append(col.terms, o)
			})
			if err != nil {
				v.err = fmt.Errorf("embedsearch: read facet values: %w", err)
				return
			}
		}
		for _, f := range multiFacetFields {
			col := v.facets[f]
			col.start = append(col.start, uint32(len(col.terms)))
		}
		for _, one := range v.single {
			one.of = nil
		}
		v.currency.of = nil
	})
	return v.err
}

func (cs *cachedSnapshot) locate(id index.IndexInternalID) (*segmentValues, uint64) {
	docNum := id.Value()
	i := sort.Search(len(cs.offsets), func(x int) bool { return cs.offsets[x] > docNum }) - 1
	return cs.values[i], docNum - cs.offsets[i]
}

// ExternalID answers from the cache.
func (cs *cachedSnapshot) ExternalID(id index.IndexInternalID) (string, error) {
	v, d := cs.locate(id)
	if d >= uint64(len(v.ids)) {
		return cs.IndexReader.ExternalID(id)
	}
	return v.ids[d], nil
}

// countFacets adds the document's facet values and price to counts.
func (cs *cachedSnapshot) countFacets(id index.IndexInternalID, counts *facetCounts) {
	v, d := cs.locate(id)
	for _, f := range multiFacetFields {
		col := v.facets[f]
		if d+1 >= uint64(len(col.start)) {
			continue
		}
		m := counts.terms[f]
		for _, o := range col.terms[col.start[d]:col.start[d+1]] {
			m[col.dict[o]]++
		}
	}
	for i, col := range v.single {
		if val, ok := col.value(d); ok {
			counts.single[i][val]++
		}
	}
	if counts.currency != "" {
		if cur, ok := v.currency.value(d); ok && cur == counts.currency {
			counts.prices.Add(v.prices[d])
		}
	}
}
