// Package bench measures feedline end to end, as `feedline bench` runs it:
// the catalog path (decode, normalise, upload to searchable) and the news
// feed (fan-out, freshness, reads, memory). It starts whole systems in this
// process through a Launcher the binary gives it.
package bench

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

// Launcher is what the bench needs of the binary: a whole system started
// in this process, and an outside NATS emptied of feedline's streams.
type Launcher interface {
	Start(ctx context.Context, r Run) (System, error)
	// EmptyNATS deletes feedline's streams, buckets and object store on n,
	// so a run starts from nothing, as on a fresh embedded server.
	EmptyNATS(ctx context.Context, n NATS) error
}

// Run is the system one measurement starts; zero fields are serve's
// defaults. The API listens on a free loopback port.
type Run struct {
	DataDir          string
	Stages           []string // nil: every stage
	AdminKey         string
	TokenKey         string
	MaxDeletePercent int
	RedisURL         string // empty: feed state in the process
	ClickHouseURL    string // empty: Parquet files
	ESURLs           []string
	ESAlias          string
	ESTransport      http.RoundTripper
	NATS             *NATS // nil: the embedded server
	// CheckpointEvery is serve's --checkpoint-every; 0: no checkpoints,
	// so a start replays the whole log.
	CheckpointEvery time.Duration
	Log             *slog.Logger
}

// NATS is an outside NATS (a cluster) a run uses, with its streams at Replicas.
type NATS struct {
	URLs     string // comma-separated
	Replicas int
	Auth     pipeline.ClientAuth
}

// System is one started feedline.
type System interface {
	Addr() string // the API's host:port
	// Feeds is the feed state; nil when neither the API nor fan-out runs.
	Feeds() schemas.FeedStore
	// Posts is the post store the API writes.
	Posts(ctx context.Context) (schemas.PostStore, error)
	// Disk is how the data directory's bytes divide between its parts.
	Disk(ctx context.Context) (Disk, error)
	// Expire runs the sweep of stored files as it will run once the
	// upload retention has passed: finished uploads lose their files and
	// raw batches.
	Expire(ctx context.Context) error
	Stop(ctx context.Context) error
}

// workDir is dir (created if missing), or when it is empty a new temporary
// directory named by pattern that cleanup removes.
func workDir(dir, pattern string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	tmp, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { _ = os.RemoveAll(tmp) }, nil
}
