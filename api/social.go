package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"feedline/pipeline"
	"feedline/schemas"
)

// Limits of a post.
const (
	maxPostText   = 5000 // characters
	maxPostImages = 10
	maxImageURL   = 2048 // bytes
	// maxProductID is a partner id (63 bytes), ':' and a SKU.
	maxProductID = 64 + schemas.MaxSKUBytes
)

// pendingTakeover is how long a first request may stay unanswered before a
// retry with the same Idempotency-Key takes over its work.
const pendingTakeover = 30 * time.Second

type postRequest struct {
	Text      string   `json:"text"`
	ProductID string   `json:"product_id,omitempty"`
	ImageURLs []string `json:"image_urls,omitempty"`
}

type accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (s *server) socialRoutes(app *fiber.App) {
	app.Post("/v1/posts", s.requireShopper, s.idempotent, s.createPost)
	app.Delete("/v1/posts/:id", s.requireShopper, s.idempotent, s.deletePost)
	app.Put("/v1/follows/:kind/:id", s.requireShopper, s.idempotent, s.follow)
	app.Delete("/v1/follows/:kind/:id", s.requireShopper, s.idempotent, s.unfollow)
	app.Get("/v1/feed", s.requireShopper, s.feed)
	app.Get("/v1/users/:id/posts", s.requireShopper, s.userPosts)
	app.Get("/v1/users/:id/followers", s.requireShopper, s.userFollowers)
	app.Get("/v1/users/:id/following", s.requireShopper, s.userFollowing)
}

// newID is the id of what a write creates: fixed by an earlier attempt
// with the same Idempotency-Key, else new.
func (s *server) newID(c *fiber.Ctx) string {
	if id, ok := c.Locals(idempotentIDKey).(string); ok && id != "" {
		return id
	}
	return s.cfg.NewID()
}

func (s *server) createPost(c *fiber.Ctx) error {
	var req postRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if err := validatePost(req); err != nil {
		return err
	}
	user := shopperOf(c)
	p := schemas.Post{ID: s.newID(c), Author: user, Text: req.Text, ProductID: req.ProductID, ImageURLs: req.ImageURLs, CreatedAt: s.cfg.Now().UTC()}
	ctx, cancel := storeCtx(c)
	defer cancel()
	// The post's durable home first, so its author can delete it as soon
	// as this answer arrives; it is invisible until the event is applied.
	if err := s.cfg.Posts.Put(ctx, p); err != nil {
		return failed("store the post", err)
	}
	ev := schemas.SocialEvent{ID: p.ID, Kind: schemas.SocialPost, User: user, Post: &p, At: p.CreatedAt}
	if err := s.publishSocial(ctx, ev); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(accepted{ID: p.ID, Status: "accepted"})
}

func validatePost(req postRequest) error {
	n := utf8.RuneCountInString(strings.TrimSpace(req.Text))
	if n == 0 {
		return unprocessable("invalid-post", "Invalid post", "The post has no text; send {\"text\": \"…\"}.")
	}
	if n > maxPostText {
		return unprocessable("invalid-post", "Invalid post", "The text has %d characters; a post holds at most %d.", n, maxPostText)
	}
	if !utf8.ValidString(req.Text) {
		return unprocessable("invalid-post", "Invalid post", "The text is not valid UTF-8.")
	}
	if strings.IndexByte(req.Text, 0) >= 0 {
		return unprocessable("invalid-post", "Invalid post", "The text holds a NUL character (\\u0000); remove it.")
	}
	if req.ProductID != "" {
		if len(req.ProductID) > maxProductID {
			return unprocessable("invalid-post", "Invalid post", "product_id is %d bytes long; a product id has at most %d.", len(req.ProductID), maxProductID)
		}
		if partner, sku := schemas.SplitProductID(req.ProductID); !partnerIDPattern.MatchString(partner) || sku == "" || len(sku) > schemas.MaxSKUBytes || strings.IndexByte(sku, 0) >= 0 {
			return unprocessable("invalid-post", "Invalid post", "product_id %q is not a product id; ids are \"<partner>:<sku>\", a SKU of at most %d bytes without NUL characters.", req.ProductID, schemas.MaxSKUBytes)
		}
	}
	if len(req.ImageURLs) > maxPostImages {
		return unprocessable("invalid-post", "Invalid post", "The post has %d images; at most %d are allowed.", len(req.ImageURLs), maxPostImages)
	}
	for i, raw := range req.ImageURLs {
		if len(raw) > maxImageURL {
			return unprocessable("invalid-post", "Invalid post", "image url %d is %d bytes long; at most %d are allowed.", i+1, len(raw), maxImageURL)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return unprocessable("invalid-post", "Invalid post", "image url %q is not an http(s) URL.", raw)
		}
	}
	return nil
}

