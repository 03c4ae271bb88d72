// Package fanout turns shopper writes and catalog news into feed entries:
// fan-out on write to each follower's feed, except for authors with very
// large audiences, whose entries are merged in at read time.
package fanout

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/oklog/ulid/v2"

	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Stage applies social events and catalog news to the feed store.
type Stage struct {
	Store schemas.FeedStore
	Posts schemas.PostStore
	// Reads is where Replay finds who was active; nil replays with the
	// activity the store holds.
	Reads  schemas.ReadLog
	Policy feed.Policy
	Now    func() time.Time
	Log    *slog.Logger

	activeOnce sync.Once
	active     *expirable.LRU[string, time.Time]
}

// Readers known to be active are remembered for a while: a reader active
// now stays active for days, so the verdict cannot go wrong in minutes,
// and every post would otherwise read each follower's last read again.
// Inactive readers are always asked, so a first read counts at once.
const (
	activeCacheSize = 1 << 20
	activeCacheTTL  = 10 * time.Minute
)

// Configs are the stage's consumers: shopper writes, and catalog changes
// for shop news.
func (s *Stage) Configs() []pipeline.Stage {
	// Subjects end in the acting user (social) or the partner (catalog):
	// each one's events stay in order, different ones fan out at once, so
	// store round trips overlap.
	bySubject := func(m *pipeline.Message) string { return m.Subject }
	// A store that can say it serves again (Redis) is asked before a stage
	// paused by its outage fetches again.
	var gate func(context.Context) error
	if h, ok := s.Store.(schemas.HealthChecker); ok {
		gate = h.Healthy
	}
	return []pipeline.Stage{
		// Batches gather for the default 20 ms: only a batch's different
		// users run at once, and on Redis that parallelism, not the wait,
		// decides whether fan-out keeps up (a 2 ms wait fell behind at 500
		// posts/s; see BENCHMARKS.md).
		{Name: ConsumerSocial, Stream: topology.StreamSocial, Handle: pipeline.ConcurrentByKey(s.HandleSocial, 16, bySubject), BatchSize: 256, Gate: gate},
		{Name: ConsumerCatalog, Stream: topology.StreamProducts, Handle: pipeline.ConcurrentByKey(s.HandleCatalog, 4, bySubject), BatchSize: 16, Gate: gate},
	}
}

func (s *Stage) policy() feed.Policy { return s.Policy.WithDefaults() }

func (s *Stage) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// HandleSocial applies one shopper write. Every step is idempotent, so a
// redelivery after a crash mid-way finishes the job without duplicates.
func (s *Stage) HandleSocial(ctx context.Context, m *pipeline.Message) error {
	var ev schemas.SocialEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return pipeline.Terminal(fmt.Errorf("social event is not JSON: %w", err))
	}
	switch ev.Kind {
	case schemas.SocialPost:
		if ev.Post == nil || ev.Post.ID == "" {
			return pipeline.Terminal(fmt.Errorf("post event %s carries no post", ev.ID))
		}
		return s.post(ctx, *ev.Post)
	case schemas.SocialPostDelete:
		return s.deletePost(ctx, ev)
	case schemas.SocialFollow:
		return s.follow(ctx, ev)
	case schemas.SocialUnfollow:
		return s.unfollow(ctx, ev)
	default:
		return pipeline.Terminal(fmt.Errorf("unknown social event kind %q", ev.Kind))
	}
}

// PostEntry is the feed entry of a post: its id is the post's id.
func PostEntry(p schemas.Post) schemas.FeedEntry {
	return schemas.FeedEntry{ID: p.ID, Kind: schemas.FeedKindPost, Author: schemas.Author(schemas.FolloweeUser, p.Author), Ref: p.ID}
}

// post fans a post out; the API stored its content before publishing.
// Authors see their own posts in their feed.
func (s *Stage) post(ctx context.Context, p schemas.Post) error {
	return s.publish(ctx, PostEntry(p), p.Author)
}

