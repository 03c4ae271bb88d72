package schemas

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Social subjects: shopper writes, accepted by the API as events.
const (
	SubjectPost   = "social.post"   // .<shard>: SocialEvent of kind post or post_delete
	SubjectFollow = "social.follow" // .<shard>: SocialEvent of kind follow or unfollow
)

// Feed item kinds.
const (
	FeedKindPost      = "post"       // a followed shopper's post
	FeedKindProduct   = "product"    // a followed shop's new product
	FeedKindPriceDrop = "price_drop" // a followed shop's product got cheaper
)

// Followee kinds: a shopper follows users and shops.
const (
	FolloweeUser = "user"
	FolloweeShop = "shop"
)

// MaxFollowees is how many users and shops one shopper may follow.
const MaxFollowees = 5000

// Author names whoever feed entries come from, "user:<id>" or "shop:<partner>".
func Author(kind, id string) string { return kind + ":" + id }

// SplitAuthor splits an author into its kind and id.
func SplitAuthor(a string) (kind, id string) {
	kind, id, _ = strings.Cut(a, ":")
	return kind, id
}

// Post is a shopper's story. Its id is a ULID: unique under any concurrency
// and sorting by time.
type Post struct {
	ID        string    `json:"id"`
	Author    string    `json:"author"` // user id
	Text      string    `json:"text"`
	ProductID string    `json:"product_id,omitempty"`
	ImageURLs []string  `json:"image_urls,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Social event kinds.
const (
	SocialPost       = "post"
	SocialPostDelete = "post_delete"
	SocialFollow     = "follow"
	SocialUnfollow   = "unfollow"
)

// SocialEvent is one shopper write. ID is the event's ULID and its
// message id, so a retried publish is stored once.
type SocialEvent struct {
	ID     string    `json:"id"`
	Kind   string    `json:"kind"`
	User   string    `json:"user"`              // who acted
	Post   *Post     `json:"post,omitempty"`    // kind post
	PostID string    `json:"post_id,omitempty"` // kind post_delete
	Target string    `json:"target,omitempty"`  // follow/unfollow: Author(kind, id)
	At     time.Time `json:"at"`
}

// FeedEntry is one item of a feed cache: ids only, content is hydrated at
// read time. ID is a ULID derived from the event that made the entry, so a
// redelivered event writes the same entry, and feeds sort by it.
type FeedEntry struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`   // FeedKind*
	Author string `json:"author"` // Author(kind, id)
	Ref    string `json:"ref"`    // post id, or product id
	// A price drop's effective prices before and after, in minor units:
	// the feed shows the drop as it happened, whatever the price is now.
	PriceOld int64 `json:"price_old,omitempty"`
	PriceNew int64 `json:"price_new,omitempty"`
}

// String is the entry's compact form, "<id>|<kind>|<author>|<ref>", or
// "<id>|price_drop|<author>|<old>-<new>|<ref>" for a price drop with its
// prices; caches store entries in this form and order them by it (the id
// leads, the author is always the third field).
func (e FeedEntry) String() string {
	if e.PriceOld != 0 || e.PriceNew != 0 {
		return e.ID + "|" + e.Kind + "|" + e.Author + "|" + strconv.FormatInt(e.PriceOld, 10) + "-" + strconv.FormatInt(e.PriceNew, 10) + "|" + e.Ref
	}
	return e.ID + "|" + e.Kind + "|" + e.Author + "|" + e.Ref
}

