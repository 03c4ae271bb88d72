// Package redisfeed is the shared schemas.FeedStore: feeds, timelines, the
// follow graph and reader activity in Redis (6.2 or later), read and
// written by every API and fan-out instance. It answers like the embedded
// store (connectors/feedstore) under the connectors/feedstoretest contract.
//
// The store runs on one server or on a Redis Cluster (see Open). Key
// layout, P being the prefix ("feedline:" unless WithPrefix says
// otherwise). The braces hold the Redis Cluster hash tag: every key of one
// reader, user or author lives in one slot, so a cluster spreads the data
// by reader and author and a script or transaction over one of them stays
// in one slot. Writes for many readers are pipelines of one-key commands,
// which the cluster client splits by node; no command names keys of two
// users, so none meets CROSSSLOT.
//
//	P feed:{reader}             sorted set, score 0, members "<id>|<kind>|<author>|<ref>"
//	P timeline:{author}         sorted set like a feed: the author's own entries
//	P following:{user}          hash author → edge id: who user follows
//	P following:{user}:byid     sorted set, score 0, members "<edge id>|<author>"
//	P followers:{author}        hash user → edge id: who follows author
//	P followers:{author}:byid   sorted set, score 0, members "<edge id>|<user>"
//	P celebrities               set of authors too widely followed to fan out to
//	P lastread:{reader}         string, Unix milliseconds of the last feed read
//	P claim:{key}               string with a TTL
//
// With every score 0 a sorted set orders its members by bytes, and members
// lead with a ULID, so ZRANGE … BYLEX REV pages newest first and "(<id>"
// is the exclusive bound of a page. Writes for many readers or authors go
// in one pipeline: a fan-out chunk of 5,000 readers is one round trip (on
// a cluster, one round trip to each master, at once).
package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// DefaultPrefix starts every key unless WithPrefix says otherwise.
const DefaultPrefix = "feedline:"

// pipelineReaders bounds how many readers one pipeline writes, so a call
// for a huge list does not buffer every command at once.
const pipelineReaders = 10_000

// Option configures Open.
type Option func(*Store)

// WithPrefix starts every key with prefix instead of DefaultPrefix; it
// must not hold '{' or '}', which would change the hash tags.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// WithClientOptions lets tune adjust the client options parsed from a
// redis:// URL, for settings a URL cannot carry (TLS config, dial retries,
// hooks).
func WithClientOptions(tune func(*redis.Options)) Option {
	return func(s *Store) { s.tune = tune }
}

// WithClusterOptions is WithClientOptions for a redis+cluster:// URL.
func WithClusterOptions(tune func(*redis.ClusterOptions)) Option {
	return func(s *Store) { s.tuneCluster = tune }
}

// Store is the Redis FeedStore. It is safe for concurrent use.
type Store struct {
	rdb         redis.UniversalClient
	cluster     *redis.ClusterClient // rdb, when it is a cluster
	prefix      string
	addr        string // the server or cluster, for errors
	tune        func(*redis.Options)
	tuneCluster func(*redis.ClusterOptions)
	hooks       []redis.Hook
}

var (
	_ schemas.FeedStore     = (*Store)(nil)
	_ schemas.HealthChecker = (*Store)(nil)
)

// Open connects to what url names and checks that it serves:
//
//	redis://[user:password@]host:port[/db]                    one server
//	redis+cluster://[user:password@]host:port[,host:port...]  a Redis Cluster
//
// (rediss:// and rediss+cluster:// for TLS), each with go-redis's query
// options. A cluster is named by one or more of its nodes; it must serve
// every hash slot. A server or cluster that cannot serve yields an error
// wrapping schemas.ErrUnavailable; a redis:// URL naming a cluster node is
// refused, since a single-node client would meet MOVED replies.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	t, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	s := &Store{prefix: DefaultPrefix, addr: t.describe()}
	for _, opt := range opts {
		opt(s)
	}
	if strings.ContainsAny(s.prefix, "{}") {
		return nil, fmt.Errorf("redisfeed: prefix %q must not hold '{' or '}'", s.prefix)
	}
	if t.cluster != nil && s.tuneCluster != nil {
		s.tuneCluster(t.cluster)
	}
	if t.server != nil && s.tune != nil {
		s.tune(t.server)
	}
	s.rdb = t.client()
	for _, h := range s.hooks {
		s.rdb.AddHook(h)
	}
	s.cluster, _ = s.rdb.(*redis.ClusterClient)
	check := s.serverServes
	if s.cluster != nil {
		check = s.clusterServes
	}
	if err := check(ctx); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redisfeed: connect to %s: %w", s.addr, err)
	}
	return s, nil
}

