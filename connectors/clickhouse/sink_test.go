package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"feedline/schemas"
)

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	_, database := testDatabase(t)
	ctx := context.Background()
	conn := connect(t, "")
	if err := conn.Exec(ctx, "CREATE DATABASE "+quoteIdent(database)); err != nil {
		t.Fatal(err)
	}

	// Several workers starting at once, each with its own connection.
	const workers = 6
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() { errs[i] = Migrate(ctx, connect(t, ""), database) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: Migrate: %v", i, err)
		}
	}
	// And once more when everything is in place.
	if err := Migrate(ctx, conn, database); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}

	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var want []uint32
	for _, m := range migrations {
		want = append(want, m.Version)
	}
	got, err := AppliedVersions(ctx, conn, database)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("applied versions = %v, want %v", got, want)
	}

	tables := queryStrings(t, conn, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", database)
	wantTables := []string{
		"feed_events", "feed_events_daily", "feed_events_daily_mv",
		"price_drops_daily", "price_drops_daily_mv", "price_history",
		"product_changes", "product_changes_daily", "product_changes_daily_mv",
		"schema_migrations", "search_queries", "search_queries_daily", "search_queries_daily_mv",
		"upload_runs", "upload_runs_daily", "upload_runs_daily_mv",
	}
	if !slices.Equal(tables, wantTables) {
		t.Errorf("tables = %v\nwant     %v", tables, wantTables)
	}
}

func TestMigrationsAreParsed(t *testing.T) {
	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migrations) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range migrations {
		if m.Version != uint32(i+1) {
			t.Errorf("migration %d has version %d; versions must count up from 1 without gaps", i, m.Version)
		}
		for _, stmt := range m.Statements {
			if strings.Contains(stmt, "--") || strings.HasSuffix(stmt, ";") {
				t.Errorf("%03d_%s: statement keeps a comment or separator: %q", m.Version, m.Name, stmt)
			}
			// Idempotent DDL only: concurrent starts run the same statement.
			if !strings.Contains(stmt, "IF NOT EXISTS") {
				t.Errorf("%03d_%s: statement is not IF NOT EXISTS: %.60q", m.Version, m.Name, stmt)
			}
			// Features ClickHouse 18.16 lacks.
			for _, word := range []string{"LowCardinality", "DateTime64", "Map(", "TTL", "Nullable"} {
				if strings.Contains(stmt, word) {
					t.Errorf("%03d_%s: uses %s, which ClickHouse 18.16 does not support", m.Version, m.Name, word)
				}
			}
		}
	}
}

// seed has two rows of every type with a distinct value in every column.
func seed() schemas.AnalyticsBatch {
	t0 := time.Date(2025, 3, 1, 23, 30, 15, 250e6, time.UTC)
	t1 := time.Date(2025, 4, 2, 8, 0, 59, 999e6, time.FixedZone("KST", 9*3600))
	return schemas.AnalyticsBatch{
		ProductChanges: []schemas.ProductChangeRow{
			{EventID: "acme:1@3", ProductID: "acme:1", Partner: "acme", SKU: "1", UploadID: "U1", Kind: "upsert", Version: 3,
				Title: "Trail shoe", Brand: "Hoka", Category: "Shoes > Hiking", Price: 12999, SalePrice: 9999, Currency: "EUR",
				Availability: "in_stock", ChangedAt: t0},
			{EventID: "naver:가-2@18446744073709551615", ProductID: "naver:가-2", Partner: "naver", SKU: "가-2", UploadID: "U2", Kind: "delete",
				Version: 1<<64 - 1, Title: "운동화 'quoted' \\ back", Brand: "", Category: "", Price: -1, SalePrice: 0, Currency: "KRW",
				Availability: "out_of_stock", ChangedAt: t1},
		},
		PriceHistory: []schemas.PriceHistoryRow{
			{EventID: "acme:1@3", ProductID: "acme:1", Partner: "acme", UploadID: "U1", Currency: "EUR", OldPrice: 12999, NewPrice: 9999, Version: 3, ChangedAt: t0},
			{EventID: "naver:가-2@7", ProductID: "naver:가-2", Partner: "naver", UploadID: "U2", Currency: "KRW", OldPrice: 50000, NewPrice: 65000, Version: 7, ChangedAt: t1},
		},
		UploadRuns: []schemas.UploadRunRow{
			{UploadID: "U1", Partner: "acme", Mode: "full", Format: "csv", MappingVersion: 4, ReceivedAt: t0.Add(-time.Minute), FinishedAt: t0,
				RowsRead: 1000, Accepted: 900, Unchanged: 50, Rejected: 50, Deleted: 7},
			{UploadID: "U2", Partner: "naver", Mode: "delta", Format: "naver_ep", MappingVersion: -2, ReceivedAt: t1.Add(-time.Hour), FinishedAt: t1,
				RowsRead: 3, Accepted: 1, Unchanged: 1, Rejected: 1, Deleted: 1},
		},
		SearchQueries: []schemas.SearchQueryRow{
			{EventID: "S1", Query: "trail shoe", Filters: "brand=Hoka", Sort: "price_asc", Results: 12, TookMs: 3.25, At: t0},
			{EventID: "S2", Query: "운동화", Filters: "", Sort: "", Results: 0, TookMs: 0.001, At: t1},
		},
		FeedEvents: []schemas.FeedEventRow{
			{EventID: "F1", Kind: schemas.FeedEventFollow, UserID: "u1", TargetKind: "shop", TargetID: "acme", Items: 0, At: t0},
			{EventID: "F2", Kind: schemas.FeedEventFeedRead, UserID: "u2", TargetKind: "", TargetID: "", Items: 20, At: t1},
		},
	}
}

