package redisfeed

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// classify marks err as schemas.ErrUnavailable when it is the server's or
// the network's fault (see schemas.MarkUnavailable).
func classify(ctx context.Context, err error) error {
	return schemas.MarkUnavailable(ctx, err, unavailable)
}

func unavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
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