// serverServes pings the one server and refuses a cluster node.
func (s *Store) serverServes(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return classify(ctx, err)
	}
	// A server that refuses INFO is taken for what the URL says it is.
	if info, err := s.rdb.Info(ctx, "cluster").Result(); err == nil && infoField(info, "cluster_enabled") == "1" {
		return errors.New("it is a Redis Cluster node; name the cluster as redis+cluster://host:port[,host:port...]")
	}
	return nil
}

// Healthy reports whether the server, or every master of the cluster,
// serves; failures wrap schemas.ErrUnavailable unless ctx itself was
// cancelled, and say which node or hash slots are the trouble.
func (s *Store) Healthy(ctx context.Context) error {
	if s.cluster != nil {
		if err := s.clusterServes(ctx); err != nil {
			return fmt.Errorf("redisfeed: %s: %w", s.addr, err)
		}
		return nil
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisfeed: ping %s: %w", s.addr, classify(ctx, err))
	}
	return nil
}

// Node answers the address of the server that holds reader's keys: the
// master of their slot on a cluster (as the client last learnt it).
func (s *Store) Node(ctx context.Context, reader string) (string, error) {
	if s.cluster == nil {
		return s.addr, nil
	}
	m, err := s.cluster.MasterForKey(ctx, s.feedKey(reader))
	if err != nil {
		return "", fmt.Errorf("redisfeed: master of %s: %w", reader, classify(ctx, err))
	}
	return m.Options().Addr, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// key names a key of the layout: P<kind>:{<tag>}<suffix>.
func (s *Store) key(kind, tag, suffix string) string {
	return s.prefix + kind + ":{" + tag + "}" + suffix
}

func (s *Store) feedKey(reader string) string       { return s.key("feed", reader, "") }
func (s *Store) timelineKey(author string) string   { return s.key("timeline", author, "") }
func (s *Store) followingKey(user string) string    { return s.key("following", user, "") }
func (s *Store) followingByID(user string) string   { return s.key("following", user, ":byid") }
func (s *Store) followersKey(author string) string  { return s.key("followers", author, "") }
func (s *Store) followersByID(author string) string { return s.key("followers", author, ":byid") }
func (s *Store) lastReadKey(reader string) string   { return s.key("lastread", reader, "") }
func (s *Store) claimKey(key string) string         { return s.key("claim", key, "") }
func (s *Store) celebritiesKey() string             { return s.prefix + "celebrities" }

func checkEntry(e schemas.FeedEntry) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("redisfeed: %w", err)
	}
	return nil
}

func checkMax(max int) error {
	if err := schemas.ValidateFeedMax(max); err != nil {
		return fmt.Errorf("redisfeed: %w", err)
	}
	return nil
}

// execPipe runs a pipeline and answers the first error of its commands that
// is not redis.Nil (a missing key, which callers read as empty).
func execPipe(ctx context.Context, pipe redis.Pipeliner) ([]redis.Cmder, error) {
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return cmds, nil
	}
	if !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
	}
	return cmds, nil
}

// AddToFeeds adds e to each reader's feed and trims it, every reader in
// one pipeline (two commands each).
func (s *Store) AddToFeeds(ctx context.Context, readers []string, e schemas.FeedEntry, max int) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if err := checkMax(max); err != nil {
		return err
	}
	member := e.String()
	for chunk := range slices.Chunk(readers, pipelineReaders) {
		pipe := s.rdb.Pipeline()
		for _, r := range chunk {
			key := s.feedKey(r)
			pipe.ZAdd(ctx, key, redis.Z{Member: member})
			pipe.ZRemRangeByRank(ctx, key, 0, int64(-max-1))
		}
		if _, err := execPipe(ctx, pipe); err != nil {
			return fmt.Errorf("redisfeed: add %s to %d feeds: %w", e.ID, len(chunk), classify(ctx, err))
		}
	}
	return nil
}

