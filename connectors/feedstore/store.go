// Package feedstore is the embedded schemas.FeedStore: feeds, timelines,
// the follow graph and reader activity held in the process, rebuilt from
// the JetStream log at start. connectors/redisfeed is the shared one; both
// answer alike under the connectors/feedstoretest contract.
//
// State is split into shards by a hash of the reader, author or user it
// belongs to, each shard behind its own lock, so a fan-out to thousands of
// readers never holds one lock that every feed read waits for.
//
// Entries and edges are ordered by id, then by their other fields: for
// ids of one length (ULIDs) the byte order of their compact forms, which
// is the Redis backend's order, so both page alike. A feed or timeline is
// a slice sorted oldest first; one entry fanned out to many feeds is a
// single shared allocation. Follow edges sit in a map for lookups and in a
// B-tree (github.com/google/btree) keyed "<edge id>|<party>", so paging
// millions of followers visits only the page.
package feedstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"

	"feedline/schemas"
)

// DefaultShards is how many shards New makes unless told otherwise.
const DefaultShards = 64

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("feedstore: closed")

// Option configures New.
type Option func(*config)

type config struct {
	shards int
	now    func() time.Time
}

// WithShards sets the number of shards (default DefaultShards).
func WithShards(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.shards = n
		}
	}
}

// WithClock sets the clock Claim measures its ttl by (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// Store is the in-process FeedStore. It is safe for concurrent use.
type Store struct {
	seed   maphash.Seed
	shards []*shard
	now    func() time.Time

	celebMu     sync.RWMutex
	celebrities map[string]struct{}
	closed      bool // under celebMu
}

var _ schemas.FeedStore = (*Store)(nil)

// shard holds the state of the keys that hash to it.
type shard struct {
	mu        sync.RWMutex
	closed    bool
	feeds     map[string]*entryList // by reader
	timelines map[string]*entryList // by author
	following map[string]*edgeSet   // by user: the authors they follow
	followers map[string]*edgeSet   // by author: the users who follow it
	lastRead  map[string]int64      // by reader: Unix milliseconds
	claims    map[string]claim
	swept     int // len(claims) after the last sweep of expired claims
	free      *btree.FreeListG[*edgeItem]
}

type claim struct {
	value   string
	expires time.Time
}

// New returns an empty store.
func New(opts ...Option) *Store {
	c := config{shards: DefaultShards, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	s := &Store{
		seed:        maphash.MakeSeed(),
		shards:      make([]*shard, c.shards),
		now:         c.now,
		celebrities: map[string]struct{}{},
	}
	for i := range s.shards {
		s.shards[i] = &shard{
			feeds:     map[string]*entryList{},
			timelines: map[string]*entryList{},
			following: map[string]*edgeSet{},
			followers: map[string]*edgeSet{},
			lastRead:  map[string]int64{},
			claims:    map[string]claim{},
			free:      btree.NewFreeListG[*edgeItem](btree.DefaultFreeListSize),
		}
	}
	return s
}

// Close drops all state; later calls return ErrClosed.
func (s *Store) Close() error {
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.closed = true
		sh.feeds, sh.timelines, sh.following, sh.followers = nil, nil, nil, nil
		sh.lastRead, sh.claims = nil, nil
		sh.mu.Unlock()
	}
	s.celebMu.Lock()
	s.closed = true
	s.celebrities = nil
	s.celebMu.Unlock()
	return nil
}

func (s *Store) shardIndex(key string) int {
	return int(maphash.String(s.seed, key) % uint64(len(s.shards)))
}

func (s *Store) shardOf(key string) *shard { return s.shards[s.shardIndex(key)] }