// atSeconds is what a DateTime column gives back: whole seconds, UTC.
func atSeconds(t time.Time) time.Time { return t.Truncate(time.Second).UTC() }

func TestWriteRoundTripsEveryColumn(t *testing.T) {
	s, database := openSink(t)
	ctx := context.Background()
	want := seed()
	if err := s.Write(ctx, want); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for i := range want.ProductChanges {
		want.ProductChanges[i].ChangedAt = atSeconds(want.ProductChanges[i].ChangedAt)
	}
	for i := range want.PriceHistory {
		want.PriceHistory[i].ChangedAt = atSeconds(want.PriceHistory[i].ChangedAt)
	}
	for i := range want.UploadRuns {
		r := &want.UploadRuns[i]
		r.ReceivedAt, r.FinishedAt = atSeconds(r.ReceivedAt), atSeconds(r.FinishedAt)
	}
	for i := range want.SearchQueries {
		want.SearchQueries[i].At = atSeconds(want.SearchQueries[i].At)
	}
	for i := range want.FeedEvents {
		want.FeedEvents[i].At = atSeconds(want.FeedEvents[i].At)
	}
	got := readAll(t, connect(t, database), "")
	compareBatches(t, got, want)
}

func compareBatches(t *testing.T, got, want schemas.AnalyticsBatch) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s read back:\n got %+v\nwant %+v", name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
}

// readAll reads every table, ordered by identity; modifier is "" or "FINAL".
func readAll(t *testing.T, conn driver.Conn, modifier string) schemas.AnalyticsBatch {
	t.Helper()
	var b schemas.AnalyticsBatch
	scan(t, conn, `SELECT event_id, product_id, partner, sku, upload_id, kind, version, title, brand, category, price,
		sale_price, currency, availability, changed_at FROM product_changes `+modifier+` ORDER BY event_id`,
		func(r driver.Rows) error {
			var x schemas.ProductChangeRow
			err := r.Scan(&x.EventID, &x.ProductID, &x.Partner, &x.SKU, &x.UploadID, &x.Kind, &x.Version, &x.Title, &x.Brand,
				&x.Category, &x.Price, &x.SalePrice, &x.Currency, &x.Availability, &x.ChangedAt)
			b.ProductChanges = append(b.ProductChanges, x)
			return err
		})
	scan(t, conn, `SELECT event_id, product_id, partner, upload_id, currency, old_price, new_price, version, changed_at
		FROM price_history `+modifier+` ORDER BY event_id`,
		func(r driver.Rows) error {
			var x schemas.PriceHistoryRow
			err := r.Scan(&x.EventID, &x.ProductID, &x.Partner, &x.UploadID, &x.Currency, &x.OldPrice, &x.NewPrice, &x.Version, &x.ChangedAt)
			b.PriceHistory = append(b.PriceHistory, x)
			return err
		})
	scan(t, conn, `SELECT upload_id, partner, mode, format, mapping_version, received_at, finished_at, rows_read, accepted,
		unchanged, rejected, deleted FROM upload_runs `+modifier+` ORDER BY upload_id`,
		func(r driver.Rows) error {
			var x schemas.UploadRunRow
			err := r.Scan(&x.UploadID, &x.Partner, &x.Mode, &x.Format, &x.MappingVersion, &x.ReceivedAt, &x.FinishedAt, &x.RowsRead,
				&x.Accepted, &x.Unchanged, &x.Rejected, &x.Deleted)
			b.UploadRuns = append(b.UploadRuns, x)
			return err
		})
	scan(t, conn, `SELECT event_id, query, filters, sort, results, took_ms, at FROM search_queries `+modifier+` ORDER BY event_id`,
		func(r driver.Rows) error {
			var x schemas.SearchQueryRow
			err := r.Scan(&x.EventID, &x.Query, &x.Filters, &x.Sort, &x.Results, &x.TookMs, &x.At)
			b.SearchQueries = append(b.SearchQueries, x)
			return err
		})
	scan(t, conn, `SELECT event_id, kind, user_id, target_kind, target_id, items, at FROM feed_events `+modifier+` ORDER BY event_id`,
		func(r driver.Rows) error {
			var x schemas.FeedEventRow
			err := r.Scan(&x.EventID, &x.Kind, &x.UserID, &x.TargetKind, &x.TargetID, &x.Items, &x.At)
			b.FeedEvents = append(b.FeedEvents, x)
			return err
		})
	return b
}

