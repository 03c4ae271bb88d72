package main

import (
	"context"
	"path/filepath"

	"feedline/connectors/clickhouse"
	"feedline/connectors/elasticsearch"
	"feedline/connectors/embedsearch"
	"feedline/connectors/feedstore"
	"feedline/connectors/parquetsink"
	"feedline/connectors/redisfeed"
	"feedline/schemas"
)

// openIndex opens the search backend the configuration names: Elasticsearch
// when addresses are set, else the embedded index under the data directory.
func openIndex(ctx context.Context, cfg serveConfig) (schemas.ProductIndex, error) {
	if len(cfg.ESURLs) == 0 {
		ix, err := embedsearch.Open(filepath.Join(cfg.DataDir, "search"))
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
