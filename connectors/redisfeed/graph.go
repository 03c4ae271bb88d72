package redisfeed

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// followScript records an edge on one side of the graph unless the party
// is there already. KEYS: hash party → edge id, sorted set by edge id;
// ARGV: party, edge id. It answers {added, the stored edge id, size}.
var followScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return {0, id, redis.call('HLEN', KEYS[1])} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[2] .. '|' .. ARGV[1])
return {1, ARGV[2], redis.call('HLEN', KEYS[1])}
`)

// mirrorScript makes one side of the graph hold exactly the given edge id
// for the party, replacing another. KEYS and ARGV as followScript.
var mirrorScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
if old then redis.call('ZREM', KEYS[2], old .. '|' .. ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[2] .. '|' .. ARGV[1])
return 1
`)

// unfollowScript removes the party's edge from one side of the graph and
// answers whether there was one. KEYS as followScript; ARGV: party.
var unfollowScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], id .. '|' .. ARGV[1])
return 1
`)

// checkEdge refuses edges whose members "<id>|<party>" would be ambiguous.
func checkEdge(e schemas.FollowEdge) error {
	if e.ID == "" || e.User == "" || e.Author == "" || strings.Contains(e.ID, "|") {
		return fmt.Errorf("redisfeed: follow edge %+v: id (without '|'), user and author are required", e)
	}
	return checkParties(e.User, e.Author)
}

// checkParties refuses a user or author whose name starts with '}': its
// keys would have an empty hash tag, so the two keys of one side of the
// graph, which one script writes, would fall in different cluster slots.
func checkParties(user, author string) error {
	for _, name := range []string{user, author} {
		if strings.HasPrefix(name, "}") {
			return fmt.Errorf("redisfeed: follow of %q and %q: a name must not start with '}'", user, author)
		}
	}
	return nil
}

// Follow records the edge on the user's side, then mirrors the edge the
// user's side holds onto the author's. The two sides live in different
// slots, so this is two steps; a retried Follow (a redelivered event)
// completes one that failed between them.
func (s *Store) Follow(ctx context.Context, edge schemas.FollowEdge) (bool, int, error) {
	if err := checkEdge(edge); err != nil {
		return false, 0, err
	}
	res, err := followScript.Run(ctx, s.rdb, []string{s.followingKey(edge.User), s.followingByID(edge.User)}, edge.Author, edge.ID).Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redisfeed: %s follows %s: %w", edge.User, edge.Author, classify(ctx, err))
	}
	if len(res) != 3 {
		return false, 0, fmt.Errorf("redisfeed: %s follows %s: unexpected reply %v", edge.User, edge.Author, res)
	}
	added, okAdded := res[0].(int64)
	stored, okID := res[1].(string)
	count, okCount := res[2].(int64)
	if !okAdded || !okID || !okCount {
		return false, 0, fmt.Errorf("redisfeed: %s follows %s: unexpected reply %v", edge.User, edge.Author, res)
	}
	err = mirrorScript.Run(ctx, s.rdb, []string{s.followersKey(edge.Author), s.followersByID(edge.Author)}, edge.User, stored).Err()
	if err != nil {
		return false, 0, fmt.Errorf("redisfeed: record %s as a follower of %s: %w", edge.User, edge.Author, classify(ctx, err))
	}
	return added == 1, int(count), nil
}

// Unfollow removes the edge from both sides in one pipeline; the author's
// side is cleared even when the user's was, so a retry completes it.
func (s *Store) Unfollow(ctx context.Context, user, author string) (bool, error) {
	if err := checkParties(user, author); err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		userSide := unfollowScript.EvalSha(ctx, pipe, []string{s.followingKey(user), s.followingByID(user)}, author)
		unfollowScript.EvalSha(ctx, pipe, []string{s.followersKey(author), s.followersByID(author)}, user)
		_, err := execPipe(ctx, pipe)
		if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// A pipeline cannot fall back to EVAL: load the script, go again.
			if err = unfollowScript.Load(ctx, s.rdb).Err(); err == nil {
				continue
			}
		}
		if err != nil {
			return false, fmt.Errorf("redisfeed: %s unfollows %s: %w", user, author, classify(ctx, err))
		}
		removed, err := userSide.Int()
		if err != nil {
			return false, fmt.Errorf("redisfeed: %s unfollows %s: %w", user, author, err)
		}
		return removed == 1, nil
	}
}

// Following pages the authors user follows, newest edge first.
func (s *Store) Following(ctx context.Context, user, before string, limit int) ([]schemas.FollowEdge, error) {
	return s.edges(ctx, s.followingByID(user), before, limit, func(id, author string) schemas.FollowEdge {
		return schemas.FollowEdge{ID: id, User: user, Author: author}
	})
}

// Followers pages the users who follow author, newest edge first.
func (s *Store) Followers(ctx context.Context, author, before string, limit int) ([]schemas.FollowEdge, error) {
	return s.edges(ctx, s.followersByID(author), before, limit, func(id, user string) schemas.FollowEdge {
		return schemas.FollowEdge{ID: id, User: user, Author: author}
	})
}

func (s *Store) edges(ctx context.Context, key, before string, limit int, edge func(id, other string) schemas.FollowEdge) ([]schemas.FollowEdge, error) {
	if limit <= 0 {
		return []schemas.FollowEdge{}, nil
	}
	members, err := s.rdb.ZRangeArgs(ctx, pageArgs(key, before, limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfeed: page %s: %w", key, classify(ctx, err))
	}
	out := make([]schemas.FollowEdge, len(members))
	for i, m := range members {
		id, other, err := cutEdge(m)
		if err != nil {
			return nil, err
		}
		out[i] = edge(id, other)
	}
	return out, nil
}

// FollowCounts answers both counts in one pipeline.
func (s *Store) FollowCounts(ctx context.Context, user, author string) (following, followers int, err error) {
	pipe := s.rdb.Pipeline()
	fing := pipe.ZCard(ctx, s.followingByID(user))
	fers := pipe.ZCard(ctx, s.followersByID(author))
	if _, err := execPipe(ctx, pipe); err != nil {
		return 0, 0, fmt.Errorf("redisfeed: follow counts of %s and %s: %w", user, author, classify(ctx, err))
	}
	return int(fing.Val()), int(fers.Val()), nil
}

// Follows reports, for each author, whether user follows it.
func (s *Store) Follows(ctx context.Context, user string, authors []string) ([]bool, error) {
	out := make([]bool, len(authors))
	if len(authors) == 0 {
		return out, nil
	}
	ids, err := s.rdb.HMGet(ctx, s.followingKey(user), authors...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfeed: does %s follow %d authors: %w", user, len(authors), classify(ctx, err))
	}
	for i, id := range ids {
		out[i] = id != nil
	}
	return out, nil
}