func (s *server) deletePost(c *fiber.Ctx) error {
	user, id := shopperOf(c), c.Params("id")
	ctx, cancel := storeCtx(c)
	defer cancel()
	posts, err := s.cfg.Posts.Get(ctx, []string{id})
	if err != nil {
		return failed("read the post", err)
	}
	p, ok := posts[id]
	if !ok {
		return notFound("No post %q; it may have been deleted already.", id)
	}
	if p.Author != user {
		return forbidden("Post %q belongs to another shopper; only its author can delete it.", id)
	}
	ev := schemas.SocialEvent{ID: s.newID(c), Kind: schemas.SocialPostDelete, User: user, PostID: id, At: s.cfg.Now().UTC()}
	if err := s.publishSocial(ctx, ev); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(accepted{ID: id, Status: "deleting"})
}

// followee reads and checks the author a follow route names.
func followee(c *fiber.Ctx) (string, error) {
	kind, id := c.Params("kind"), c.Params("id")
	if kind != schemas.FolloweeUser && kind != schemas.FolloweeShop {
		return "", notFound("No followee kind %q; follow a \"user\" or a \"shop\".", kind)
	}
	if !userIDPattern.MatchString(id) {
		return "", invalidParameter("%s id %q: use 1 to 63 lower-case letters, digits, '-' or '_'.", kind, id)
	}
	return schemas.Author(kind, id), nil
}

func (s *server) follow(c *fiber.Ctx) error {
	user := shopperOf(c)
	author, err := followee(c)
	if err != nil {
		return err
	}
	if author == schemas.Author(schemas.FolloweeUser, user) {
		return unprocessable("invalid-follow", "Cannot follow yourself", "Your own posts are in your feed already.")
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	follows, err := s.cfg.Social.Follows(ctx, user, []string{author})
	if err != nil {
		return failed("read the follow graph", err)
	}
	if follows[0] {
		return c.Status(fiber.StatusOK).JSON(accepted{ID: author, Status: "following"})
	}
	// Users are whoever holds a token; shops are partners, which exist or not.
	if c.Params("kind") == schemas.FolloweeShop {
		_, err := s.cfg.Partners.Partner(ctx, c.Params("id"))
		if errors.Is(err, schemas.ErrNotFound) {
			return notFound("No shop %q; shops are the partners whose products feedline lists.", c.Params("id"))
		}
		if err != nil {
			return failed("check the shop", err)
		}
	}
	following, _, err := s.cfg.Social.FollowCounts(ctx, user, "")
	if err != nil {
		return failed("read the follow graph", err)
	}
	if following >= schemas.MaxFollowees {
		return problem(fiber.StatusConflict, "too-many-followees", "Too many followees",
			"You follow %d users and shops, the most allowed; unfollow one before following %s.", following, author)
	}
	ev := schemas.SocialEvent{ID: s.newID(c), Kind: schemas.SocialFollow, User: user, Target: author, At: s.cfg.Now().UTC()}
	if err := s.publishSocial(ctx, ev); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(accepted{ID: author, Status: "following"})
}

func (s *server) unfollow(c *fiber.Ctx) error {
	user := shopperOf(c)
	author, err := followee(c)
	if err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	ev := schemas.SocialEvent{ID: s.newID(c), Kind: schemas.SocialUnfollow, User: user, Target: author, At: s.cfg.Now().UTC()}
	if err := s.publishSocial(ctx, ev); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(accepted{ID: author, Status: "unfollowing"})
}

// publishSocial stores the event in JetStream; its id makes a retried
// publish a duplicate, stored once.
func (s *server) publishSocial(ctx context.Context, ev schemas.SocialEvent) error {
	out, err := pipeline.Envelope(ev)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Pub.Publish(ctx, out); err != nil {
		return failed("accept the write", err)
	}
	return nil
}

// pageParams reads limit and cursor of a list route.
func pageParams(c *fiber.Ctx) (int, string, error) {
	limit := 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return 0, "", invalidParameter("limit %q: use a whole number from 1 to 100.", v)
		}
		limit = n
	}
	return limit, c.Query("cursor"), nil
}

func pageError(what string, err error) error {
	if errors.Is(err, schemas.ErrBadCursor) {
		return kindProblem(schemas.ErrBadCursor, "invalid-parameter", "Invalid parameter",
			"cursor is not valid here; start without it and follow next_cursor.")
	}
	return failed(what, err)
}

func (s *server) feed(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	user := shopperOf(c)
	ctx, cancel := storeCtx(c)
	defer cancel()
	page, err := s.cfg.Feed.Feed(ctx, user, cursor, limit)
	if err != nil {
		return pageError("read the feed", err)
	}
	if err := c.JSON(page); err != nil {
		return err
	}
	s.recordFeedRead(user, len(page.Items))
	return nil
}

// recordFeedRead notes the read for analytics without holding the answer.
func (s *server) recordFeedRead(user string, items int) {
	s.reads.add(schemas.FeedEventRow{EventID: s.cfg.NewID(), Kind: schemas.FeedEventFeedRead, UserID: user, Items: int64(items), At: s.cfg.Now().UTC()})
}

