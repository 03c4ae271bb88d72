package embedsearch

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	index "github.com/blevesearch/bleve_index_api"

	"feedline/schemas"
)

var _ schemas.ProductSuggester = (*Index)(nil)

// suggestMaxTerms bounds the distinct suggestion terms held in memory
// (about 105 bytes each, measured in BENCHMARKS.md): brands, category
// paths and title words. Past it, a term not held yet is not suggested
// (on opening, the first ones in term order are held) until terms no
// product carries make room, and then counts only the products written
// after; until a restart recounts it, its count is low.
const suggestMaxTerms = 1 << 20

// Suggest completes a prefix from the suggestion table: each term's count
// of live products is kept by Apply, so an answer reads no product.
func (ix *Index) Suggest(ctx context.Context, r schemas.SuggestRequest) ([]schemas.Suggestion, error) {
	key := schemas.SuggestKey(r.Prefix)
	if key == "" {
		return []schemas.Suggestion{}, nil
	}
	select {
	case <-ix.suggest.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("embedsearch: suggest: %w: the suggestions of the index are still being counted", schemas.ErrUnavailable)
	}
	if err := ix.suggest.countErr(); err != nil {
		return nil, err
	}
	limit := r.SuggestLimit()
	return schemas.FinishSuggestions(ix.suggest.top(key, schemas.SuggestCandidates(limit)), limit), nil
}

// suggestTable counts the live products carrying each suggestion term and
// finds a prefix's most carried terms without visiting all of them: terms
// are kept sorted, so a prefix is one range, and a tree over the sorted
// terms holds each subtree's best term, so the best n of a range take
// O(n log terms). Counts change in place; a term never seen before joins
// the sorted order on the next Suggest, in one merge of the sorted terms.
type suggestTable struct {
	ready chan struct{} // closed once the terms already indexed are counted

	mu      sync.RWMutex
	err     error // of counting the terms already indexed
	entries map[string]*suggestEntry
	sorted  []*suggestEntry
	tree    []int32 // tree[i]: position of the best entry below node i, or -1
	leaves  int     // a power of two, at least len(sorted)
	pending int     // entries not in sorted yet
	counted bool    // the indexed terms are counted: counts are no longer partial
}

type suggestEntry struct {
	term  string
	count int32
	at    int32 // position in sorted, -1 while pending
}

func newSuggestTable() *suggestTable {
	return &suggestTable{ready: make(chan struct{}), entries: make(map[string]*suggestEntry)}
}

// add changes counts by deltas.
func (t *suggestTable) add(deltas map[string]int32) {
	if len(deltas) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for term, d := range deltas {
		if d == 0 {
			continue
		}
		e := t.entries[term]
		if e == nil {
			if len(t.entries) >= suggestMaxTerms {
				t.pending = max(t.pending, 1) // the next Suggest drops what nothing carries
				continue
			}
			e = &suggestEntry{term: term, at: -1}
			t.entries[term] = e
			t.pending++
		}
		e.count += d
		if e.at >= 0 {
			t.fix(int(e.at))
		}
	}
}

func (t *suggestTable) countErr() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.err
}

// better is the position of the better of two entries: more products,
// then the lower position (the smaller term).
func (t *suggestTable) better(a, b int32) int32 {
	if a < 0 {
		return b
	}
	if b < 0 {
		return a
	}
	if ca, cb := t.sorted[a].count, t.sorted[b].count; ca != cb {
		if ca > cb {
			return a
		}
		return b
	}
	return min(a, b)
}

// fix recomputes the tree above the entry at pos.
func (t *suggestTable) fix(pos int) {
	for i := (pos + t.leaves) / 2; i >= 1; i /= 2 {
		t.tree[i] = t.better(t.node(2*i), t.node(2*i+1))
	}
}

// node is the best position below tree node i (a leaf is its own position).
func (t *suggestTable) node(i int) int32 {
	if i >= t.leaves {
		if p := i - t.leaves; p < len(t.sorted) {
			return int32(p)
		}
		return -1
	}
	return t.tree[i]
}

// rebuild sorts pending entries in and drops the ones no product carries.
func (t *suggestTable) rebuild() {
	fresh := make([]*suggestEntry, 0, t.pending)
	for _, e := range t.entries {
		if e.at < 0 {
			fresh = append(fresh, e)
		}
	}
	slices.SortFunc(fresh, func(a, b *suggestEntry) int { return strings.Compare(a.term, b.term) })
	merged := make([]*suggestEntry, 0, len(t.sorted)+len(fresh))
	keep := func(e *suggestEntry) {
		if t.counted && e.count <= 0 {
			delete(t.entries, e.term)
			return
		}
		e.at = int32(len(merged))
		merged = append(merged, e)
	}
	i, j := 0, 0
	for i < len(t.sorted) || j < len(fresh) {
		if j == len(fresh) || (i < len(t.sorted) && t.sorted[i].term < fresh[j].term) {
			keep(t.sorted[i])
			i++
		} else {
			keep(fresh[j])
			j++
		}
	}
	t.sorted, t.pending = merged, 0
	t.leaves = 1
	for t.leaves < len(merged) {
		t.leaves *= 2
	}
	t.tree = make([]int32, t.leaves)
	for i := t.leaves - 1; i >= 1; i-- {
		t.tree[i] = t.better(t.node(2*i), t.node(2*i+1))
	}
}

