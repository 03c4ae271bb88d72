package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// classify marks err as schemas.ErrUnavailable when it is the server's or
// the network's fault rather than the request's. A cancelled ctx is
// reported as such, never as an outage; an expired deadline is: the server
// did not answer in time.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		if errors.Is(ctxErr, context.Canceled) {
			return err
		}
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", schemas.ErrUnavailable, err)
	}
	return err
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