// readLog gathers feed reads and publishes them together once a second:
// reads are the busiest route, and one event per read would cost more
// than the read. A clean stop publishes what is gathered; reads noted in
// the last second before a crash are lost: they are analytics, not
// shopper data.
type readLog struct {
	pub     pipeline.Publisher
	log     *slog.Logger
	mu      sync.Mutex
	rows    []schemas.FeedEventRow
	pending bool
}

// readLogDelay is how long reads gather before they are published.
const readLogDelay = time.Second

func (l *readLog) add(r schemas.FeedEventRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows = append(l.rows, r)
	if !l.pending {
		l.pending = true
		time.AfterFunc(readLogDelay, func() { l.flush(context.Background()) })
	}
}

func (l *readLog) flush(ctx context.Context) {
	l.mu.Lock()
	rows := l.rows
	l.rows, l.pending = nil, false
	l.mu.Unlock()
	if len(rows) == 0 || l.pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := pipeline.Publish(ctx, l.pub, schemas.FeedReads(rows)); err != nil {
		l.log.Warn("feed reads not recorded for analytics", slog.Int("reads", len(rows)), slog.Any("err", err))
	}
}

func (s *server) pathUser(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !userIDPattern.MatchString(id) {
		return "", invalidParameter("user id %q: use 1 to 63 lower-case letters, digits, '-' or '_'.", id)
	}
	return id, nil
}

func (s *server) userPosts(c *fiber.Ctx) error {
	return s.userList(c, func(ctx context.Context, id, cursor string, limit int) (any, error) {
		return s.cfg.Feed.UserPosts(ctx, id, cursor, limit)
	})
}

func (s *server) userFollowers(c *fiber.Ctx) error {
	return s.userList(c, func(ctx context.Context, id, cursor string, limit int) (any, error) {
		return s.cfg.Feed.Followers(ctx, schemas.Author(schemas.FolloweeUser, id), cursor, limit)
	})
}

func (s *server) userFollowing(c *fiber.Ctx) error {
	return s.userList(c, func(ctx context.Context, id, cursor string, limit int) (any, error) {
		return s.cfg.Feed.Following(ctx, id, cursor, limit)
	})
}

func (s *server) userList(c *fiber.Ctx, list func(ctx context.Context, id, cursor string, limit int) (any, error)) error {
	id, err := s.pathUser(c)
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	page, err := list(ctx, id, cursor, limit)
	if err != nil {
		return pageError("read the list", err)
	}
	return c.JSON(page)
}

// idempotent answers a write retried with the same Idempotency-Key with
// the first answer. The id the write creates is fixed before it runs, so a
// retry after a crash re-publishes the same event, which JetStream drops.
func (s *server) idempotent(c *fiber.Ctx) error {
	key := strings.TrimSpace(c.Get("Idempotency-Key"))
	if key == "" {
		return c.Next()
	}
	if len(key) > 255 {
		return badRequest("Idempotency-Key is %d characters long; use at most 255.", len(key))
	}
	if s.cfg.Requests == nil {
		return c.Next()
	}
	user := shopperOf(c)
	body, err := bufferBody(c, maxJSONBody)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(c.Method() + " " + c.Path() + "\n" + string(body)))
	fp := hex.EncodeToString(sum[:])
	storeKey := user + "\x00" + key
	now := s.cfg.Now().UTC()
	ctx, cancel := storeCtx(c)
	defer cancel()
	rec, created, err := s.cfg.Requests.Begin(ctx, storeKey, schemas.RequestRecord{State: schemas.RequestPending, Fingerprint: fp, ID: s.cfg.NewID(), At: now})
	if err != nil {
		return failed("check the Idempotency-Key", err)
	}
	if !created {
		if rec.Fingerprint != fp {
			return unprocessable("idempotency-key-reused", "Idempotency-Key reused",
				"This Idempotency-Key was used for a different request; use a new key for a new request.")
		}
		if rec.State == schemas.RequestDone {
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Status(rec.Status).Send(rec.Body)
		}
		if now.Sub(rec.At) < pendingTakeover {
			return problem(fiber.StatusConflict, "request-in-progress", "Request in progress",
				"A request with this Idempotency-Key is still being answered; retry in a few seconds.")
		}
	}
	c.Locals(idempotentIDKey, rec.ID)
	if err := c.Next(); err != nil {
		// Failures are not remembered: the retry should try again.
		return err
	}
	status := c.Response().StatusCode()
	if status >= 500 {
		return nil
	}
	rec.State, rec.Status, rec.Body, rec.At = schemas.RequestDone, status, append([]byte(nil), c.Response().Body()...), now
	if err := s.cfg.Requests.Finish(ctx, storeKey, rec); err != nil {
		s.cfg.Log.Warn("answer of an idempotent request not stored", slog.Any("err", err))
	}
	return nil
}