func scan(t testing.TB, conn driver.Conn, query string, row func(driver.Rows) error, args ...any) {
	t.Helper()
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			t.Fatalf("scan %s: %v", query, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func queryStrings(t testing.TB, conn driver.Conn, query string, args ...any) []string {
	t.Helper()
	var out []string
	scan(t, conn, query, func(r driver.Rows) error {
		var s string
		err := r.Scan(&s)
		out = append(out, s)
		return err
	}, args...)
	return out
}

func queryCount(t testing.TB, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestRetriedWriteDoesNotDouble(t *testing.T) {
	s, database := openSink(t)
	ctx := context.Background()
	b := seed()
	for range 2 {
		if err := s.Write(ctx, b); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	conn := connect(t, database)
	tables := map[string]int{
		schemas.TableProductChanges: len(b.ProductChanges),
		schemas.TablePriceHistory:   len(b.PriceHistory),
		schemas.TableUploadRuns:     len(b.UploadRuns),
		schemas.TableSearchQueries:  len(b.SearchQueries),
		schemas.TableFeedEvents:     len(b.FeedEvents),
	}
	for table, n := range tables {
		// Both copies are stored until a merge; FINAL folds them at read time.
		if got := queryCount(t, conn, "SELECT count() FROM "+table); got != uint64(2*n) {
			t.Errorf("%s holds %d rows before merging, want %d (two inserts)", table, got, 2*n)
		}
		if got := queryCount(t, conn, "SELECT count() FROM "+table+" FINAL"); got != uint64(n) {
			t.Errorf("%s FINAL: %d rows, want %d", table, got, n)
		}
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
		if got := queryCount(t, conn, "SELECT count() FROM "+table); got != uint64(n) {
			t.Errorf("%s after OPTIMIZE FINAL: %d rows, want %d", table, got, n)
		}
	}
	// The daily views saw every row twice and still count each event once.
	views := []struct {
		query string
		want  uint64
	}{
		{"SELECT uniqExactMerge(changes) FROM product_changes_daily", 2},
		{"SELECT uniqExactMerge(changes) FROM product_changes_daily WHERE category = 'Shoes > Hiking' AND kind = 'upsert' AND day = '2025-03-01'", 1},
		{"SELECT uniqExactMerge(price_changes) FROM price_drops_daily", 2},
		{"SELECT uniqExactIfMerge(price_drops) FROM price_drops_daily", 1},
		{"SELECT uniqExactIfMerge(price_drops) FROM price_drops_daily WHERE partner = 'acme'", 1},
		{"SELECT uniqExactMerge(uploads) FROM upload_runs_daily", 2},
		{"SELECT toUInt64(arraySum(r -> tupleElement(r, 2), groupUniqArrayMerge(runs))) FROM upload_runs_daily", 1003},
		{"SELECT toUInt64(arraySum(r -> tupleElement(r, 3), groupUniqArrayMerge(runs))) FROM upload_runs_daily", 51},
		{"SELECT uniqExactMerge(searches) FROM search_queries_daily", 2},
		{"SELECT uniqExactIfMerge(zero_result_searches) FROM search_queries_daily", 1},
		{"SELECT uniqExactMerge(events) FROM feed_events_daily", 2},
		{"SELECT uniqExactMerge(users) FROM feed_events_daily WHERE kind = 'feed_read' AND day = '2025-04-01'", 1},
	}
	for _, v := range views {
		if got := queryCount(t, conn, v.query); got != v.want {
			t.Errorf("%s = %d, want %d", v.query, got, v.want)
		}
	}
}

func TestWriteKeepsProductHistory(t *testing.T) {
	s, database := openSink(t)
	ctx := context.Background()
	at := time.Date(2025, 5, 5, 10, 0, 0, 0, time.UTC)
	row := func(version uint64, kind string, price int64) schemas.ProductChangeRow {
		return schemas.ProductChangeRow{EventID: fmt.Sprintf("acme:1@%d", version), ProductID: "acme:1", Partner: "acme", SKU: "1",
			Kind: kind, Version: version, Price: price, ChangedAt: at.Add(time.Duration(version) * time.Hour)}
	}
	history := []schemas.ProductChangeRow{row(1, "upsert", 100), row(2, "upsert", 90), row(3, "delete", 0)}
	// The newest change arrives first and an old one is replayed.
	for _, rows := range [][]schemas.ProductChangeRow{history[2:], history[:2], history[:1]} {
		if err := s.Write(ctx, schemas.AnalyticsBatch{ProductChanges: rows}); err != nil {
			t.Fatal(err)
		}
	}
	conn := connect(t, database)
	got := queryStrings(t, conn, "SELECT concat(toString(version), ':', kind) FROM product_changes FINAL ORDER BY version")
	if want := []string{"1:upsert", "2:upsert", "3:delete"}; !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	latest := queryStrings(t, conn, "SELECT argMax(kind, version) FROM product_changes WHERE product_id = 'acme:1'")
	if !slices.Equal(latest, []string{"delete"}) {
		t.Errorf("latest kind = %v, want [delete]", latest)
	}
}

func TestWriteClampsTimesToDateTimeRange(t *testing.T) {
	s, database := openSink(t)
	rows := []schemas.SearchQueryRow{
		{EventID: "zero"},
		{EventID: "late", At: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	if err := s.Write(context.Background(), schemas.AnalyticsBatch{SearchQueries: rows}); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, connect(t, database), "SELECT concat(event_id, ' ', toString(toUnixTimestamp(at))) FROM search_queries ORDER BY event_id")
	if want := []string{"late 4294967295", "zero 0"}; !slices.Equal(got, want) {
		t.Errorf("times = %v, want %v", got, want)
	}
}

func TestWriteEmptyBatchIsNoOp(t *testing.T) {
	dsn, _ := testDatabase(t)
	p := startProxy(t, false)
	s, err := Open(context.Background(), Config{DSN: p.dsn(dsn)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// With the server gone, only a write that never talks to it succeeds.
	p.stop()
	if err := s.Write(context.Background(), schemas.AnalyticsBatch{}); err != nil {
		t.Errorf("Write(empty batch) = %v, want nil", err)
	}
	empty := schemas.AnalyticsBatch{ProductChanges: []schemas.ProductChangeRow{}, FeedEvents: nil}
	if err := s.Write(context.Background(), empty); err != nil {
		t.Errorf("Write(batch of empty slices) = %v, want nil", err)
	}
	if err := s.Write(context.Background(), seed()); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Write(rows) with the server gone = %v, want ErrUnavailable", err)
	}
}

func TestServerDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	t.Run("open", func(t *testing.T) {
		_, err := Open(ctx, Config{DSN: "clickhouse://" + closedPort(t) + "/analytics", DialTimeout: time.Second})
		if !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Open on a closed port = %v, want ErrUnavailable", err)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		dsn, _ := testDatabase(t)
		p := startProxy(t, false)
		s, err := Open(ctx, Config{DSN: p.dsn(dsn), DialTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Healthy(ctx); err != nil {
			t.Fatalf("Healthy while up: %v", err)
		}
		p.stop()
		if err := s.Write(ctx, seed()); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Write = %v, want ErrUnavailable", err)
		}
		if err := s.Healthy(ctx); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Healthy = %v, want ErrUnavailable", err)
		}
	})
	t.Run("hung", func(t *testing.T) {
		dsn, database := testDatabase(t)
		hung := startProxy(t, true) // accepts connections and never answers
		cfg := Config{DSN: hung.dsn(dsn), DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}
		start := time.Now()
		if _, err := Open(ctx, cfg); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Open = %v, want ErrUnavailable", err)
		}
		opts, err := clickhouse.ParseDSN(cfg.DSN)
		if err != nil {
			t.Fatal(err)
		}
		opts.Auth.Database, opts.DialTimeout, opts.ReadTimeout = "", cfg.DialTimeout, cfg.ReadTimeout
		conn, err := clickhouse.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		s := &Sink{conn: conn, database: quoteIdent(database), log: slog.New(slog.DiscardHandler)}
		defer s.Close()
		if err := s.Write(ctx, seed()); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Write = %v, want ErrUnavailable", err)
		}
		if err := s.Healthy(ctx); !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("Healthy = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a hung server held the calls for %v", d)
		}
	})
}

func TestDataErrorIsNotUnavailable(t *testing.T) {
	s, database := openSink(t)
	ctx := context.Background()
	if err := connect(t, database).Exec(ctx, "DROP TABLE price_history"); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, seed())
	if err == nil {
		t.Fatal("Write into a dropped table succeeded")
	}
	if errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Write into a dropped table = %v; a missing table is not an outage", err)
	}
	if !strings.Contains(err.Error(), "price_history") {
		t.Errorf("error %q does not name the table", err)
	}
}

