package feed

import (
	"context"
	"testing"
	"time"

	"feedline/connectors/feedstore"
	"feedline/connectors/feedstoretest"
	"feedline/connectors/redisfeed"
	"feedline/connectors/redisfeed/redistest"
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
		feedstoretest.BenchRebuild(b, redisStoreAt(b, redistest.URL(b, redistest.ServerEnv)), rebuild, 5000, 64, 800)
	})
	b.Run("redis-cluster", func(b *testing.B) {
		feedstoretest.BenchRebuild(b, redisStoreAt(b, redistest.URL(b, redistest.ClusterEnv)), rebuild, 5000, 64, 800)
	})
}

// redisStoreAt opens the Redis feed store at url under a fresh key prefix,
// deleted when the benchmark ends.
func redisStoreAt(tb testing.TB, url string) *redisfeed.Store {
	tb.Helper()
	prefix := "feedtest:" + newID() + ":"
	st, err := redisfeed.Open(tb.Context(), url, redisfeed.WithPrefix(prefix))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close()
		rc, err := redisfeed.NewClient(url)
		if err != nil {
			tb.Error(err)
			return
		}
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := redisfeed.DeleteKeys(ctx, rc, prefix+"*"); err != nil {
			tb.Errorf("delete the benchmark's keys: %v", err)
		}
	})
	return st
}