// publish records e on its author's timeline and pushes it to the active
// followers' feeds (and to self, the author as a reader, when set), unless
// the audience is too large to fan out to. It costs four round trips to
// the store for an audience of one chunk.
func (s *Stage) publish(ctx context.Context, e schemas.FeedEntry, self string) error {
	pol := s.policy()
	if err := s.Store.AddToTimeline(ctx, e.Author, e, pol.TimelineCap); err != nil {
		return err
	}
	first, err := s.Store.Followers(ctx, e.Author, "", pol.Chunk)
	if err != nil {
		return err
	}
	// A first page shorter than a chunk is the whole audience.
	followers := len(first)
	if followers == pol.Chunk && followers <= pol.CelebrityFollowers {
		if _, followers, err = s.Store.FollowCounts(ctx, "", e.Author); err != nil {
			return err
		}
	}
	if followers > pol.CelebrityFollowers {
		return s.Store.MarkCelebrity(ctx, e.Author)
	}
	since := s.now().Add(-pol.InactiveAfter)
	write := func(readers []string) error {
		active, err := s.activeReaders(ctx, readers, since)
		if err != nil || len(active) == 0 {
			return err
		}
		if err := s.Store.AddToFeeds(ctx, active, e, pol.FeedCap); err != nil {
			return err
		}
		pipeline.CountItems(ctx, "delivered", int64(len(active)))
		return nil
	}
	readers := readersOf(first)
	if self != "" {
		readers = append(readers, self)
	}
	if err := write(readers); err != nil {
		return err
	}
	if len(first) < pol.Chunk {
		return nil
	}
	return s.eachFollowerChunk(ctx, e.Author, first[len(first)-1].ID, write)
}

// activeReaders keeps the readers who read their feed after since.
func (s *Stage) activeReaders(ctx context.Context, readers []string, since time.Time) ([]string, error) {
	s.activeOnce.Do(func() { s.active = expirable.NewLRU[string, time.Time](activeCacheSize, nil, activeCacheTTL) })
	active := make([]string, 0, len(readers))
	var ask []string
	for _, r := range readers {
		if last, ok := s.active.Get(r); ok && last.After(since) {
			active = append(active, r)
		} else {
			ask = append(ask, r)
		}
	}
	if len(ask) == 0 {
		return active, nil
	}
	last, err := s.Store.LastRead(ctx, ask)
	if err != nil {
		return nil, err
	}
	for i, r := range ask {
		if !last[i].IsZero() && last[i].After(since) {
			active = append(active, r)
			s.active.Add(r, last[i])
		}
	}
	return active, nil
}

func readersOf(edges []schemas.FollowEdge) []string {
	readers := make([]string, len(edges))
	for i, e := range edges {
		readers[i] = e.User
	}
	return readers
}

// celebrity reports (and records) whether author's audience is above the
// fan-out threshold.
func (s *Stage) celebrity(ctx context.Context, author string) (bool, error) {
	_, followers, err := s.Store.FollowCounts(ctx, "", author)
	if err != nil {
		return false, err
	}
	if followers <= s.policy().CelebrityFollowers {
		return false, nil
	}
	return true, s.Store.MarkCelebrity(ctx, author)
}

// eachFollowerChunk pages author's followers older than the edge before
// ("" for all), newest first, in chunks.
func (s *Stage) eachFollowerChunk(ctx context.Context, author, before string, fn func([]string) error) error {
	chunk := s.policy().Chunk
	for {
		edges, err := s.Store.Followers(ctx, author, before, chunk)
		if err != nil {
			return err
		}
		if len(edges) == 0 {
			return nil
		}
		if err := fn(readersOf(edges)); err != nil {
			return err
		}
		if len(edges) < chunk {
			return nil
		}
		before = edges[len(edges)-1].ID
	}
}

func (s *Stage) deletePost(ctx context.Context, ev schemas.SocialEvent) error {
	p := schemas.Post{ID: ev.PostID, Author: ev.User}
	e := PostEntry(p)
	if err := s.Store.RemoveFromTimeline(ctx, e.Author, e); err != nil {
		return err
	}
	if err := s.Store.RemoveFromFeeds(ctx, []string{ev.User}, e); err != nil {
		return err
	}
	// Every follower, active or not: a removal is cheap and must reach
	// every feed the post may be in.
	if err := s.eachFollowerChunk(ctx, e.Author, "", func(readers []string) error {
		return s.Store.RemoveFromFeeds(ctx, readers, e)
	}); err != nil {
		return err
	}
	// Only a stored post is deleted, so a replay writes nothing new.
	stored, err := s.Posts.Get(ctx, []string{ev.PostID})
	if err != nil || len(stored) == 0 {
		return err
	}
	return s.Posts.Delete(ctx, ev.PostID)
}

