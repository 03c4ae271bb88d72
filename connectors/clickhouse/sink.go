// Package clickhouse stores analytics rows in ClickHouse, the analytics
// backend of the distributed setup. Tables and daily views are created by the
// versioned migrations in schemas (see Migrate); Write sends one native insert
// per table and returns once ClickHouse confirmed each.
//
// Only the native protocol (clickhouse://host:9000) is supported; the DDL and
// the inserts run on ClickHouse 18.16 and on current releases.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"feedline/schemas"
)

// ErrClosed is returned by Write and Healthy after Close.
var ErrClosed = errors.New("clickhouse: sink closed")

// Defaults for Config; short enough that an outage pauses the stage quickly.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultReadTimeout = 30 * time.Second
)

// Config says where the analytics tables live.
type Config struct {
	// DSN is clickhouse://user:password@host:9000/database?settings. The
	// database is created when missing; "default" when the DSN names none.
	DSN    string
	Logger *slog.Logger
	// DialTimeout bounds connecting; ReadTimeout bounds each wait for the
	// server while a query runs. Zero means the DSN's value or the default.
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

// Sink writes analytics batches to ClickHouse. It is safe for concurrent use.
type Sink struct {
	conn     driver.Conn
	database string // quoted, ready to prefix table names
	log      *slog.Logger

	mu     sync.RWMutex // held for reading by Write and Healthy, for writing by Close
	closed bool
}

var (
	_ schemas.AnalyticsSink = (*Sink)(nil)
	_ schemas.HealthChecker = (*Sink)(nil)
)

// Open connects, creates the database if it is missing and applies the
// schema migrations. A server that cannot be reached yields an error
// wrapping schemas.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: parse DSN: %w", err)
	}
	if opts.Protocol != clickhouse.Native {
		return nil, fmt.Errorf("clickhouse: DSN must use the native protocol (clickhouse://host:9000), not %s", opts.Protocol)
	}
	database := opts.Auth.Database
	if database == "" {
		database = "default"
	}
	// Connect without a database: it may not exist yet, and every statement
	// names it anyway.
	opts.Auth.Database = ""
	if cfg.DialTimeout > 0 {
		opts.DialTimeout = cfg.DialTimeout
	} else if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout > 0 {
		opts.ReadTimeout = cfg.ReadTimeout
	} else if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: connect to %s: %w", strings.Join(opts.Addr, ","), classify(ctx, err))
	}
	if err := execIdempotent(ctx, conn, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(database)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: create database %s: %w", database, err)
	}
	if err := Migrate(ctx, conn, database); err != nil {
		conn.Close()
		return nil, err
	}
	log.Info("clickhouse analytics ready", "addr", strings.Join(opts.Addr, ","), "database", database)
	return &Sink{conn: conn, database: quoteIdent(database), log: log}, nil
}

// Write inserts the batch, one native insert per non-empty table, and
// returns after ClickHouse confirmed all of them. When it fails part way,
// the tables written so far keep their rows; the retried batch writes them
// again and the engines collapse the copies. Failures of the server rather
// than of the rows wrap schemas.ErrUnavailable.
func (s *Sink) Write(ctx context.Context, b schemas.AnalyticsBatch) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if b.Len() == 0 {
		return nil
	}
	for _, in := range inserts(&b) {
		if err := s.insert(ctx, in); err != nil {
			return fmt.Errorf("clickhouse: insert %d rows into %s: %w", in.rows, in.table, err)
		}
	}
	return nil
}

func (s *Sink) insert(ctx context.Context, in insert) error {
	query := "INSERT INTO " + s.database + "." + quoteIdent(in.table) + " (" + strings.Join(in.names, ", ") + ")"
	batch, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return classify(ctx, err)
	}
	defer batch.Close()
	for i, values := range in.values {
		if err := batch.Column(i).Append(values); err != nil {
			return fmt.Errorf("column %s: %w", in.names[i], classify(ctx, err))
		}
	}
	if err := batch.Send(); err != nil {
		return classify(ctx, err)
	}
	return nil
}

// Healthy reports whether the server answers; failures wrap
// schemas.ErrUnavailable unless ctx itself was cancelled.
func (s *Sink) Healthy(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", classify(ctx, err))
	}
	return nil
}

// Close waits for running writes and closes the connections.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.conn.Close()
}

// quoteIdent quotes a database or table name for ClickHouse SQL.
func quoteIdent(name string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(name) + "`"
}