// ParseFeedEntry reads the compact form. A product id always holds a ':',
// so a field of digits around '-' before it can only be a drop's prices;
// entries written before drops carried them read as before.
func ParseFeedEntry(s string) (FeedEntry, error) {
	parts := strings.SplitN(s, "|", 4)
	if len(parts) != 4 || parts[0] == "" {
		return FeedEntry{}, fmt.Errorf("feed entry %q: want id|kind|author|ref", s)
	}
	e := FeedEntry{ID: parts[0], Kind: parts[1], Author: parts[2], Ref: parts[3]}
	if e.Kind == FeedKindPriceDrop {
		if prices, ref, ok := strings.Cut(e.Ref, "|"); ok {
			oldS, newS, dash := strings.Cut(prices, "-")
			o, errOld := strconv.ParseUint(oldS, 10, 63)
			n, errNew := strconv.ParseUint(newS, 10, 63)
			if dash && errOld == nil && errNew == nil {
				e.Ref, e.PriceOld, e.PriceNew = ref, int64(o), int64(n)
			}
		}
	}
	return e, nil
}

// FollowEdge is one "user follows author" relation; ID is the ULID of the
// follow event, so lists page newest first like feeds.
type FollowEdge struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Author string `json:"author"`
}

// FeedStore is the derived news-feed state: per-reader feeds, per-author
// timelines, the follow graph and reader activity. It is rebuilt from the
// JetStream log; the embedded one lives in the process, the distributed one
// in Redis, shared by every API and fan-out instance. Every write is
// idempotent, so a redelivered event changes nothing.
//
// Lists page newest first: before is an exclusive upper bound on the
// entry or edge id ("" for the newest), so a page boundary is stable while
// newer items arrive.
type FeedStore interface {
	// AddToFeeds puts e into each reader's feed and trims each feed to its
	// newest max entries.
	AddToFeeds(ctx context.Context, readers []string, e FeedEntry, max int) error
	// RemoveFromFeeds takes e out of each reader's feed.
	RemoveFromFeeds(ctx context.Context, readers []string, e FeedEntry) error
	// RemoveAuthorFromFeed takes every entry of author out of reader's feed.
	RemoveAuthorFromFeed(ctx context.Context, reader, author string) error
	// Feed is up to limit entries of reader's feed with ids below before.
	Feed(ctx context.Context, reader, before string, limit int) ([]FeedEntry, error)
	// FillFeed adds entries to reader's feed (a rebuild) and trims it to
	// its newest max. What the feed holds is kept, so an entry fanned out
	// while a rebuild read the timelines survives it.
	FillFeed(ctx context.Context, reader string, entries []FeedEntry, max int) error

	// AddToTimeline records e as one of author's own entries, newest max kept.
	AddToTimeline(ctx context.Context, author string, e FeedEntry, max int) error
	RemoveFromTimeline(ctx context.Context, author string, e FeedEntry) error
	// Timelines reads up to limit entries below before of each author, in
	// one round trip; out[i] belongs to authors[i].
	Timelines(ctx context.Context, authors []string, before string, limit int) ([][]FeedEntry, error)

	// Follow records the edge; added is false when user already follows
	// edge.Author (the stored edge is kept). following is user's count after.
	Follow(ctx context.Context, edge FollowEdge) (added bool, following int, err error)
	// Unfollow removes the edge; removed is false when there was none.
	Unfollow(ctx context.Context, user, author string) (removed bool, err error)
	// Following pages the authors user follows, newest edge first.
	Following(ctx context.Context, user, before string, limit int) ([]FollowEdge, error)
	// Followers pages the users who follow author, newest edge first.
	Followers(ctx context.Context, author, before string, limit int) ([]FollowEdge, error)
	// FollowCounts answers how many authors user follows and how many
	// users follow it as an author (Author(FolloweeUser, user) or a shop).
	FollowCounts(ctx context.Context, user, author string) (following, followers int, err error)
	// Follows reports, for each author, whether user follows it.
	Follows(ctx context.Context, user string, authors []string) ([]bool, error)

	// MarkCelebrity records author as having too many followers to fan out
	// to; Celebrities lists every such author.
	MarkCelebrity(ctx context.Context, author string) error
	Celebrities(ctx context.Context) ([]string, error)

	// MarkRead notes that reader read their feed at at; LastRead answers
	// the last such time of each reader (zero when never).
	MarkRead(ctx context.Context, reader string, at time.Time) error
	LastRead(ctx context.Context, readers []string) ([]time.Time, error)

	// Claim stores value under key for ttl unless the key holds a value
	// already; it answers the value that holds (value itself when claimed).
	// The fan-out stage collapses repeated catalog news with it.
	Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error)

	Close() error
}

