package feed

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"feedline/schemas"
)

// Page sizes of every feed and list read.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Reader answers feed pages: the reader's fanned-out feed merged with the
// recent entries of followed celebrities, hydrated in batches.
type Reader struct {
	Store    schemas.FeedStore
	Posts    schemas.PostStore
	Products schemas.ProductLookup // nil: catalog items are left out
	// Reads keeps every noted read in the log, for the replay after a
	// restart; nil notes reads in the store only.
	Reads  schemas.ReadLog
	Policy Policy
	Now    func() time.Time

	mu          sync.Mutex
	celebrities []string
	celebAt     time.Time
	posts       *expirable.LRU[string, schemas.Post]
}

// Posts never change once written, so pages keep recent ones in memory; a
// deleted post leaves every feed, and its copy here expires soon after.
const (
	postCacheSize = 200_000
	postCacheTTL  = time.Minute
)

// celebrityTTL bounds how stale the reader's copy of the celebrity list is.
const celebrityTTL = 10 * time.Second

// markReadEvery spares a write per read: activity only needs day precision.
const markReadEvery = time.Hour

// rebuildGrace is how long fan-out counts a reader as active while their
// feed is rebuilt: longer than any rebuild the API waits for (10 s).
const rebuildGrace = time.Minute

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Feed answers one page of reader's feed, newest first. A reader who has
// been inactive gets the feed rebuilt first; the call blocks for that.
func (r *Reader) Feed(ctx context.Context, reader, cursor string, limit int) (schemas.FeedPage, error) {
	before, err := decodeCursor(cursor)
	if err != nil {
		return schemas.FeedPage{}, err
	}
	limit = pageLimit(limit)
	if err := r.keepFresh(ctx, reader); err != nil {
		return schemas.FeedPage{}, err
	}
	entries, err := r.Store.Feed(ctx, reader, before, limit)
	if err != nil {
		return schemas.FeedPage{}, err
	}
	celebs, err := r.followedCelebrities(ctx, reader)
	if err != nil {
		return schemas.FeedPage{}, err
	}
	if len(celebs) > 0 {
		tls, err := r.Store.Timelines(ctx, celebs, before, limit)
		if err != nil {
			return schemas.FeedPage{}, err
		}
		entries = merge(limit, append(tls, entries)...)
	}
	return r.page(ctx, entries, limit)
}

// UserPosts answers one page of a user's own posts.
func (r *Reader) UserPosts(ctx context.Context, user, cursor string, limit int) (schemas.FeedPage, error) {
	before, err := decodeCursor(cursor)
	if err != nil {
		return schemas.FeedPage{}, err
	}
	limit = pageLimit(limit)
	tls, err := r.Store.Timelines(ctx, []string{schemas.Author(schemas.FolloweeUser, user)}, before, limit)
	if err != nil {
		return schemas.FeedPage{}, err
	}
	return r.page(ctx, tls[0], limit)
}

// Followers answers one page of the users following author.
func (r *Reader) Followers(ctx context.Context, author, cursor string, limit int) (schemas.FollowPage, error) {
	return r.follows(ctx, cursor, limit, func(before string, n int) ([]schemas.FollowEdge, error) {
		return r.Store.Followers(ctx, author, before, n)
	})
}

// Following answers one page of the authors user follows.
func (r *Reader) Following(ctx context.Context, user, cursor string, limit int) (schemas.FollowPage, error) {
	return r.follows(ctx, cursor, limit, func(before string, n int) ([]schemas.FollowEdge, error) {
		return r.Store.Following(ctx, user, before, n)
	})
}

func (r *Reader) follows(_ context.Context, cursor string, limit int, list func(string, int) ([]schemas.FollowEdge, error)) (schemas.FollowPage, error) {
	before, err := decodeCursor(cursor)
	if err != nil {
		return schemas.FollowPage{}, err
	}
	limit = pageLimit(limit)
	edges, err := list(before, limit)
	if err != nil {
		return schemas.FollowPage{}, err
	}
	page := schemas.FollowPage{Items: make([]schemas.FollowItem, len(edges))}
	for i, e := range edges {
		page.Items[i] = schemas.FollowItem{User: e.User, Author: e.Author, Since: idTime(e.ID)}
	}
	if len(edges) == limit {
		page.NextCursor = encodeCursor(edges[len(edges)-1].ID)
	}
	return page, nil
}

// keepFresh rebuilds the feed of a reader the fan-out skipped as inactive,
// and notes the read.
func (r *Reader) keepFresh(ctx context.Context, reader string) error {
	last, err := r.Store.LastRead(ctx, []string{reader})
	if err != nil {
		return err
	}
	now := r.now()
	inactive := r.Policy.WithDefaults().InactiveAfter
	grace := min(rebuildGrace, inactive/2)
	switch {
	case last[0].IsZero() || now.Sub(last[0]) >= inactive-grace:
		// Fan-out must reach the reader from before the rebuild reads the
		// timelines, or a post handled meanwhile lands in neither. The mark
		// is just recent enough for fan-out, for grace, and still old
		// enough to rebuild on the next read should this rebuild fail.
		if err := r.Store.MarkRead(ctx, reader, now.Add(grace-inactive)); err != nil {
			return err
		}
		if err := r.Rebuild(ctx, reader); err != nil {
			return err
		}
	case now.Sub(last[0]) < markReadEvery:
		return nil
	}
	if r.Reads != nil {
		if err := r.Reads.Record(ctx, reader, now); err != nil {
			return err
		}
	}
	return r.Store.MarkRead(ctx, reader, now)
}