func (s *Stage) follow(ctx context.Context, ev schemas.SocialEvent) error {
	pol := s.policy()
	added, following, err := s.Store.Follow(ctx, schemas.FollowEdge{ID: ev.ID, User: ev.User, Author: ev.Target})
	if err != nil {
		return err
	}
	if following > schemas.MaxFollowees {
		// The API refuses the 5,001st followee; two racing requests could
		// still get past it, so the limit is kept here too.
		if added {
			s.Log.Warn("follow over the limit undone", "user", ev.User, "author", ev.Target, "following", following)
			_, err := s.Store.Unfollow(ctx, ev.User, ev.Target)
			return err
		}
		return nil
	}
	celebrity, err := s.celebrity(ctx, ev.Target)
	if err != nil || celebrity {
		return err
	}
	// A new followee's recent entries show up in the feed at once.
	tl, err := s.Store.Timelines(ctx, []string{ev.Target}, "", pol.FeedCap)
	if err != nil {
		return err
	}
	return s.Store.FillFeed(ctx, ev.User, tl[0], pol.FeedCap)
}

// unfollow takes the author's entries out of the reader's feed. An active
// reader's feed is then filled to its cap again from everyone else they
// follow, as a rebuild would fill it: a feed is the newest entries of the
// reader's followees however it came about, so a restart, which replays
// the log with the readers' current activity, gives back the same feed.
func (s *Stage) unfollow(ctx context.Context, ev schemas.SocialEvent) error {
	if _, err := s.Store.Unfollow(ctx, ev.User, ev.Target); err != nil {
		return err
	}
	if err := s.Store.RemoveAuthorFromFeed(ctx, ev.User, ev.Target); err != nil {
		return err
	}
	pol := s.policy()
	active, err := s.activeReaders(ctx, []string{ev.User}, s.now().Add(-pol.InactiveAfter))
	if err != nil || len(active) == 0 {
		return err
	}
	celebs, err := s.Store.Celebrities(ctx)
	if err != nil {
		return err
	}
	return feed.Rebuild(ctx, s.Store, ev.User, celebs, pol.FeedCap)
}

