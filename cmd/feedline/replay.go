package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"feedline/connectors/elasticsearch"
	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/stages/fanout"
	"feedline/stages/index"
	"feedline/stages/normalise"
	"feedline/topology"
)

// toolSetup reads a one-off command's settings, refuses them unless need
// says they are fine, and connects to the running system's JetStream (see
// connectTool).
func toolSetup(ctx context.Context, args []string, stderr io.Writer, need func(serveConfig) error) (serveConfig, *pipeline.Bus, error) {
	cfg, err := parseServeConfig(args, stderr)
	if err != nil {
		return cfg, nil, err
	}
	if err := need(cfg); err != nil {
		return cfg, nil, err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return cfg, nil, err
	}
	if err := declare(ctx, cfg, bus); err != nil {
		bus.Close()
		return cfg, nil, err
	}
	return cfg, bus, nil
}

// reindexCmd builds a new Elasticsearch index version from the PRODUCTS log
// and swaps the alias to it; searches never see a gap.
func reindexCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, bus, err := toolSetup(ctx, args, stderr, func(cfg serveConfig) error {
		if len(cfg.ESURLs) == 0 {
			return errors.New("reindex builds a new Elasticsearch index version behind the alias; set --es-url (FEEDLINE_ES_URL)")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer bus.Close()
	return reindex(ctx, cfg, bus, stdout, stderr)
}

// reindex is feedline reindex once its settings are read and JetStream is
// reached: the running system's index stage keeps writing meanwhile.
func reindex(ctx context.Context, cfg serveConfig, bus *pipeline.Bus, stdout, stderr io.Writer) error {
	ix, err := openIndex(ctx, cfg, bus)
	if err != nil {
		return err
	}
	defer ix.Close()
	es := ix.(*elasticsearch.Index)
	from, err := es.Current(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	v := esVersions{ix: es}
	defer func() {
		if v.next != nil {
			_ = v.next.Close()
		}
	}()
	r, err := index.Reindex(ctx, bus, &v, func(p index.Rebuilt) {
		fmt.Fprintf(stderr, "\r%d changes from %d batches", p.Changes, p.Batches)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "alias %s: %s → %s; %d changes from %d product batches in %s (%d refused, %d skipped)\n",
		es.Alias(), from, v.promoted, r.Changes, r.Batches, time.Since(start).Round(time.Millisecond), r.Rejected, r.Skipped)
	fmt.Fprintf(stdout, "the old index %s is kept; delete it once the new one looks right\n", from)
	return nil
}

// esVersions adapts the Elasticsearch index to index.Versions.
type esVersions struct {
	ix       *elasticsearch.Index
	next     *elasticsearch.Index // the version being built, closed after
	promoted string
}

func (v *esVersions) NewVersion(ctx context.Context) (schemas.ProductIndex, error) {
	next, err := v.ix.NewVersion(ctx)
	if err != nil {
		return nil, err
	}
	v.next = next
	return next, nil
}

func (v *esVersions) Promote(ctx context.Context, next schemas.ProductIndex) error {
	n := next.(*elasticsearch.Index)
	if err := v.ix.Promote(ctx, n); err != nil {
		return err
	}
	v.promoted = n.Target()
	return nil
}

// replayCmd rebuilds derived state from the log on demand: the feed state
// in Redis now; state kept in a process (the embedded feed state,
// normalise's catalog) at its next start, by removing its checkpoint.
func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "feeds" && args[0] != "catalog") {
		return errors.New(`usage: feedline replay feeds [--redis URL] [--nats URL] | feedline replay catalog [--data DIR]`)
	}
	if args[0] == "catalog" {
		return dropCheckpoint(args[1:], normalise.CheckpointName, "normalise's change-detection catalog", stdout, stderr)
	}
	if cfg, err := parseServeConfig(args[1:], stderr); err == nil && cfg.RedisURL == "" {
		return dropCheckpoint(args[1:], feedsCheckpoint, "the embedded feed state", stdout, stderr)
	}
	cfg, bus, err := toolSetup(ctx, args[1:], stderr, func(serveConfig) error { return nil })
	if err != nil {
		return err
	}
	defer bus.Close()
	store, err := openFeedStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	kv, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		return err
	}
	kvReaders, err := bus.KV(ctx, topology.BucketReaders)
	if err != nil {
		return err
	}
	st := &fanout.Stage{Store: store, Posts: natskv.Posts{KV: kv, JS: bus.JetStream()}, Reads: natskv.ReadLog{KV: kvReaders}, Policy: cfg.Feed, Log: cfg.Log}
	start := time.Now()
	r, err := st.Replay(ctx, bus)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "feeds replayed: the last reads of %d readers, %d shopper writes, %d product batches (%d skipped) in %s\n",
		r.Readers, r.Social, r.Catalog, r.Skipped, time.Since(start).Round(time.Millisecond))
	return nil
}

// dropCheckpoint removes the named checkpoint of the data directory, so
// the next start rebuilds what it holds from the whole log.
func dropCheckpoint(args []string, name, what string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, stderr)
	if err != nil {
		return err
	}
	if err := pipeline.NewCheckpoints(checkpointDir(cfg.DataDir), nil).Remove(name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is rebuilt from the whole log at the next start of feedline serve --data %s\n", what, cfg.DataDir)
	return nil
}
