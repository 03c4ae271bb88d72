// Package parquetsink stores analytics rows as Parquet files on local disk,
// the embedded default of the analytics stage.
//
// Files are laid out as <dir>/<table>/date=YYYY-MM-DD/part-<ULID>.parquet,
// one Hive-style partition per UTC day, so DuckDB and ClickHouse can query
// the tree directly. A file appears under its final name only once it is
// complete and on disk; readers never see a partial one.
package parquetsink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"feedline/schemas"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("parquetsink: sink closed")

const (
	partitionPrefix = "date="
	dayLayout       = "2006-01-02"
	filePrefix      = "part-"
	fileSuffix      = ".parquet"
	// Temp files start with "." and end with ".tmp" so neither hidden-file
	// aware tools nor a "*.parquet" glob ever pick one up.
	tempPrefix = ".part-"
	tempSuffix = ".tmp"

	// defaultRowGroupRows matches DuckDB's own row group size: large enough
	// for good compression and statistics, small enough to scan in parallel.
	defaultRowGroupRows = 122_880
)

// Sink writes analytics batches as Parquet files under one directory. It is
// safe for concurrent use. One directory belongs to one Sink at a time: Open
// removes temp files it finds, including those of another live writer.
type Sink struct {
	dir    string
	log    *slog.Logger
	writer []parquet.WriterOption

	mu     sync.RWMutex // held for reading by Write, for writing by Close
	closed bool
}

var _ schemas.AnalyticsSink = (*Sink)(nil)

type options struct {
	log          *slog.Logger
	codec        compress.Codec
	rowGroupRows int64
}

// Option configures a Sink.
type Option func(*options)

// WithLogger sets the logger; slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithCompression sets the page compression codec; zstd otherwise.
func WithCompression(c compress.Codec) Option { return func(o *options) { o.codec = c } }

// WithRowGroupRows caps the rows of one row group.
func WithRowGroupRows(n int64) Option { return func(o *options) { o.rowGroupRows = n } }

// Open prepares dir (creating it if needed) and removes temp files a crashed
// writer left behind.
func Open(dir string, opts ...Option) (*Sink, error) {
	o := options{
		log: slog.Default(),
		// zstd: analytics files are written once and scanned many times, so
		// its better ratio than snappy pays off; both readers decode it fast.
		codec:        &parquet.Zstd,
		rowGroupRows: defaultRowGroupRows,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parquetsink: create %s: %w", dir, err)
	}
	removed, err := removeTempFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("parquetsink: remove temp files in %s: %w", dir, err)
	}
	if removed > 0 {
		o.log.Info("removed unfinished analytics files", "dir", dir, "files", removed)
	}
	return &Sink{
		dir: dir,
		log: o.log,
		writer: []parquet.WriterOption{
			parquet.Compression(o.codec),
			parquet.MaxRowsPerRowGroup(o.rowGroupRows),
			// Version 1 data pages are read by every Parquet reader, older
			// ClickHouse native readers included; every analytics column is
			// required, so version 2's separate level encoding gains nothing.
			parquet.DataPageVersion(1),
			// A price history read skips the row groups of other products
			// by this filter (~1.25 bytes per row).
			parquet.BloomFilters(parquet.SplitBlockFilter(10, productIDColumn)),
		},
	}, nil
}

// Write stores each table's rows of b, one file per table and UTC day. When
// it returns nil every row is on disk. On error some files may already be
// complete; a retry writes those rows again, which readers deduplicate.
func (s *Sink) Write(ctx context.Context, b schemas.AnalyticsBatch) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := writeTable(ctx, s, schemas.TableProductChanges, b.ProductChanges,
		func(r *schemas.ProductChangeRow) time.Time { return r.ChangedAt }); err != nil {
		return err
	}
	if err := writeTable(ctx, s, schemas.TablePriceHistory, b.PriceHistory,
		func(r *schemas.PriceHistoryRow) time.Time { return r.ChangedAt }); err != nil {
		return err
	}
	if err := writeTable(ctx, s, schemas.TableUploadRuns, b.UploadRuns,
		func(r *schemas.UploadRunRow) time.Time { return r.FinishedAt }); err != nil {
		return err
	}
	if err := writeTable(ctx, s, schemas.TableSearchQueries, b.SearchQueries,
		func(r *schemas.SearchQueryRow) time.Time { return r.At }); err != nil {
		return err
	}
	return writeTable(ctx, s, schemas.TableFeedEvents, b.FeedEvents,
		func(r *schemas.FeedEventRow) time.Time { return r.At })
}