func TestCancelledContext(t *testing.T) {
	s, database := openSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, seed())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write with cancelled context = %v, want context.Canceled", err)
	}
	if errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Write with cancelled context = %v; cancellation is not an outage", err)
	}
	if err := s.Healthy(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Healthy with cancelled context = %v, want context.Canceled only", err)
	}
	if n := queryCount(t, connect(t, database), "SELECT count() FROM product_changes"); n != 0 {
		t.Errorf("cancelled Write stored %d rows", n)
	}
	// The sink still works afterwards.
	if err := s.Write(context.Background(), seed()); err != nil {
		t.Errorf("Write after a cancelled one: %v", err)
	}
}

func TestClosedSink(t *testing.T) {
	s, _ := openSink(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), seed()); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := s.Healthy(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Healthy after Close = %v, want ErrClosed", err)
	}
}

func TestOpenCreatesDatabaseAndRejectsHTTP(t *testing.T) {
	s, database := openSink(t)
	if err := s.Healthy(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := queryCount(t, connect(t, ""), "SELECT count() FROM system.databases WHERE name = ?", database)
	if n != 1 {
		t.Errorf("database %s not created", database)
	}
	if _, err := Open(context.Background(), Config{DSN: "http://127.0.0.1:8123/analytics"}); err == nil || errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Open(http DSN) = %v, want a configuration error", err)
	}
}

