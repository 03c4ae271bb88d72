package feedstore

import (
	"context"

	"feedline/schemas"
)

// lockPair write-locks the shards of a user and an author in index order,
// so two follows of crossing shards cannot deadlock; unlock undoes it.
func (s *Store) lockPair(user, author string) (us, as *shard, unlock func(), err error) {
	ui, ai := s.shardIndex(user), s.shardIndex(author)
	us, as = s.shards[ui], s.shards[ai]
	if ui == ai {
		if err := us.lock(); err != nil {
			return nil, nil, nil, err
		}
		return us, as, us.mu.Unlock, nil
	}
	first, second := us, as
	if ai < ui {
		first, second = as, us
	}
	if err := first.lock(); err != nil {
		return nil, nil, nil, err
	}
	if err := second.lock(); err != nil {
		first.mu.Unlock()
		return nil, nil, nil, err
	}
	return us, as, func() { second.mu.Unlock(); first.mu.Unlock() }, nil
}

// Follow records the edge on both sides at once; a user who follows
// edge.Author already keeps the stored edge.
func (s *Store) Follow(ctx context.Context, edge schemas.FollowEdge) (bool, int, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if err := checkEdge(edge); err != nil {
		return false, 0, err
	}
	us, as, unlock, err := s.lockPair(edge.User, edge.Author)
	if err != nil {
		return false, 0, err
	}
	defer unlock()
	following := us.following[edge.User]
	if following == nil {
		following = newEdgeSet(us.free)
		us.following[edge.User] = following
	}
	if _, ok := following.byOther[edge.Author]; ok {
		return false, following.count(), nil
	}
	followers := as.followers[edge.Author]
	if followers == nil {
		followers = newEdgeSet(as.free)
		as.followers[edge.Author] = followers
	}
	following.put(edge.Author, edge)
	followers.put(edge.User, edge)
	return true, following.count(), nil
}

// Unfollow removes the edge from both sides.
func (s *Store) Unfollow(ctx context.Context, user, author string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	us, as, unlock, err := s.lockPair(user, author)
	if err != nil {
		return false, err
	}
	defer unlock()
	following, followers := us.following[user], as.followers[author]
	if following == nil || !following.remove(author) {
		return false, nil
	}
	if following.count() == 0 {
		delete(us.following, user)
	}
	if followers != nil {
		followers.remove(user)
		if followers.count() == 0 {
			delete(as.followers, author)
		}
	}
	return true, nil
}

// Following pages the authors user follows, newest edge first.
func (s *Store) Following(ctx context.Context, user, before string, limit int) ([]schemas.FollowEdge, error) {
	return s.edges(ctx, user, before, limit, func(sh *shard) *edgeSet { return sh.following[user] })
}

// Followers pages the users who follow author, newest edge first.
func (s *Store) Followers(ctx context.Context, author, before string, limit int) ([]schemas.FollowEdge, error) {
	return s.edges(ctx, author, before, limit, func(sh *shard) *edgeSet { return sh.followers[author] })
}

func (s *Store) edges(ctx context.Context, key, before string, limit int, set func(*shard) *edgeSet) ([]schemas.FollowEdge, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := s.shardOf(key)
	if err := sh.rlock(); err != nil {
		return nil, err
	}
	defer sh.mu.RUnlock()
	return set(sh).page(before, limit), nil
}

// FollowCounts answers how many authors user follows and how many users
// follow author.
func (s *Store) FollowCounts(ctx context.Context, user, author string) (following, followers int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	us := s.shardOf(user)
	if err := us.rlock(); err != nil {
		return 0, 0, err
	}
	following = us.following[user].count()
	us.mu.RUnlock()
	as := s.shardOf(author)
	if err := as.rlock(); err != nil {
		return 0, 0, err
	}
	followers = as.followers[author].count()
	as.mu.RUnlock()
	return following, followers, nil
}

// Follows reports, for each author, whether user follows it.
func (s *Store) Follows(ctx context.Context, user string, authors []string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := s.shardOf(user)
	if err := sh.rlock(); err != nil {
		return nil, err
	}
	defer sh.mu.RUnlock()
	out := make([]bool, len(authors))
	if following := sh.following[user]; following != nil {
		for i, a := range authors {
			_, out[i] = following.byOther[a]
		}
	}
	return out, nil
}