// Rebuild fills reader's feed to its cap from their own timeline and
// everyone they follow, as fan-out would have; celebrities stay merged at
// read time.
func (r *Reader) Rebuild(ctx context.Context, reader string) error {
	celebs, err := r.celebrityList(ctx)
	if err != nil {
		return err
	}
	return Rebuild(ctx, r.Store, reader, celebs, r.Policy.WithDefaults().FeedCap)
}

// followedCelebrities lists the celebrities reader follows.
func (r *Reader) followedCelebrities(ctx context.Context, reader string) ([]string, error) {
	celebs, err := r.celebrityList(ctx)
	if err != nil || len(celebs) == 0 {
		return nil, err
	}
	follows, err := r.Store.Follows(ctx, reader, celebs)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, ok := range follows {
		if ok {
			out = append(out, celebs[i])
		}
	}
	return out, nil
}

func (r *Reader) celebrityList(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	if time.Since(r.celebAt) < celebrityTTL {
		defer r.mu.Unlock()
		return r.celebrities, nil
	}
	r.mu.Unlock()
	celebs, err := r.Store.Celebrities(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.celebrities, r.celebAt = celebs, time.Now()
	r.mu.Unlock()
	return celebs, nil
}

// page hydrates entries: posts in one read of the post store, products in
// one read of the catalog. Entries whose content is gone (a deleted post)
// are left out; the cursor still moves past them.
func (r *Reader) page(ctx context.Context, entries []schemas.FeedEntry, limit int) (schemas.FeedPage, error) {
	var postIDs, productIDs []string
	for _, e := range entries {
		if e.Kind == schemas.FeedKindPost {
			postIDs = append(postIDs, e.Ref)
		} else {
			productIDs = append(productIDs, e.Ref)
		}
	}
	posts, missing := r.cachedPosts(postIDs)
	var products map[string]schemas.Product
	g, gctx := errgroup.WithContext(ctx)
	if len(missing) > 0 {
		g.Go(func() error {
			got, err := r.Posts.Get(gctx, missing)
			for id, p := range got {
				posts[id] = p
				r.posts.Add(id, p)
			}
			return err
		})
	}
	if len(productIDs) > 0 && r.Products != nil {
		g.Go(func() (err error) {
			products, err = r.Products.Products(gctx, productIDs)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return schemas.FeedPage{}, fmt.Errorf("hydrate feed page: %w", err)
	}
	page := schemas.FeedPage{Items: make([]schemas.FeedItem, 0, len(entries))}
	for _, e := range entries {
		item := schemas.FeedItem{ID: e.ID, Kind: e.Kind, Time: idTime(e.ID), Author: e.Author}
		if e.Kind == schemas.FeedKindPost {
			p, ok := posts[e.Ref]
			if !ok {
				continue
			}
			item.Post = &p
		} else {
			p, ok := products[e.Ref]
			if !ok {
				continue
			}
			item.Product = &p
			if e.Kind == schemas.FeedKindPriceDrop && e.PriceOld > 0 {
				item.PriceChange = &schemas.PriceChange{Old: e.PriceOld, New: e.PriceNew, Currency: p.Currency}
			}
		}
		page.Items = append(page.Items, item)
	}
	if len(entries) == limit {
		page.NextCursor = encodeCursor(entries[len(entries)-1].ID)
	}
	return page, nil
}

// cachedPosts answers the posts held in memory and the ids to read.
func (r *Reader) cachedPosts(ids []string) (map[string]schemas.Post, []string) {
	r.mu.Lock()
	if r.posts == nil {
		r.posts = expirable.NewLRU[string, schemas.Post](postCacheSize, nil, postCacheTTL)
	}
	r.mu.Unlock()
	found := make(map[string]schemas.Post, len(ids))
	var missing []string
	for _, id := range ids {
		if p, ok := r.posts.Get(id); ok {
			found[id] = p
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}

// merge combines newest-first lists into one, newest first, without
// duplicates, at most limit long.
func merge(limit int, lists ...[]schemas.FeedEntry) []schemas.FeedEntry {
	var all []schemas.FeedEntry
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortFunc(all, func(a, b schemas.FeedEntry) int { return cmp.Compare(b.ID, a.ID) })
	all = slices.CompactFunc(all, func(a, b schemas.FeedEntry) bool { return a.ID == b.ID })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

func pageLimit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// Cursors are opaque to clients: the id of the last item of the page.
func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("f1:" + id))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", schemas.ErrBadCursor
	}
	id, ok := strings.CutPrefix(string(b), "f1:")
	if !ok {
		return "", schemas.ErrBadCursor
	}
	if _, err := ulid.ParseStrict(id); err != nil {
		return "", schemas.ErrBadCursor
	}
	return id, nil
}

// idTime is the time a ULID carries.
func idTime(id string) time.Time {
	u, err := ulid.Parse(id)
	if err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time()).UTC()
}