// The example the README gives for reading a daily view.
func TestPriceDropsViewExample(t *testing.T) {
	s, database := openSink(t)
	now := time.Now().UTC()
	row := func(id, partner string, old, new int64, at time.Time) schemas.PriceHistoryRow {
		return schemas.PriceHistoryRow{EventID: id, ProductID: id, Partner: partner, Currency: "EUR", OldPrice: old, NewPrice: new, ChangedAt: at}
	}
	b := schemas.AnalyticsBatch{PriceHistory: []schemas.PriceHistoryRow{
		row("a1", "acme", 100, 90, now),
		row("a2", "acme", 100, 80, now.AddDate(0, 0, -6)),
		row("a3", "acme", 100, 110, now), // a rise
		row("b1", "beta", 100, 90, now),
		row("b2", "beta", 100, 90, now.AddDate(0, 0, -8)), // older than a week
	}}
	for range 2 {
		if err := s.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := queryTable(t, connect(t, database), `SELECT partner, uniqExactIfMerge(price_drops) AS drops
FROM price_drops_daily
WHERE day >= toDate(now(), 'UTC') - 6
GROUP BY partner
ORDER BY drops DESC`)
	if want := [][]string{{"acme", "2"}, {"beta", "1"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("drops per partner = %v, want %v", got, want)
	}
}

func TestCompressedConnection(t *testing.T) {
	dsn, database := testDatabase(t)
	s, err := Open(context.Background(), Config{DSN: dsn + "?compress=lz4"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(context.Background(), seed()); err != nil {
		t.Fatal(err)
	}
	if n := queryCount(t, connect(t, database), "SELECT count() FROM product_changes"); n != 2 {
		t.Errorf("product_changes holds %d rows, want 2", n)
	}
}
