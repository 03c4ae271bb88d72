package clickhouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"feedline/schemas"
)

// Each analyst question in questions/*.sql runs on seeded data, the way the
// README shows it, and must give the answer worked out from the seed.
func TestQuestions(t *testing.T) {
	files, err := filepath.Glob("questions/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(now time.Time) (seeded schemas.AnalyticsBatch, want [][]string){
		"01_top_price_drops_this_week.sql": seedPriceDrops,
		"02_rejected_rate_per_partner.sql": seedUploadRuns,
		"03_searches_without_results.sql":  seedSearches,
		"04_catalog_size_per_category.sql": seedCatalog,
		"05_feed_engagement.sql":           seedFeed,
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range cases {
		if !slices.Contains(names, name) {
			t.Errorf("question %s has a test but no file", name)
		}
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			seedFn, ok := cases[name]
			if !ok {
				t.Fatalf("question %s has no test case", name)
			}
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s, database := openSink(t)
			conn := connect(t, database)
			var now time.Time
			if err := conn.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
				t.Fatal(err)
			}
			batch, want := seedFn(now.UTC())
			// Every seed is written twice, as a retried batch would be.
			for range 2 {
				if err := s.Write(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
			}
			got := queryTable(t, conn, strings.TrimSpace(string(text)))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer:\n%s\nwant:\n%s", formatTable(got), formatTable(want))
			}
		})
	}
}

// queryTable runs a query and renders every value as text: dates as
// 2006-01-02, times as 2006-01-02 15:04:05 (UTC), numbers with %v.
func queryTable(t *testing.T, conn driver.Conn, query string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan: %v", err)
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			v := reflect.ValueOf(d).Elem().Interface()
			switch x := v.(type) {
			case time.Time:
				if types[i].DatabaseTypeName() == "Date" {
					row[i] = x.Format(time.DateOnly)
				} else {
					row[i] = x.UTC().Format(time.DateTime)
				}
			default:
				row[i] = fmt.Sprint(x)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query: %v", err)
	}
	return out
}

