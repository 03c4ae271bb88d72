package redisfeed

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// classify marks err as schemas.ErrUnavailable when it is the server's or
// the network's fault (see schemas.MarkUnavailable).
func classify(ctx context.Context, err error) error {
	return schemas.MarkUnavailable(ctx, err, unavailable)
}

func unavailable(err error) bool {
	switch {
	case schemas.IsNetworkFailure(err),
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		// Replies of a server that cannot serve now: starting, failing
		// over, out of memory, or busy running a script.
		redis.IsLoadingError(err),
		redis.IsReadOnlyError(err),
		redis.IsClusterDownError(err),
		redis.IsTryAgainError(err),
		redis.IsMasterDownError(err),
		redis.IsMaxClientsError(err),
		redis.IsOOMError(err),
		redis.HasErrorPrefix(err, "BUSY"):
		return true
	}
	return false
}