// ReadLog is the durable record of when each reader last read their
// feed. Fan-out skips readers who have not read for a while, so a replay
// of the log must know who was active before it fans out; the embedded
// feed store forgets that at a restart, and Redis can lose it.
type ReadLog interface {
	// Record notes that reader read their feed at at.
	Record(ctx context.Context, reader string, at time.Time) error
	// Each calls fn with every reader's last recorded read.
	Each(ctx context.Context, fn func(reader string, at time.Time) error) error
}

// PostStore is the durable home of post content, readable by every
// instance (a NATS KV bucket).
type PostStore interface {
	Put(ctx context.Context, p Post) error
	// Get answers the posts that exist, by id; missing ids are left out.
	Get(ctx context.Context, ids []string) (map[string]Post, error)
	Delete(ctx context.Context, id string) error
}

// FeedItem is one hydrated item of a feed page.
type FeedItem struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // FeedKind*
	Time    time.Time `json:"time"`
	Author  string    `json:"author"` // "user:<id>" or "shop:<partner>"
	Post    *Post     `json:"post,omitempty"`
	Product *Product  `json:"product,omitempty"`
	// PriceChange is a price drop's prices when it happened (the product
	// shows today's).
	PriceChange *PriceChange `json:"price_change,omitempty"`
}

// FeedPage is one page of a feed or timeline; no NextCursor means the end.
type FeedPage struct {
	Items      []FeedItem `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// FollowItem is one follow relation as a page lists it.
type FollowItem struct {
	User   string    `json:"user"`   // the follower
	Author string    `json:"author"` // "user:<id>" or "shop:<partner>"
	Since  time.Time `json:"since"`
}

// FollowPage is one page of followers or followees.
type FollowPage struct {
	Items      []FollowItem `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ProductLookup reads many products in one call; search backends offer it
// so feed pages hydrate their catalog items in one round trip.
type ProductLookup interface {
	Products(ctx context.Context, ids []string) (map[string]Product, error)
}

// Idempotent request states.
const (
	RequestPending = "pending" // the first request is still being answered
	RequestDone    = "done"
)

// RequestRecord is what a write sent with an Idempotency-Key left behind:
// the id it creates (fixed before the event is published, so a retry after
// a crash publishes the same event again) and, once done, its answer.
type RequestRecord struct {
	State       string    `json:"state"`
	Fingerprint string    `json:"fingerprint"` // of the request, so a key reused for another request is refused
	ID          string    `json:"id,omitempty"`
	Status      int       `json:"status,omitempty"`
	Body        []byte    `json:"body,omitempty"`
	At          time.Time `json:"at"`
}

// IdempotentRequests remembers writes by idempotency key for a day.
type IdempotentRequests interface {
	// Begin stores rec under key unless the key is taken; then it answers
	// the stored record and false.
	Begin(ctx context.Context, key string, rec RequestRecord) (RequestRecord, bool, error)
	// Finish stores the answer; Take over a stale pending record with Finish too.
	Finish(ctx context.Context, key string, rec RequestRecord) error
}

// Validate refuses an entry whose compact form would not read back as the
// same entry, so every feed store keeps exactly what it was given.
func (e FeedEntry) Validate() error {
	back, err := ParseFeedEntry(e.String())
	if err != nil || back != e || e.Kind == "" || e.Author == "" {
		return fmt.Errorf("feed entry %q: id, kind and author must be non-empty and free of '|'", e.String())
	}
	return nil
}

// ValidateFeedMax refuses a feed or timeline size below one entry.
func ValidateFeedMax(max int) error {
	if max < 1 {
		return fmt.Errorf("max %d: a feed keeps at least one entry", max)
	}
	return nil
}
