package normalise

import (
	"sort"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"feedline/schemas"
)

// entry is what normalise remembers of one product to detect changes.
type entry struct {
	fp       uint64
	version  uint64
	price    int64
	currency string
	seen     uint64 // sequence of the last upload that listed the product
	at       uint64 // PRODUCTS sequence of the batch holding this version (an update reads it there) or its deletion
	deleted  bool
}

// tombstone is what is kept of a deleted product: only its version and
// where its deletion is stored, so a catalog rebuilt from a compacted log,
// which may no longer hold the versions before, is the same.
func tombstone(version, at uint64) entry {
	return entry{version: version, at: at, deleted: true}
}

// catalog is the normalise stage's derived state: the fold of the product
// log. It is rebuilt by replaying PRODUCTS at start, so whatever was
// published before a crash is known after it.
//
// Ids arrive as substrings of a decoded message, and storing a map key
// (even over an existing one) keeps the string given: every write clones
// it, or the catalog would keep every batch it ever read in memory.
type catalog struct {
	mu       sync.RWMutex
	partners map[string]map[string]entry
	currency map[string]string // interned currency codes
}

func newCatalog() *catalog {
	return &catalog{partners: map[string]map[string]entry{}, currency: map[string]string{}}
}

func (c *catalog) get(partner, id string) (entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.partners[partner][id]
	return e, ok
}

// apply folds one product batch, stored at PRODUCTS sequence at, into the state.
// Copies of one version (two workers compacting at once each write one)
// place the product at the latest copy whatever order they are folded in,
// so every worker keeps the same copy and a compaction removes the others.
func (c *catalog) apply(b *schemas.ProductBatch, at uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.partners[b.Partner]
	if ps == nil {
		ps = map[string]entry{}
		c.partners[strings.Clone(b.Partner)] = ps
	}
	for i := range b.Changes {
		ch := &b.Changes[i]
		e, ok := ps[ch.ID]
		if ok && e.version > ch.Version {
			continue
		}
		switch ch.Kind {
		case schemas.ChangeUpsert:
			p := ch.Product
			// A compacted copy of the same version, published later, keeps
			// what later uploads said of the product's listing.
			seen, where := b.Seq, at
			if ok && !e.deleted && e.version == ch.Version {
				seen, where = max(seen, e.seen), max(where, e.at)
			}
			ps[strings.Clone(ch.ID)] = entry{fp: p.Fingerprint(), version: ch.Version, price: p.EffectivePrice(), currency: c.intern(p.Currency), seen: seen, at: where}
		case schemas.ChangeDelete:
			where := at
			if ok && e.deleted && e.version == ch.Version {
				where = max(where, e.at)
			}
			ps[strings.Clone(ch.ID)] = tombstone(ch.Version, where)
		}
	}
	for _, id := range b.Seen {
		if e, ok := ps[id]; ok && !e.deleted && e.seen < b.Seq {
			e.seen = b.Seq
			ps[strings.Clone(id)] = e
		}
	}
}

// commit stores what one normalised batch changed, once it is published at
// PRODUCTS sequence at.
func (c *catalog) commit(partner string, seq uint64, changed map[string]entry, seen []string, at uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.partners[partner]
	if ps == nil {
		ps = map[string]entry{}
		c.partners[strings.Clone(partner)] = ps
	}
	for id, e := range changed {
		if old, ok := ps[id]; ok && old.version > e.version {
			continue
		}
		where := at
		if old, ok := ps[id]; ok && old.version == e.version && old.deleted == e.deleted {
			where = max(where, old.at)
		}
		if e.deleted {
			e = tombstone(e.version, where)
		} else {
			e.currency = c.intern(e.currency)
			e.at = where
		}
		ps[strings.Clone(id)] = e
	}
	for _, id := range seen {
		if e, ok := ps[id]; ok && !e.deleted && e.seen < seq {
			e.seen = seq
			ps[strings.Clone(id)] = e
		}
	}
}

// internBytes is intern of a code read into a reused buffer: a code held
// already costs no allocation.
func (c *catalog) internBytes(cur []byte) string {
	if v, ok := c.currency[string(cur)]; ok {
		return v
	}
	return c.intern(string(cur))
}

func (c *catalog) intern(cur string) string {
	if v, ok := c.currency[cur]; ok {
		return v
	}
	cur = strings.Clone(cur)
	c.currency[cur] = cur
	return cur
}

// absent lists, sorted, the partner's products a full upload with sequence
// seq did not list. Products this upload already deleted are included, so
// the list is the same when the closing step runs again after a crash.
func (c *catalog) absent(partner string, seq uint64) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for id, e := range c.partners[partner] {
		switch {
		case !e.deleted && e.seen < seq:
			out = append(out, id)
		case e.deleted && e.version>>32 == seq:
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// live counts the partner's live products.
func (c *catalog) live(partner string) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var n int64
	for _, e := range c.partners[partner] {
		if !e.deleted {
			n++
		}
	}
	return n
}

// wouldDelete counts the partner's live products that a full upload with
// sequence seq, listing the ids whose hashes are in listed, would delete,
// and the live products there are.
func (c *catalog) wouldDelete(partner string, seq uint64, listed map[uint64]struct{}) (would, live int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, e := range c.partners[partner] {
		if e.deleted {
			continue
		}
		live++
		if _, ok := listed[xxhash.Sum64String(id)]; !ok && e.seen < seq {
			would++
		}
	}
	return would, live
}

// size counts live products, for logs.
func (c *catalog) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, ps := range c.partners {
		for _, e := range ps {
			if !e.deleted {
				n++
			}
		}
	}
	return n
}
