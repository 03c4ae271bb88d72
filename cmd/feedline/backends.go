package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"feedline/connectors/clickhouse"
	"feedline/connectors/elasticsearch"
	"feedline/connectors/embedsearch"
	"feedline/connectors/feedstore"
	"feedline/connectors/parquetsink"
	"feedline/connectors/redisfeed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/stages/index"
)

// openIndex opens the search backend the configuration names: Elasticsearch
// when addresses are set, else the embedded index under the data directory,
// rebuilt from bus's log when it was written with another layout.
func openIndex(ctx context.Context, cfg serveConfig, bus *pipeline.Bus) (schemas.ProductIndex, error) {
	if len(cfg.ESURLs) == 0 {
		dir := filepath.Join(cfg.DataDir, "search")
		ix, err := embedsearch.Open(dir)
		if errors.Is(err, embedsearch.ErrIncompatible) {
			ix, err = rebuildEmbeddedIndex(ctx, dir, bus, cfg.Log)
		}
		if err != nil {
			return nil, err
		}
		if cfg.Tracing != nil {
			return tracedEmbedIndex{Index: ix, tr: tracerOf(cfg.Tracing)}, nil
		}
		return ix, nil
	}
	ix, err := elasticsearch.Open(ctx, elasticsearch.Config{
		Addresses: cfg.ESURLs, Username: cfg.ESUsername, Password: cfg.ESPassword, Alias: cfg.ESAlias,
		Transport: traceTransport(cfg.ESTransport, cfg.Tracing), Logger: cfg.Log.With("component", "elasticsearch"),
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// openAnalytics opens the analytics store: ClickHouse when a DSN is set,
// else Parquet files under the data directory.
func openAnalytics(ctx context.Context, cfg serveConfig) (schemas.AnalyticsSink, error) {
	if cfg.ClickHouseURL == "" {
		sink, err := parquetsink.Open(filepath.Join(cfg.DataDir, "analytics"))
		if err != nil {
			return nil, err
		}
		if cfg.Tracing != nil {
			return tracedParquet{Sink: sink, tr: tracerOf(cfg.Tracing)}, nil
		}
		return sink, nil
	}
	sink, err := clickhouse.Open(ctx, clickhouse.Config{DSN: cfg.ClickHouseURL, Logger: cfg.Log.With("component", "clickhouse")})
	if err != nil {
		return nil, err
	}
	if cfg.Tracing != nil {
		return tracedClickHouse{Sink: sink, tr: tracerOf(cfg.Tracing)}, nil
	}
	return sink, nil
}

// openFeedStore opens the news-feed state: Redis when a URL is set, else
// the in-process store.
func openFeedStore(ctx context.Context, cfg serveConfig) (schemas.FeedStore, error) {
	if cfg.RedisURL == "" {
		return feedstore.New(), nil
	}
	var opts []redisfeed.Option
	if cfg.RedisPrefix != "" {
		opts = append(opts, redisfeed.WithPrefix(cfg.RedisPrefix))
	}
	if cfg.Tracing != nil {
		opts = append(opts, redisfeed.WithHook(redisTracing{tr: tracerOf(cfg.Tracing)}))
	}
	st, err := redisfeed.Open(ctx, cfg.RedisURL, opts...)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// rebuildEmbeddedIndex replaces the index in dir, written with another
// layout, by one rebuilt from the whole product log. It is built beside the
// old one and swapped in only when complete: a start cut short finds the old
// index again and rebuilds once more, never a partial one that the index
// stage's acknowledged messages would leave incomplete.
func rebuildEmbeddedIndex(ctx context.Context, dir string, bus *pipeline.Bus, log *slog.Logger) (*embedsearch.Index, error) {
	start := time.Now()
	log.Warn("the search index was written with another layout: rebuilding it from the product log; searches wait until it is done", "dir", dir)
	next := dir + ".rebuilding"
	if err := os.RemoveAll(next); err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	ix, err := embedsearch.Open(next)
	if err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	last := time.Now()
	r, err := index.Rebuild(ctx, bus, ix, 1, func(p index.Rebuilt) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			log.Info("rebuilding the search index", "changes", p.Changes, "batches", p.Batches)
		}
	})
	if cerr := ix.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	if err := os.Rename(dir, old); err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	if err := os.Rename(next, dir); err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("rebuild the search index: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		log.Warn("could not remove the search index of the old layout", "dir", old, "err", err)
	}
	log.Info("search index rebuilt from the product log", "changes", r.Changes, "batches", r.Batches, "refused", r.Rejected, "took", time.Since(start).Round(time.Millisecond))
	return embedsearch.Open(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
