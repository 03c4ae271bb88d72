package fanout

import (
	"context"
	"testing"
	"time"

	"feedline/connectors/redisfeed"
	"feedline/connectors/redisfeed/redistest"
)

// redisStore opens the Redis feed store of FEEDLINE_TEST_REDIS under a
// fresh key prefix, deleted when the test ends; without a server it skips
// (and fails under CI).
func redisStore(tb testing.TB) *redisfeed.Store {
	tb.Helper()
	return redisStoreAt(tb, redistest.URL(tb, redistest.ServerEnv))
}

// redisClusterStore is redisStore on the Redis Cluster of
// FEEDLINE_TEST_REDIS_CLUSTER.
func redisClusterStore(tb testing.TB) *redisfeed.Store {
	tb.Helper()
	return redisStoreAt(tb, redistest.URL(tb, redistest.ClusterEnv))
}

func redisStoreAt(tb testing.TB, url string) *redisfeed.Store {
	tb.Helper()
	prefix := "fanouttest:" + newID() + ":"
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
			tb.Errorf("delete the test's keys: %v", err)
		}
	})
	return st
}
