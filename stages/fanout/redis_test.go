package fanout

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"feedline/connectors/redisfeed"
)

// redisStore opens the Redis feed store of FEEDLINE_TEST_REDIS under a
// fresh key prefix, deleted when the test ends; without a server it skips
// (and fails under CI).
func redisStore(tb testing.TB) *redisfeed.Store {
	tb.Helper()
	url := os.Getenv("FEEDLINE_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("FEEDLINE_TEST_REDIS is not set; .ci/run starts a Redis for this test")
		}
		tb.Skip("FEEDLINE_TEST_REDIS is not set")
	}
	prefix := "fanouttest:" + newID() + ":"
	st, err := redisfeed.Open(tb.Context(), url, redisfeed.WithPrefix(prefix))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close()
		opt, err := redis.ParseURL(url)
		if err != nil {
			tb.Error(err)
			return
		}
		rc := redis.NewClient(opt)
		defer rc.Close()
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				rc.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rc.Unlink(ctx, keys...)
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("delete the test's keys: %v", err)
		}
	})
	return st
}
