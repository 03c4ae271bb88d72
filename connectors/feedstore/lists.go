package feedstore

import (
	"cmp"
	"slices"
	"sort"
	"strings"

	"github.com/google/btree"

	"feedline/schemas"
)

// compareEntries orders entries by id, then by the other fields: the
// order of their compact forms for ids of one length, such as ULIDs.
func compareEntries(a, b *schemas.FeedEntry) int {
	return cmp.Or(
		strings.Compare(a.ID, b.ID),
		strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Author, b.Author),
		strings.Compare(a.Ref, b.Ref),
	)
}

// entryList is a feed or timeline: entries sorted oldest first, so the
// usual write (a new entry) appends and trimming drops from the front. An
// entry fanned out to many readers is one allocation their feeds share.
type entryList struct {
	items []*schemas.FeedEntry
}

func (l *entryList) search(e *schemas.FeedEntry) (int, bool) {
	return slices.BinarySearchFunc(l.items, e, compareEntries)
}

// add inserts e unless present, then keeps the newest max entries.
func (l *entryList) add(e *schemas.FeedEntry, max int) {
	n := len(l.items)
	switch {
	case n == 0 || compareEntries(l.items[n-1], e) < 0:
		// The newest entry: the common case, without a search.
		l.items = append(l.items, e)
	default:
		i, found := l.search(e)
		// An entry older than a full list's oldest would be trimmed at once.
		if !found && (i > 0 || n < max) {
			l.items = slices.Insert(l.items, i, e)
		}
	}
	l.trim(max)
}

// trim drops the oldest entries beyond max. Slicing from the front leaves
// spare room only until the next append reallocates, which copies just
// the live entries.
func (l *entryList) trim(max int) {
	over := len(l.items) - max
	if over <= 0 {
		return
	}
	clear(l.items[:over])
	l.items = l.items[over:]
}

// remove deletes e and reports whether it was there.
func (l *entryList) remove(e *schemas.FeedEntry) bool {
	i, found := l.search(e)
	if found {
		l.items = slices.Delete(l.items, i, i+1)
	}
	return found
}

func (l *entryList) removeAuthor(author string) {
	l.items = slices.DeleteFunc(l.items, func(e *schemas.FeedEntry) bool { return e.Author == author })
}

// page answers up to limit entries with ids below before ("" for the
// newest), newest first. A nil list is empty.
func (l *entryList) page(before string, limit int) []schemas.FeedEntry {
	if l == nil || limit <= 0 {
		return []schemas.FeedEntry{}
	}
	end := len(l.items)
	if before != "" {
		end = sort.Search(end, func(i int) bool { return l.items[i].ID >= before })
	}
	n := min(limit, end)
	out := make([]schemas.FeedEntry, n)
	for i := range out {
		out[i] = *l.items[end-1-i]
	}
	return out
}

// newEntryList builds a list from entries in any order, duplicates
// collapsed and the newest max kept.
func newEntryList(entries []schemas.FeedEntry, max int) (*entryList, error) {
	items := make([]*schemas.FeedEntry, len(entries))
	for i := range entries {
		if err := checkEntry(entries[i]); err != nil {
			return nil, err
		}
		e := entries[i]
		items[i] = &e
	}
	slices.SortFunc(items, compareEntries)
	items = slices.CompactFunc(items, func(a, b *schemas.FeedEntry) bool { return *a == *b })
	l := &entryList{items: items}
	l.trim(max)
	l.items = slices.Clip(l.items)
	return l, nil
}

// union answers a list of the entries of l and o, newest max kept.
func (l *entryList) union(o *entryList, max int) *entryList {
	a, b := l.items, o.items
	out := make([]*schemas.FeedEntry, 0, min(max, len(a)+len(b)))
	// Merge from the newest end, so only the kept entries are visited.
	for len(out) < max && (len(a) > 0 || len(b) > 0) {
		var next *schemas.FeedEntry
		switch {
		case len(b) == 0:
			next, a = a[len(a)-1], a[:len(a)-1]
		case len(a) == 0:
			next, b = b[len(b)-1], b[:len(b)-1]
		default:
			c := compareEntries(a[len(a)-1], b[len(b)-1])
			if c >= 0 {
				next, a = a[len(a)-1], a[:len(a)-1]
			}
			if c <= 0 {
				next, b = b[len(b)-1], b[:len(b)-1]
			}
		}
		out = append(out, next)
	}
	slices.Reverse(out)
	return &entryList{items: out}
}

// edgeItem is one follow edge seen from one side; key is "<id>|<other>",
// other being the author on the user's side and the user on the author's.
type edgeItem struct {
	key  string
	edge schemas.FollowEdge
}

func lessEdge(a, b *edgeItem) bool { return a.key < b.key }

// edgeSet is one side of the follow graph for one user or author: the
// edges by the other party, and ordered by key for paging.
type edgeSet struct {
	byOther map[string]*edgeItem
	byKey   *btree.BTreeG[*edgeItem]
}

// btreeDegree keeps nodes small: most sets hold a handful of edges.
const btreeDegree = 16

func newEdgeSet(free *btree.FreeListG[*edgeItem]) *edgeSet {
	return &edgeSet{
		byOther: map[string]*edgeItem{},
		byKey:   btree.NewWithFreeListG(btreeDegree, lessEdge, free),
	}
}

func (s *edgeSet) count() int {
	if s == nil {
		return 0
	}
	return len(s.byOther)
}

// put records e under other, replacing what other had.
func (s *edgeSet) put(other string, e schemas.FollowEdge) {
	if old, ok := s.byOther[other]; ok {
		s.byKey.Delete(old)
	}
	it := &edgeItem{key: e.ID + "|" + other, edge: e}
	s.byOther[other] = it
	s.byKey.ReplaceOrInsert(it)
}

func (s *edgeSet) remove(other string) bool {
	it, ok := s.byOther[other]
	if ok {
		delete(s.byOther, other)
		s.byKey.Delete(it)
	}
	return ok
}

// page answers up to limit edges with keys below before, newest first; it
// visits only the edges it answers.
func (s *edgeSet) page(before string, limit int) []schemas.FollowEdge {
	if s == nil || limit <= 0 {
		return []schemas.FollowEdge{}
	}
	out := make([]schemas.FollowEdge, 0, min(limit, len(s.byOther)))
	collect := func(it *edgeItem) bool {
		if it.key == before {
			return true // before is exclusive
		}
		out = append(out, it.edge)
		return len(out) < limit
	}
	if before == "" {
		s.byKey.Descend(collect)
	} else {
		s.byKey.DescendLessOrEqual(&edgeItem{key: before}, collect)
	}
	return out
}