// HandleCatalog turns a product batch into shop news: new products (a few
// per shop and day) and price drops of at least PriceDropPercent, repeated
// drops of one product within a day collapsing into one item.
func (s *Stage) HandleCatalog(ctx context.Context, m *pipeline.Message) error {
	var b schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
		return pipeline.Terminal(fmt.Errorf("product batch is not JSON: %w", err))
	}
	if b.Compacted != 0 {
		return nil // its news was announced when the changes were first made
	}
	pol := s.policy()
	shop := schemas.Author(schemas.FolloweeShop, b.Partner)
	slot := 0
	for _, c := range b.Changes {
		if c.Kind != schemas.ChangeUpsert {
			continue
		}
		at := newsAt(&b, &c)
		day := at.UTC().Format(time.DateOnly)
		switch {
		case c.New:
			e := CatalogEntry(schemas.FeedKindProduct, shop, c, at)
			ok, err := s.claimSlot(ctx, b.Partner, day, e.ID, &slot)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := s.publish(ctx, e, ""); err != nil {
				return err
			}
		case isPriceDrop(c.Price, pol.PriceDropPercent):
			e := CatalogEntry(schemas.FeedKindPriceDrop, shop, c, at)
			got, err := s.Store.Claim(ctx, "drop:"+c.ID+":"+day, e.ID, 48*time.Hour)
			if err != nil {
				return err
			}
			if got != e.ID {
				continue // this product already dropped today: one item says so
			}
			if err := s.publish(ctx, e, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// newsAt is when a change's news happened: when the partner says the
// product changed, else when its batch was made.
func newsAt(b *schemas.ProductBatch, c *schemas.ProductChange) time.Time {
	if c.Product != nil && !c.Product.UpdatedAt.IsZero() {
		return c.Product.UpdatedAt
	}
	return b.At
}

// NewsShown starts a reading of product batches, for compaction: it says
// whether a batch holds a change that may make news a replay of the feeds
// would still show. A shop's timeline keeps its TimelineCap newest
// entries, and claims are per shop and day, so once the timeline is full,
// news of a day before its oldest entry's day is trimmed however a replay
// claims that day: a batch whose every possible news is that old may go.
// Without a store, with a timeline not full or feeds longer than
// timelines, every batch that could make news is shown.
func (s *Stage) NewsShown(ctx context.Context) func(*schemas.ProductBatch) (bool, error) {
	pol := s.policy()
	cutoff := map[string]string{} // per partner: the day of its oldest shown entry; "" shows all
	return func(b *schemas.ProductBatch) (bool, error) {
		if b.Compacted != 0 {
			return false, nil
		}
		day, ok := cutoff[b.Partner]
		// A feed longer than a timeline may show news the timeline trimmed.
		if !ok && s.Store != nil && pol.FeedCap <= pol.TimelineCap {
			tl, err := s.Store.Timelines(ctx, []string{schemas.Author(schemas.FolloweeShop, b.Partner)}, "", pol.TimelineCap)
			if err != nil {
				return true, err
			}
			if len(tl) == 1 && len(tl[0]) >= pol.TimelineCap {
				oldest := slices.MinFunc(tl[0], func(a, b schemas.FeedEntry) int { return strings.Compare(a.ID, b.ID) })
				if id, err := ulid.ParseStrict(strings.ToUpper(oldest.ID)); err == nil {
					day = ulid.Time(id.Time()).UTC().Format(time.DateOnly)
				}
			}
			cutoff[b.Partner] = day
		}
		for i := range b.Changes {
			c := &b.Changes[i]
			if c.Kind != schemas.ChangeUpsert || !(c.New || isPriceDrop(c.Price, pol.PriceDropPercent)) {
				continue
			}
			if day == "" || newsAt(b, c).UTC().Format(time.DateOnly) >= day {
				return true, nil
			}
		}
		return false, nil
	}
}

// claimSlot takes the first free "new product" slot of shop and day from
// *slot on; an entry that holds a slot already (a redelivery) finds it again.
func (s *Stage) claimSlot(ctx context.Context, partner, day, id string, slot *int) (bool, error) {
	for ; *slot < s.policy().NewProductsPerDay; *slot++ {
		got, err := s.Store.Claim(ctx, fmt.Sprintf("new:%s:%s:%d", partner, day, *slot), id, 48*time.Hour)
		if err != nil {
			return false, err
		}
		if got == id {
			*slot++
			return true, nil
		}
	}
	return false, nil
}

func isPriceDrop(p *schemas.PriceChange, percent int) bool {
	if p == nil || p.Old <= 0 || p.New <= 0 || p.New >= p.Old {
		return false
	}
	return (p.Old-p.New)*100 >= p.Old*int64(percent)
}

// CatalogEntry derives a catalog item's entry from the change: the same
// change always gives the same id, so a redelivery adds nothing new.
// A price drop carries its prices, so the feed shows the drop itself.
func CatalogEntry(kind, shop string, c schemas.ProductChange, at time.Time) schemas.FeedEntry {
	// The id is a substring of the whole decoded batch; a feed keeps the entry.
	e := schemas.FeedEntry{ID: EntryID(at, kind, c.ID, fmt.Sprint(c.Version)), Kind: kind, Author: shop, Ref: strings.Clone(c.ID)}
	if kind == schemas.FeedKindPriceDrop && c.Price != nil {
		e.PriceOld, e.PriceNew = c.Price.Old, c.Price.New
	}
	return e
}

// EntryID is a ULID with at's time and entropy hashed from parts: time
// ordered like post ids, and deterministic.
func EntryID(at time.Time, parts ...string) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(at))
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	copy(id[6:], sum[:10])
	return strings.ToLower(id.String())
}