// rlock and lock take the shard's lock, or fail after Close.
func (sh *shard) rlock() error {
	sh.mu.RLock()
	if sh.closed {
		sh.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (sh *shard) lock() error {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func checkEntry(e schemas.FeedEntry) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("feedstore: %w", err)
	}
	return nil
}

func checkMax(max int) error {
	if err := schemas.ValidateFeedMax(max); err != nil {
		return fmt.Errorf("feedstore: %w", err)
	}
	return nil
}

// AddToFeeds puts e into each reader's feed, one shard lock at a time.
func (s *Store) AddToFeeds(ctx context.Context, readers []string, e schemas.FeedEntry, max int) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if err := checkMax(max); err != nil {
		return err
	}
	shared, err := s.timelineEntry(&e)
	if err != nil {
		return err
	}
	return s.eachShard(ctx, readers, func(sh *shard, readers []string) {
		for _, r := range readers {
			l := sh.feeds[r]
			if l == nil {
				l = &entryList{}
				sh.feeds[r] = l
			}
			l.add(shared, max)
		}
	})
}

// RemoveFromFeeds takes e out of each reader's feed.
func (s *Store) RemoveFromFeeds(ctx context.Context, readers []string, e schemas.FeedEntry) error {
	return s.eachShard(ctx, readers, func(sh *shard, readers []string) {
		for _, r := range readers {
			if l := sh.feeds[r]; l != nil && l.remove(&e) && len(l.items) == 0 {
				delete(sh.feeds, r)
			}
		}
	})
}

// eachShard groups keys by shard and calls fn once per shard that has
// any, under that shard's write lock.
func (s *Store) eachShard(ctx context.Context, keys []string, fn func(*shard, []string)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	// A counting sort by shard: one allocation for any number of keys.
	idx := make([]int32, len(keys))
	starts := make([]int, len(s.shards)+1)
	for i, k := range keys {
		idx[i] = int32(s.shardIndex(k))
		starts[idx[i]+1]++
	}
	for i := 1; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	sorted := make([]string, len(keys))
	next := slices.Clone(starts[:len(s.shards)])
	for i, k := range keys {
		sorted[next[idx[i]]] = k
		next[idx[i]]++
	}
	for i, sh := range s.shards {
		group := sorted[starts[i]:starts[i+1]]
		if len(group) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sh.lock(); err != nil {
			return err
		}
		fn(sh, group)
		sh.mu.Unlock()
	}
	return nil
}

// RemoveAuthorFromFeed takes every entry of author out of reader's feed.
func (s *Store) RemoveAuthorFromFeed(ctx context.Context, reader, author string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shardOf(reader)
	if err := sh.lock(); err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if l := sh.feeds[reader]; l != nil {
		l.removeAuthor(author)
		if len(l.items) == 0 {
			delete(sh.feeds, reader)
		}
	}
	return nil
}

// Feed is up to limit entries of reader's feed below before, newest first.
func (s *Store) Feed(ctx context.Context, reader, before string, limit int) ([]schemas.FeedEntry, error) {
	return s.read(ctx, reader, before, limit, func(sh *shard) *entryList { return sh.feeds[reader] })
}

func (s *Store) read(ctx context.Context, key, before string, limit int, list func(*shard) *entryList) ([]schemas.FeedEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := s.shardOf(key)
	if err := sh.rlock(); err != nil {
		return nil, err
	}
	defer sh.mu.RUnlock()
	return list(sh).page(before, limit), nil
}

// FillFeed adds entries to reader's feed, newest max kept.
func (s *Store) FillFeed(ctx context.Context, reader string, entries []schemas.FeedEntry, max int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMax(max); err != nil {
		return err
	}
	l, err := newEntryList(entries, max)
	if err != nil {
		return err
	}
	if err := s.shareWithTimelines(l.items); err != nil {
		return err
	}
	sh := s.shardOf(reader)
	if err := sh.lock(); err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if cur := sh.feeds[reader]; cur != nil {
		l = cur.union(l, max)
	}
	if len(l.items) > 0 {
		sh.feeds[reader] = l
	}
	return nil
}