// Close makes further Writes fail; it waits for Writes in progress.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// writeTable splits rows by the UTC day of their time column, keeping their
// order within a day, and writes one file per day.
func writeTable[T any](ctx context.Context, s *Sink, table string, rows []T, at func(*T) time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	for _, part := range splitByDay(rows, at) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("parquetsink: %s %s: %w", table, part.day, err)
		}
		path, err := writeFile(s.dir, table, part.day.String(), part.rows, s.writer)
		if err != nil {
			return fmt.Errorf("parquetsink: %s %s: %w", table, part.day, err)
		}
		s.log.Debug("analytics file written", "table", table, "day", part.day, "rows", len(part.rows), "path", path)
	}
	return nil
}

// utcDay is a calendar day in UTC; comparable, so it keys a map without
// formatting a string per row.
type utcDay struct {
	year  int
	month time.Month
	day   int
}

func dayOfTime(t time.Time) utcDay {
	y, m, d := t.UTC().Date()
	return utcDay{y, m, d}
}

func (d utcDay) String() string {
	return time.Date(d.year, d.month, d.day, 0, 0, 0, 0, time.UTC).Format(dayLayout)
}

type partition[T any] struct {
	day  utcDay
	rows []T
}

// splitByDay groups rows by UTC day, days ascending. A batch of a single day,
// the common case, is passed through without copying.
func splitByDay[T any](rows []T, at func(*T) time.Time) []partition[T] {
	first := dayOfTime(at(&rows[0]))
	i := 1
	for i < len(rows) && dayOfTime(at(&rows[i])) == first {
		i++
	}
	if i == len(rows) {
		return []partition[T]{{first, rows}}
	}
	byDay := make(map[utcDay][]T)
	byDay[first] = append([]T(nil), rows[:i]...)
	for j := i; j < len(rows); j++ {
		d := dayOfTime(at(&rows[j]))
		byDay[d] = append(byDay[d], rows[j])
	}
	parts := make([]partition[T], 0, len(byDay))
	for d, r := range byDay {
		parts = append(parts, partition[T]{d, r})
	}
	slices.SortFunc(parts, func(a, b partition[T]) int {
		return cmp.Or(cmp.Compare(a.day.year, b.day.year), cmp.Compare(a.day.month, b.day.month), cmp.Compare(a.day.day, b.day.day))
	})
	return parts
}

// writeFile writes rows to a temp file in the partition directory, syncs it,
// renames it to its final name and syncs the directory, so the file is
// either absent or complete after a crash.
func writeFile[T any](root, table, day string, rows []T, opts []parquet.WriterOption) (path string, err error) {
	partition, err := ensurePartition(root, table, day)
	if err != nil {
		return "", err
	}
	id := ulid.Make().String()
	tmp, err := os.CreateTemp(partition, tempPrefix+id+"-*"+tempSuffix)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	// Naming the schema root after the table labels the file for tools that
	// show it; the columns are those of T.
	schema := parquet.NewSchema(table, parquet.SchemaOf(new(T)))
	w := parquet.NewGenericWriter[T](tmp, append(slices.Clip(opts), schema)...)
	if _, err := w.Write(rows); err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	path = filepath.Join(partition, filePrefix+id+fileSuffix)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	if err := syncDir(partition); err != nil {
		return "", err
	}
	return path, nil
}

// ensurePartition creates <root>/<table>/date=<day> as needed, syncing the
// parent of each directory it creates so the new entry survives a crash.
func ensurePartition(root, table, day string) (string, error) {
	dir := root
	for _, name := range []string{table, partitionPrefix + day} {
		parent := dir
		dir = filepath.Join(parent, name)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := syncDir(parent); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}

// removeTempFiles deletes temp files in the partition directories under dir.
func removeTempFiles(dir string) (int, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*", partitionPrefix+"*", tempPrefix+"*"+tempSuffix))
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
