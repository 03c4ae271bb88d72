package fanout

import (
	"context"
	"testing"

	"feedline/connectors/feedstore"
	"feedline/connectors/feedstoretest"
	"feedline/schemas"
)

// BenchmarkRebuild5000Followees rebuilds the feed of a reader following
// 5,000 authors of 64 entries each, to the default cap of 800, on both
// stores (Redis when FEEDLINE_TEST_REDIS is set, the Redis Cluster when
// FEEDLINE_TEST_REDIS_CLUSTER is).
func BenchmarkRebuild5000Followees(b *testing.B) {
	rebuild := func(ctx context.Context, s schemas.FeedStore, reader string) error {
		r := &Reader{Store: s}
		return r.Rebuild(ctx, reader)
	}
	b.Run("embedded", func(b *testing.B) {
		s := feedstore.New()
		defer s.Close()
		feedstoretest.BenchRebuild(b, s, rebuild, 5000, 64, 800)
	})
	b.Run("redis", func(b *testing.B) {
		feedstoretest.BenchRebuild(b, redisStore(b), rebuild, 5000, 64, 800)
	})
	b.Run("redis-cluster", func(b *testing.B) {
		feedstoretest.BenchRebuild(b, redisClusterStore(b), rebuild, 5000, 64, 800)
	})
}