// RemoveFromFeeds takes e out of each reader's feed in one pipeline.
func (s *Store) RemoveFromFeeds(ctx context.Context, readers []string, e schemas.FeedEntry) error {
	member := e.String()
	for chunk := range slices.Chunk(readers, pipelineReaders) {
		pipe := s.rdb.Pipeline()
		for _, r := range chunk {
			pipe.ZRem(ctx, s.feedKey(r), member)
		}
		if _, err := execPipe(ctx, pipe); err != nil {
			return fmt.Errorf("redisfeed: remove %s from %d feeds: %w", e.ID, len(chunk), classify(ctx, err))
		}
	}
	return nil
}

// removeAuthorScript deletes the members of a feed whose third field is
// the author, in one step on the server.
var removeAuthorScript = redis.NewScript(`
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
	local a = string.find(m, '|', 1, true)
	local b = a and string.find(m, '|', a + 1, true)
	local c = b and string.find(m, '|', b + 1, true)
	if c and string.sub(m, b + 1, c - 1) == ARGV[1] then
		redis.call('ZREM', KEYS[1], m)
		n = n + 1
	end
end
return n
`)

// RemoveAuthorFromFeed takes every entry of author out of reader's feed.
func (s *Store) RemoveAuthorFromFeed(ctx context.Context, reader, author string) error {
	if err := removeAuthorScript.Run(ctx, s.rdb, []string{s.feedKey(reader)}, author).Err(); err != nil {
		return fmt.Errorf("redisfeed: remove %s from the feed of %s: %w", author, reader, classify(ctx, err))
	}
	return nil
}

// pageArgs is a newest-first page of up to limit members below before.
func pageArgs(key, before string, limit int) redis.ZRangeArgs {
	start := "+"
	if before != "" {
		start = "(" + before
	}
	return redis.ZRangeArgs{Key: key, Start: start, Stop: "-", ByLex: true, Rev: true, Count: int64(limit)}
}

func parseEntries(members []string) ([]schemas.FeedEntry, error) {
	out := make([]schemas.FeedEntry, len(members))
	for i, m := range members {
		e, err := schemas.ParseFeedEntry(m)
		if err != nil {
			return nil, fmt.Errorf("redisfeed: %w", err)
		}
		out[i] = e
	}
	return out, nil
}

// Feed is up to limit entries of reader's feed below before, newest first.
func (s *Store) Feed(ctx context.Context, reader, before string, limit int) ([]schemas.FeedEntry, error) {
	if limit <= 0 {
		return []schemas.FeedEntry{}, nil
	}
	members, err := s.rdb.ZRangeArgs(ctx, pageArgs(s.feedKey(reader), before, limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfeed: feed of %s: %w", reader, classify(ctx, err))
	}
	return parseEntries(members)
}

// newestMembers answers the compact forms of entries, sorted, duplicates
// collapsed and only the newest max kept.
func newestMembers(entries []schemas.FeedEntry, max int) ([]any, error) {
	members := make([]string, 0, len(entries))
	for _, e := range entries {
		if err := checkEntry(e); err != nil {
			return nil, err
		}
		members = append(members, e.String())
	}
	slices.Sort(members)
	members = slices.Compact(members)
	members = members[len(members)-min(len(members), max):]
	out := make([]any, 0, 2*len(members))
	for _, m := range members {
		out = append(out, 0, m)
	}
	return out, nil
}

// FillFeed adds entries to reader's feed and trims it in one transaction,
// so a reader sees the feed before or after, never one over its cap.
func (s *Store) FillFeed(ctx context.Context, reader string, entries []schemas.FeedEntry, max int) error {
	if err := checkMax(max); err != nil {
		return err
	}
	args, err := newestMembers(entries, max)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return nil
	}
	key := s.feedKey(reader)
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Do(ctx, append([]any{"zadd", key}, args...)...)
		pipe.ZRemRangeByRank(ctx, key, 0, int64(-max-1))
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisfeed: fill the feed of %s: %w", reader, classify(ctx, err))
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
	key := s.timelineKey(author)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZAdd(ctx, key, redis.Z{Member: e.String()})
		pipe.ZRemRangeByRank(ctx, key, 0, int64(-max-1))
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisfeed: add %s to the timeline of %s: %w", e.ID, author, classify(ctx, err))
	}
	return nil
}

