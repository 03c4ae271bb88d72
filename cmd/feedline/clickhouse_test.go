package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/oklog/ulid/v2"
)

// TestAnalyticsLandInClickHouse runs the whole pipeline with ClickHouse as
// the analytics store: an upload's changes, its run and a search arrive
// in the tables, each once.
func TestAnalyticsLandInClickHouse(t *testing.T) {
	t.Parallel()
	base := os.Getenv("FEEDLINE_TEST_CLICKHOUSE")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FEEDLINE_TEST_CLICKHOUSE is not set; .ci/run starts a ClickHouse for this test")
		}
		t.Skip("FEEDLINE_TEST_CLICKHOUSE is not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	db := "feedline_e2e_" + strings.ToLower(ulid.Make().String()[16:])
	u.Path = "/" + db
	opt, err := clickhouse.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()

	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { c.ClickHouseURL = u.String() })
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")
	ts.search(url.Values{"q": {"earbuds"}})
	alice, bob := ts.shopper("alice"), ts.shopper("bob")
	bob.follow("user", "alice")
	alice.post("hello analysts")
	bob.page("", 20)

	count := func(query string) uint64 {
		var n uint64
		if err := conn.QueryRow(context.Background(), fmt.Sprintf(query, db)).Scan(&n); err != nil {
			return 0 // the table may not exist yet
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for count("SELECT count() FROM %s.product_changes FINAL") != uint64(len(validSKUs)) ||
		count("SELECT count() FROM %s.upload_runs FINAL") != 1 || count("SELECT count() FROM %s.search_queries FINAL") != 1 ||
		count("SELECT count() FROM %s.feed_events FINAL") != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d changes, %d runs, %d searches, %d feed events; want %d, 1, 1, 3",
				count("SELECT count() FROM %s.product_changes FINAL"), count("SELECT count() FROM %s.upload_runs FINAL"),
				count("SELECT count() FROM %s.search_queries FINAL"), count("SELECT count() FROM %s.feed_events FINAL"), len(validSKUs))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, kind := range []string{"follow", "post", "feed_read"} {
		if n := count("SELECT count() FROM %s.feed_events FINAL WHERE kind = '" + kind + "'"); n != 1 {
			t.Errorf("%d feed events of kind %s, want 1", n, kind)
		}
	}
	if n := count("SELECT toUInt64(sum(rows_read)) FROM %s.upload_runs FINAL"); n != uint64(len(testCatalog)) {
		t.Errorf("upload run read %d rows, want %d", n, len(testCatalog))
	}
}
