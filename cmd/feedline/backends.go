package main

import (
	"context"
	"errors"
	"path/filepath"

	"feedline/connectors/embedsearch"
	"feedline/connectors/parquetsink"
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
		return ix, nil
	}
	return nil, errors.New("--es-url: this build has no Elasticsearch connector")
}

// openAnalytics opens the analytics store: ClickHouse when a DSN is set,
// else Parquet files under the data directory.
func openAnalytics(ctx context.Context, cfg serveConfig) (schemas.AnalyticsSink, error) {
	if cfg.ClickHouseURL == "" {
		sink, err := parquetsink.Open(filepath.Join(cfg.DataDir, "analytics"))
		if err != nil {
			return nil, err
		}
		return sink, nil
	}
	return nil, errors.New("--clickhouse: this build has no ClickHouse connector")
}