func formatTable(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

func day(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }

func seedPriceDrops(now time.Time) (schemas.AnalyticsBatch, [][]string) {
	today := day(now)
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	thisWeek := monday.Add(now.Sub(monday) / 2).Truncate(time.Second) // between Monday 00:00 and now
	lastWeek := monday.Add(-time.Hour)
	price := func(id, partner, currency string, old, new int64, at time.Time) schemas.PriceHistoryRow {
		return schemas.PriceHistoryRow{EventID: id + "@1", ProductID: id, Partner: partner, UploadID: "U", Currency: currency,
			OldPrice: old, NewPrice: new, Version: 1, ChangedAt: at}
	}
	b := schemas.AnalyticsBatch{PriceHistory: []schemas.PriceHistoryRow{
		price("beta:7", "beta", "USD", 2000, 1800, thisWeek),  // -10%
		price("acme:1", "acme", "EUR", 10000, 7500, thisWeek), // -25%
		price("acme:2", "acme", "EUR", 100, 150, thisWeek),    // a rise
		price("acme:3", "acme", "EUR", 1000, 100, lastWeek),   // last week
	}}
	at := thisWeek.Format(time.DateTime)
	return b, [][]string{
		{"acme", "acme:1", "EUR", "10000", "7500", "25", at},
		{"beta", "beta:7", "USD", "2000", "1800", "10", at},
	}
}

func seedUploadRuns(now time.Time) (schemas.AnalyticsBatch, [][]string) {
	run := func(id, partner string, read, rejected int64, finished time.Time) schemas.UploadRunRow {
		return schemas.UploadRunRow{UploadID: id, Partner: partner, Mode: "full", Format: "csv", MappingVersion: 1,
			ReceivedAt: finished.Add(-time.Minute), FinishedAt: finished, RowsRead: read, Accepted: read - rejected, Rejected: rejected}
	}
	recent, old := now.Add(-24*time.Hour), now.AddDate(0, 0, -40)
	b := schemas.AnalyticsBatch{UploadRuns: []schemas.UploadRunRow{
		run("U1", "acme", 100, 10, recent),
		run("U2", "acme", 300, 30, recent),
		run("U3", "beta", 50, 25, recent),
		run("U4", "gamma", 0, 0, recent),   // nothing read: no rate
		run("U5", "acme", 1000, 1000, old), // outside the 30 days
	}}
	return b, [][]string{
		{"beta", "1", "50", "25", "50"},
		{"acme", "2", "400", "40", "10"},
	}
}

func seedSearches(now time.Time) (schemas.AnalyticsBatch, [][]string) {
	search := func(id, query string, results int64, at time.Time) schemas.SearchQueryRow {
		return schemas.SearchQueryRow{EventID: id, Query: query, Results: results, TookMs: 1, At: at}
	}
	h1, h2 := now.Add(-3*time.Hour).Truncate(time.Second), now.Add(-2*time.Hour).Truncate(time.Second)
	b := schemas.AnalyticsBatch{SearchQueries: []schemas.SearchQueryRow{
		search("S1", "Hiking Boots", 0, h1),
		search("S2", "hiking boots", 0, h2),
		search("S3", "HIKING BOOTS", 0, h1),
		search("S4", "zzz", 0, h1),
		search("S5", "", 0, h1),                                           // a browse by filters
		search("S6", "shoes", 12, h1),                                     // found something
		search("S7", "old", 0, now.AddDate(0, 0, -10)),                    // outside the 7 days
		search("S8", "운동화", 0, now.Add(-time.Hour).Truncate(time.Second)), // once, sorts after zzz
	}}
	return b, [][]string{
		{"hiking boots", "3", h2.Format(time.DateTime)},
		{"zzz", "1", h1.Format(time.DateTime)},
		{"운동화", "1", now.Add(-time.Hour).Truncate(time.Second).Format(time.DateTime)},
	}
}

func seedCatalog(now time.Time) (schemas.AnalyticsBatch, [][]string) {
	today := day(now)
	ago := func(days int) time.Time { return today.AddDate(0, 0, -days).Add(time.Hour) }
	change := func(id string, version uint64, kind, category string, at time.Time) schemas.ProductChangeRow {
		partner, sku := schemas.SplitProductID(id)
		return schemas.ProductChangeRow{EventID: fmt.Sprintf("%s@%d", id, version), ProductID: id, Partner: partner, SKU: sku,
			Kind: kind, Version: version, Category: category, ChangedAt: at}
	}
	b := schemas.AnalyticsBatch{ProductChanges: []schemas.ProductChangeRow{
		change("acme:1", 1, "upsert", "Shoes > Hiking", ago(5)),
		change("acme:1", 2, "upsert", "Shoes > Running", ago(3)),
		change("acme:1", 3, "delete", "", ago(1)),
		change("acme:2", 1, "upsert", "Shoes", ago(40)), // before the window: counts every day
		change("beta:9", 1, "upsert", "Books > Fiction", ago(2)),
		change("beta:10", 1, "upsert", "", today.Add(time.Minute)),
		change("gamma:1", 1, "upsert", "Books", ago(4)),
		change("gamma:1", 2, "delete", "Books", ago(4).Add(time.Minute)), // gone the same day
	}}
	var want [][]string
	for d := 29; d >= 0; d-- {
		date := today.AddDate(0, 0, -d).Format(time.DateOnly)
		shoes, books, none := 1, 0, 0 // acme:2
		if d >= 2 && d <= 5 {
			shoes++ // acme:1 before its delete
		}
		if d <= 2 {
			books++ // beta:9
		}
		if d == 0 {
			none++ // beta:10
		}
		for _, c := range []struct {
			name string
			n    int
		}{{"(none)", none}, {"Books", books}, {"Shoes", shoes}} {
			if c.n > 0 {
				want = append(want, []string{date, c.name, fmt.Sprint(c.n)})
			}
		}
	}
	return b, want
}

func seedFeed(now time.Time) (schemas.AnalyticsBatch, [][]string) {
	today := day(now)
	yesterday := today.AddDate(0, 0, -1).Add(12 * time.Hour)
	event := func(id, kind, user string, at time.Time) schemas.FeedEventRow {
		return schemas.FeedEventRow{EventID: id, Kind: kind, UserID: user, At: at}
	}
	b := schemas.AnalyticsBatch{FeedEvents: []schemas.FeedEventRow{
		event("F1", schemas.FeedEventFeedRead, "u1", yesterday),
		event("F2", schemas.FeedEventFeedRead, "u1", yesterday.Add(time.Minute)),
		event("F3", schemas.FeedEventFeedRead, "u2", yesterday),
		event("F4", schemas.FeedEventPost, "u1", yesterday),
		event("F5", schemas.FeedEventFollow, "u3", yesterday),
		event("F6", schemas.FeedEventUnfollow, "u3", yesterday),
		event("F7", schemas.FeedEventPost, "u4", today),
		event("F8", schemas.FeedEventFeedRead, "u9", today.AddDate(0, 0, -20)), // outside the 14 days
	}}
	return b, [][]string{
		{yesterday.Format(time.DateOnly), "2", "3", "1", "1", "1.5"},
		{today.Format(time.DateOnly), "0", "0", "1", "0", "0"},
	}
}

// TestReadmeShowsEveryQuestionVerbatim: the README's SQL is the tested SQL.
func TestReadmeShowsEveryQuestionVerbatim(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("questions/*.sql")
	if err != nil || len(files) != 5 {
		t.Fatalf("question files %v %v", files, err)
	}
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), strings.TrimSpace(string(sql))) {
			t.Errorf("README does not show %s as it is", f)
		}
	}
}
