package redisfeed

import "github.com/redis/go-redis/v9"

// WithHook wraps every command the store sends (and every pipeline) in h,
// for instrumentation such as tracing; hooks run in the order given.
func WithHook(h redis.Hook) Option {
	return func(s *Store) { s.hooks = append(s.hooks, h) }
}
