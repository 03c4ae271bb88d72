package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"feedline/pipeline"
	"feedline/topology"
)

// benchNATS is where `feedline bench --nats` runs its decode + normalise
// step a second time, beside the embedded default: an outside NATS (a
// cluster) with streams at --nats-replicas.
type benchNATS struct {
	urls     *string
	replicas *int
	user     *string
}

func benchNATSFlags(fs *flag.FlagSet) *benchNATS {
	return &benchNATS{
		urls: fs.String("nats", "", "also run decode + normalise on this outside NATS (comma-separated URLs), beside the embedded default; "+
			"feedline's streams and buckets there are deleted before and after: never point it at a system in use"),
		replicas: fs.Int("nats-replicas", 3, "replicas of the streams and buckets on --nats"),
		user:     fs.String("nats-user", "admin", "NATS user for --nats, who may create and delete streams; its password is FEEDLINE_NATS_PASSWORD"),
	}
}

// benchBus is one outside NATS to run a step on.
type benchBus struct {
	urls     string
	replicas int
	auth     pipeline.ClientAuth
}

func (b *benchNATS) config() (*benchBus, error) {
	if *b.urls == "" {
		return nil, nil
	}
	if *b.replicas < 1 || *b.replicas > 5 {
		return nil, fmt.Errorf("--nats-replicas %d: want 1 to 5", *b.replicas)
	}
	auth := pipeline.ClientAuth{User: *b.user, Password: os.Getenv("FEEDLINE_NATS_PASSWORD")}
	if err := auth.Check(*b.urls); err != nil {
		return nil, fmt.Errorf("bench --nats: %w (set FEEDLINE_NATS_PASSWORD)", err)
	}
	return &benchBus{urls: *b.urls, replicas: *b.replicas, auth: auth}, nil
}

func (b benchBus) name() string {
	return fmt.Sprintf("NATS (%d nodes, R%d)", len(strings.Split(b.urls, ",")), b.replicas)
}

// apply points cfg at the outside NATS and empties it of feedline's
// streams, so the step starts from nothing, as on a fresh embedded server.
func (b benchBus) apply(ctx context.Context, cfg *serveConfig) error {
	cfg.NATS, cfg.NATSReplicas, cfg.NATSAuth = b.urls, b.replicas, b.auth
	return b.empty(ctx)
}

// empty deletes feedline's streams, buckets and object store on the outside NATS.
func (b benchBus) empty(ctx context.Context) error {
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{URL: b.urls, Auth: b.auth, Replicas: b.replicas, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer bus.Close()
	return removeDeclared(ctx, bus)
}

// removeDeclared deletes every stream Declare creates; for benchmarks and
// tests on a NATS of their own.
func removeDeclared(ctx context.Context, bus *pipeline.Bus) error {
	return bus.Undeclare(ctx, topology.Feedline())
}