// top is the best n terms whose key starts with key.
func (t *suggestTable) top(key string, n int) []schemas.RankedTerm {
	t.mu.RLock()
	if t.pending > 0 {
		t.mu.RUnlock()
		t.mu.Lock()
		if t.pending > 0 {
			t.rebuild()
		}
		t.mu.Unlock()
		t.mu.RLock()
	}
	defer t.mu.RUnlock()
	lo := sort.Search(len(t.sorted), func(i int) bool { return t.sorted[i].term >= key })
	hi := lo + sort.Search(len(t.sorted)-lo, func(i int) bool { return !strings.HasPrefix(t.sorted[lo+i].term, key) })
	if lo == hi {
		return nil
	}
	// Best first over the nodes covering [lo, hi): a popped leaf is the
	// next best term, a popped node gives way to its two children.
	h := nodeHeap{t: t, items: make([]heapItem, 0, 64)}
	for l, r := lo+t.leaves, hi+t.leaves; l < r; l, r = l/2, r/2 {
		if l&1 == 1 {
			h.push(l)
			l++
		}
		if r&1 == 1 {
			r--
			h.push(r)
		}
	}
	out := make([]schemas.RankedTerm, 0, n)
	for len(out) < n && len(h.items) > 0 {
		it := h.pop()
		if it.node >= t.leaves {
			if it.count <= 0 {
				break // the rest carry nothing either
			}
			out = append(out, schemas.RankedTerm{Term: t.sorted[it.best].term, Count: int(it.count)})
			continue
		}
		h.push(2 * it.node)
		h.push(2*it.node + 1)
	}
	return out
}

// nodeHeap is a binary heap of tree nodes, the one whose best entry is
// best on top; items carry that entry's count and position, so ordering
// them reads no entry.
type nodeHeap struct {
	t     *suggestTable
	items []heapItem
}

type heapItem struct {
	node  int
	best  int32
	count int32
}

func (a heapItem) before(b heapItem) bool {
	if a.count != b.count {
		return a.count > b.count
	}
	return a.best < b.best
}

func (h *nodeHeap) push(node int) {
	best := h.t.node(node)
	if best < 0 {
		return
	}
	h.items = append(h.items, heapItem{node: node, best: best, count: h.t.sorted[best].count})
	for c := len(h.items) - 1; c > 0; {
		p := (c - 1) / 2
		if !h.items[c].before(h.items[p]) {
			break
		}
		h.items[c], h.items[p] = h.items[p], h.items[c]
		c = p
	}
}

func (h *nodeHeap) pop() heapItem {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for p := 0; ; {
		best, l, r := p, 2*p+1, 2*p+2
		if l < last && h.items[l].before(h.items[best]) {
			best = l
		}
		if r < last && h.items[r].before(h.items[best]) {
			best = r
		}
		if best == p {
			return top
		}
		h.items[p], h.items[best] = h.items[best], h.items[p]
		p = best
	}
}

// countIndexed adds the live count of every suggestion term of snapshot r,
// the state before the first change Apply counts itself: the sum of the
// two is the index's. It reads the term dictionary, not the documents.
func (t *suggestTable) countIndexed(ctx context.Context, r index.IndexReader) error {
	dict, err := r.FieldDict(fieldSuggest)
	if err != nil {
		return err
	}
	defer dict.Close()
	chunk := make(map[string]int32, 1024)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		de, err := dict.Next()
		if err != nil {
			return err
		}
		if de == nil {
			break
		}
		// Dictionary counts include deleted documents; a term reader's do not.
		tfr, err := r.TermFieldReader(ctx, []byte(de.Term), fieldSuggest, false, false, false)
		if err != nil {
			return err
		}
		n := tfr.Count()
		if err := tfr.Close(); err != nil {
			return err
		}
		if n > 0 {
			chunk[de.Term] = int32(n)
		}
		if len(chunk) == 1024 {
			t.add(chunk)
			clear(chunk)
		}
	}
	t.add(chunk)
	return nil
}

// finish marks the indexed terms counted, or failed to be.
func (t *suggestTable) finish(err error) {
	t.mu.Lock()
	t.err, t.counted = err, err == nil
	if err == nil {
		t.pending = max(t.pending, 1) // the next Suggest drops what nothing carries
	}
	t.mu.Unlock()
	close(t.ready)
}

// startSuggestions counts the suggestion terms already indexed, in the
// background; changes applied from now on are counted by Apply.
func (ix *Index) startSuggestions(ctx context.Context) error {
	adv, err := ix.bleve.Advanced()
	if err != nil {
		return err
	}
	ix.mu.Lock()
	for ix.writes > 0 {
		ix.settled.Wait()
	}
	r, err := adv.Reader()
	if err == nil {
		ix.countingSuggestions = true
	}
	ix.mu.Unlock()
	if err != nil {
		return err
	}
	ix.suggestCounted = make(chan struct{})
	go func() {
		defer close(ix.suggestCounted)
		err := ix.suggest.countIndexed(ctx, r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("embedsearch: count suggestions: %w", err)
		}
		ix.suggest.finish(err)
	}()
	return nil
}

// suggestDeltas are the count changes of writing docs over the products
// old holds the suggestion terms of.
func suggestDeltas(written []string, old, fresh map[string][]string) map[string]int32 {
	d := make(map[string]int32, 16*len(written))
	for _, id := range written {
		for _, t := range old[id] {
			d[t]--
		}
		for _, t := range fresh[id] {
			d[t]++
		}
	}
	return d
}