// AddToTimeline records e as one of author's own entries, newest max kept.
func (s *Store) AddToTimeline(ctx context.Context, author string, e schemas.FeedEntry, max int) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if err := checkMax(max); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shardOf(author)
	if err := sh.lock(); err != nil {
		return err
	}
	defer sh.mu.Unlock()
	l := sh.timelines[author]
	if l == nil {
		l = &entryList{}
		sh.timelines[author] = l
	}
	l.add(&e, max)
	return nil
}

// RemoveFromTimeline takes e out of author's timeline.
func (s *Store) RemoveFromTimeline(ctx context.Context, author string, e schemas.FeedEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shardOf(author)
	if err := sh.lock(); err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if l := sh.timelines[author]; l != nil && l.remove(&e) && len(l.items) == 0 {
		delete(sh.timelines, author)
	}
	return nil
}

// Timelines reads up to limit entries below before of each author.
func (s *Store) Timelines(ctx context.Context, authors []string, before string, limit int) ([][]schemas.FeedEntry, error) {
	out := make([][]schemas.FeedEntry, len(authors))
	for i, a := range authors {
		page, err := s.read(ctx, a, before, limit, func(sh *shard) *entryList { return sh.timelines[a] })
		if err != nil {
			return nil, err
		}
		out[i] = page
	}
	return out, nil
}

// MarkCelebrity records author as too widely followed to fan out to.
func (s *Store) MarkCelebrity(ctx context.Context, author string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.celebMu.Lock()
	defer s.celebMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.celebrities[author] = struct{}{}
	return nil
}

// Celebrities lists every celebrity author, sorted.
func (s *Store) Celebrities(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.celebMu.RLock()
	defer s.celebMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]string, 0, len(s.celebrities))
	for a := range s.celebrities {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, nil
}

// MarkRead notes that reader read their feed at at; an earlier time than
// the one held changes nothing, so a replayed mark cannot move it back.
// Times are kept to the millisecond, like the Redis backend.
func (s *Store) MarkRead(ctx context.Context, reader string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.IsZero() {
		return nil
	}
	ms := at.UnixMilli()
	sh := s.shardOf(reader)
	if err := sh.lock(); err != nil {
		return err
	}
	defer sh.mu.Unlock()
	if cur, ok := sh.lastRead[reader]; !ok || ms > cur {
		sh.lastRead[reader] = ms
	}
	return nil
}

// LastRead answers each reader's last read time, zero when never.
func (s *Store) LastRead(ctx context.Context, readers []string) ([]time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]time.Time, len(readers))
	for i, r := range readers {
		sh := s.shardOf(r)
		if err := sh.rlock(); err != nil {
			return nil, err
		}
		ms, ok := sh.lastRead[r]
		sh.mu.RUnlock()
		if ok {
			out[i] = time.UnixMilli(ms).UTC()
		}
	}
	return out, nil
}

// Claim stores value under key for ttl unless an unexpired value is held,
// and answers the value that holds.
func (s *Store) Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("feedstore: claim %q: ttl %v must be positive", key, ttl)
	}
	now := s.now()
	sh := s.shardOf(key)
	if err := sh.lock(); err != nil {
		return "", err
	}
	defer sh.mu.Unlock()
	if c, ok := sh.claims[key]; ok && now.Before(c.expires) {
		return c.value, nil
	}
	sh.claims[key] = claim{value: value, expires: now.Add(ttl)}
	// Keys are rarely claimed twice after they expire: sweep whenever the
	// map has doubled since the last sweep, which costs O(1) per claim.
	if len(sh.claims) > 2*max(sh.swept, 64) {
		for k, c := range sh.claims {
			if !now.Before(c.expires) {
				delete(sh.claims, k)
			}
		}
		sh.swept = len(sh.claims)
	}
	return value, nil
}

// checkEdge refuses edges whose paging key "<id>|<other>" would be ambiguous.
func checkEdge(e schemas.FollowEdge) error {
	if e.ID == "" || e.User == "" || e.Author == "" || strings.Contains(e.ID, "|") {
		return fmt.Errorf("feedstore: follow edge %+v: id (without '|'), user and author are required", e)
	}
	return nil
}
