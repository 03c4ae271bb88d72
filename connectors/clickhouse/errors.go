package clickhouse

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2"

	"feedline/schemas"
)

// Server error codes that mean "the server cannot take this now" rather
// than "these rows are wrong": the stage pauses and retries them later.
var unavailableCodes = map[int32]string{
	159: "TIMEOUT_EXCEEDED",
	173: "CANNOT_ALLOCATE_MEMORY",
	201: "QUOTA_EXCEEDED",
	202: "TOO_MANY_SIMULTANEOUS_QUERIES",
	203: "NO_FREE_CONNECTION",
	209: "SOCKET_TIMEOUT",
	210: "NETWORK_ERROR",
	236: "ABORTED",
	241: "MEMORY_LIMIT_EXCEEDED",
	242: "TABLE_IS_READ_ONLY",
	243: "NOT_ENOUGH_SPACE",
	252: "TOO_MANY_PARTS",
	279: "ALL_CONNECTION_TRIES_FAILED",
	289: "REPLICA_IS_NOT_IN_QUORUM",
	319: "UNKNOWN_STATUS_OF_INSERT",
	364: "RECEIVED_ERROR_TOO_MANY_REQUESTS",
	394: "QUERY_WAS_CANCELLED",
	439: "CANNOT_SCHEDULE_TASK",
	473: "DEADLOCK_AVOIDED",
	745: "SERVER_OVERLOADED",
	999: "KEEPER_EXCEPTION",
}

// Codes a concurrent "CREATE … IF NOT EXISTS" may still raise when another
// worker created the same object between the check and the create.
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

// classify marks err as schemas.ErrUnavailable when it is the server's or
// the network's fault (see schemas.MarkUnavailable).
func classify(ctx context.Context, err error) error {
	return schemas.MarkUnavailable(ctx, err, unavailable)
}

func unavailable(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := unavailableCodes[ex.Code]
		return ok
	}
	return schemas.IsNetworkFailure(err) ||
		errors.Is(err, sqldriver.ErrBadConn) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}

func exceptionCode(err error) int32 {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 0
}
