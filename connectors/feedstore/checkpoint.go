package feedstore

import (
	"errors"
	"maps"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

// CheckpointVersion is the encoding Snapshot writes and Restore reads.
// Version 2 keeps a price drop's prices, which version 1 dropped.
const CheckpointVersion = 2

// maxCount bounds the counts a checkpoint may claim.
const maxCount = 1 << 30

// Snapshot is the store's state copied for a checkpoint.
type Snapshot struct {
	celebrities []string
	shards      []shardCopy
}

type shardCopy struct {
	feeds     map[string][]*schemas.FeedEntry
	timelines map[string][]*schemas.FeedEntry
	following map[string][]schemas.FollowEdge // by user; the followers side is the same edges
	lastRead  map[string]int64
	claims    map[string]claim
}

// Snapshot copies the store one shard at a time, each under its own read
// lock, so writers wait for one shard's copy at most. Entries are shared,
// never changed in place, so a copy holds pointers to them. Shards are not
// copied at one instant: what was written during the copy may be in some
// shards and not others, which the log replayed after the checkpoint's
// sequences writes again (every write is idempotent). The follow graph is
// kept from the users' side only and both sides are rebuilt from it, so a
// follow half copied cannot leave the sides disagreeing.
func (s *Store) Snapshot() (*Snapshot, error) {
	sn := &Snapshot{shards: make([]shardCopy, len(s.shards))}
	s.celebMu.RLock()
	if s.closed {
		s.celebMu.RUnlock()
		return nil, ErrClosed
	}
	for a := range s.celebrities {
		sn.celebrities = append(sn.celebrities, a)
	}
	s.celebMu.RUnlock()
	for i, sh := range s.shards {
		if err := sh.rlock(); err != nil {
			return nil, err
		}
		c := shardCopy{
			feeds:     make(map[string][]*schemas.FeedEntry, len(sh.feeds)),
			timelines: make(map[string][]*schemas.FeedEntry, len(sh.timelines)),
			following: make(map[string][]schemas.FollowEdge, len(sh.following)),
			lastRead:  maps.Clone(sh.lastRead),
			claims:    maps.Clone(sh.claims),
		}
		for r, l := range sh.feeds {
			c.feeds[r] = append([]*schemas.FeedEntry(nil), l.items...)
		}
		for a, l := range sh.timelines {
			c.timelines[a] = append([]*schemas.FeedEntry(nil), l.items...)
		}
		for u, set := range sh.following {
			edges := make([]schemas.FollowEdge, 0, len(set.byOther))
			for _, it := range set.byOther {
				edges = append(edges, it.edge)
			}
			c.following[u] = edges
		}
		sh.mu.RUnlock()
		sn.shards[i] = c
	}
	return sn, nil
}

// Encode writes the copy: every distinct entry once, then each feed and
// timeline as the numbers of its entries, so an entry fanned out to many
// feeds costs one number in each.
func (sn *Snapshot) Encode(w *pipeline.CheckpointWriter) error {
	w.Uvarint(uint64(len(sn.celebrities)))
	for _, a := range sn.celebrities {
		w.String(a)
	}
	ids := map[*schemas.FeedEntry]uint64{}
	var table []*schemas.FeedEntry
	for _, c := range sn.shards {
		for _, lists := range []map[string][]*schemas.FeedEntry{c.feeds, c.timelines} {
			for _, l := range lists {
				for _, e := range l {
					if _, ok := ids[e]; !ok {
						ids[e] = uint64(len(table))
						table = append(table, e)
					}
				}
			}
		}
	}
	w.Uvarint(uint64(len(table)))
	for _, e := range table {
		w.String(e.ID)
		w.String(e.Kind)
		w.String(e.Author)
		w.String(e.Ref)
		w.Varint(e.PriceOld)
		w.Varint(e.PriceNew)
	}
	lists := func(m func(*shardCopy) map[string][]*schemas.FeedEntry) {
		n := 0
		for i := range sn.shards {
			n += len(m(&sn.shards[i]))
		}
		w.Uvarint(uint64(n))
		for i := range sn.shards {
			for key, l := range m(&sn.shards[i]) {
				w.String(key)
				w.Uvarint(uint64(len(l)))
				for _, e := range l {
					w.Uvarint(ids[e])
				}
			}
		}
	}
	lists(func(c *shardCopy) map[string][]*schemas.FeedEntry { return c.feeds })
	lists(func(c *shardCopy) map[string][]*schemas.FeedEntry { return c.timelines })
	n := 0
	for i := range sn.shards {
		n += len(sn.shards[i].following)
	}
	w.Uvarint(uint64(n))
	for i := range sn.shards {
		for u, edges := range sn.shards[i].following {
			w.String(u)
			w.Uvarint(uint64(len(edges)))
			for _, e := range edges {
				w.String(e.ID)
				w.String(e.Author)
			}
		}
	}
	n = 0
	for i := range sn.shards {
		n += len(sn.shards[i].lastRead)
	}
	w.Uvarint(uint64(n))
	for i := range sn.shards {
		for r, ms := range sn.shards[i].lastRead {
			w.String(r)
			w.Varint(ms)
		}
	}
	n = 0
	for i := range sn.shards {
		n += len(sn.shards[i].claims)
	}
	w.Uvarint(uint64(n))
	for i := range sn.shards {
		for k, c := range sn.shards[i].claims {
			w.String(k)
			w.String(c.value)
			w.Varint(c.expires.UnixMilli())
		}
	}
	return w.Err()
}

var errRestoreUsed = errors.New("feedstore: restore into a store that holds state")

// Restore fills an empty store, not yet in use, with what Encode wrote.
// On an error the store is left empty.
func (s *Store) Restore(r *pipeline.CheckpointReader) error {
	for _, sh := range s.shards {
		if len(sh.feeds)+len(sh.timelines)+len(sh.following)+len(sh.lastRead)+len(sh.claims) > 0 {
			return errRestoreUsed
		}
	}
	fresh := New(WithShards(len(s.shards)), WithClock(s.now))
	fresh.seed = s.seed
	if err := fresh.restore(r); err != nil {
		return err
	}
	fresh.shareRestored()
	s.shards, s.celebrities = fresh.shards, fresh.celebrities
	return nil
}

func (s *Store) restore(r *pipeline.CheckpointReader) error {
	for range r.Count(maxCount) {
		s.celebrities[r.String()] = struct{}{}
	}
	table := make([]*schemas.FeedEntry, r.Count(maxCount))
	for i := range table {
		table[i] = &schemas.FeedEntry{ID: r.String(), Kind: r.String(), Author: r.String(), Ref: r.String(), PriceOld: r.Varint(), PriceNew: r.Varint()}
	}
	if r.Err() != nil {
		return r.Err()
	}
	lists := func(m func(*shard) map[string]*entryList) error {
		for range r.Count(maxCount) {
			key := r.String()
			n := r.Count(maxCount)
			l := &entryList{items: make([]*schemas.FeedEntry, 0, n)}
			for range n {
				i := r.Uvarint()
				if i >= uint64(len(table)) {
					if r.Err() != nil {
						return r.Err()
					}
					return pipeline.ErrCheckpointCorrupt
				}
				l.items = append(l.items, table[i])
			}
			if r.Err() != nil {
				return r.Err()
			}
			m(s.shardOf(key))[key] = l
		}
		return r.Err()
	}
	if err := lists(func(sh *shard) map[string]*entryList { return sh.feeds }); err != nil {
		return err
	}
	if err := lists(func(sh *shard) map[string]*entryList { return sh.timelines }); err != nil {
		return err
	}
	for range r.Count(maxCount) {
		user := r.String()
		for range r.Count(maxCount) {
			e := schemas.FollowEdge{ID: r.String(), User: user, Author: r.String()}
			if r.Err() != nil {
				return r.Err()
			}
			us, as := s.shardOf(user), s.shardOf(e.Author)
			following := us.following[user]
			if following == nil {
				following = newEdgeSet(us.free)
				us.following[user] = following
			}
			followers := as.followers[e.Author]
			if followers == nil {
				followers = newEdgeSet(as.free)
				as.followers[e.Author] = followers
			}
			following.put(e.Author, e)
			followers.put(user, e)
		}
	}
	for range r.Count(maxCount) {
		reader := r.String()
		s.shardOf(reader).lastRead[reader] = r.Varint()
	}
	now := s.now()
	for range r.Count(maxCount) {
		key, value, expires := r.String(), r.String(), time.UnixMilli(r.Varint())
		if now.Before(expires) {
			s.shardOf(key).claims[key] = claim{value: value, expires: expires}
		}
	}
	return r.Err()
}