// RemoveFromTimeline takes e out of author's timeline.
func (s *Store) RemoveFromTimeline(ctx context.Context, author string, e schemas.FeedEntry) error {
	if err := s.rdb.ZRem(ctx, s.timelineKey(author), e.String()).Err(); err != nil {
		return fmt.Errorf("redisfeed: remove %s from the timeline of %s: %w", e.ID, author, classify(ctx, err))
	}
	return nil
}

// Timelines reads a page of each author's timeline in one pipeline.
func (s *Store) Timelines(ctx context.Context, authors []string, before string, limit int) ([][]schemas.FeedEntry, error) {
	out := make([][]schemas.FeedEntry, len(authors))
	if limit <= 0 || len(authors) == 0 {
		for i := range out {
			out[i] = []schemas.FeedEntry{}
		}
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(authors))
	for i, a := range authors {
		cmds[i] = pipe.ZRangeArgs(ctx, pageArgs(s.timelineKey(a), before, limit))
	}
	if _, err := execPipe(ctx, pipe); err != nil {
		return nil, fmt.Errorf("redisfeed: timelines of %d authors: %w", len(authors), classify(ctx, err))
	}
	for i, c := range cmds {
		es, err := parseEntries(c.Val())
		if err != nil {
			return nil, err
		}
		out[i] = es
	}
	return out, nil
}

// MarkCelebrity records author as too widely followed to fan out to.
func (s *Store) MarkCelebrity(ctx context.Context, author string) error {
	if err := s.rdb.SAdd(ctx, s.celebritiesKey(), author).Err(); err != nil {
		return fmt.Errorf("redisfeed: mark %s a celebrity: %w", author, classify(ctx, err))
	}
	return nil
}

// Celebrities lists every celebrity author, sorted.
func (s *Store) Celebrities(ctx context.Context) ([]string, error) {
	out, err := s.rdb.SMembers(ctx, s.celebritiesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfeed: celebrities: %w", classify(ctx, err))
	}
	slices.Sort(out)
	return out, nil
}

// markReadScript keeps the later of the held and the given time.
var markReadScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// MarkRead notes that reader read their feed at at, to the millisecond;
// an earlier time than the one held changes nothing.
func (s *Store) MarkRead(ctx context.Context, reader string, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	if err := markReadScript.Run(ctx, s.rdb, []string{s.lastReadKey(reader)}, ms).Err(); err != nil {
		return fmt.Errorf("redisfeed: mark %s read: %w", reader, classify(ctx, err))
	}
	return nil
}

// LastRead answers each reader's last read time in one pipeline, zero
// when never.
func (s *Store) LastRead(ctx context.Context, readers []string) ([]time.Time, error) {
	out := make([]time.Time, 0, len(readers))
	for chunk := range slices.Chunk(readers, pipelineReaders) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(chunk))
		for i, r := range chunk {
			cmds[i] = pipe.Get(ctx, s.lastReadKey(r))
		}
		if _, err := execPipe(ctx, pipe); err != nil {
			return nil, fmt.Errorf("redisfeed: last reads of %d readers: %w", len(chunk), classify(ctx, err))
		}
		for i, c := range cmds {
			var at time.Time
			if c.Err() == nil { // else redis.Nil: never read
				ms, err := strconv.ParseInt(c.Val(), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redisfeed: last read of %s: %w", chunk[i], err)
				}
				at = time.UnixMilli(ms).UTC()
			}
			out = append(out, at)
		}
	}
	return out, nil
}

// claimScript sets the key unless it holds a value and answers the value
// held; portable to servers without SET … NX GET.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`)

// Claim stores value under key for ttl (to the millisecond) unless the key
// holds a value, and answers the value that holds.
func (s *Store) Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("redisfeed: claim %q: ttl %v must be positive", key, ttl)
	}
	ms := max(1, ttl.Milliseconds())
	held, err := claimScript.Run(ctx, s.rdb, []string{s.claimKey(key)}, value, ms).Text()
	if err != nil {
		return "", fmt.Errorf("redisfeed: claim %q: %w", key, classify(ctx, err))
	}
	return held, nil
}

// cutEdge splits a follow member "<edge id>|<other>".
func cutEdge(member string) (id, other string, err error) {
	id, other, ok := strings.Cut(member, "|")
	if !ok || id == "" {
		return "", "", fmt.Errorf("redisfeed: follow member %q: want <edge id>|<party>", member)
	}
	return id, other, nil
}
