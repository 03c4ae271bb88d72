package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/oklog/ulid/v2"

	"feedline/api"
	"feedline/schemas"
)

// TestPriceHistoryAfterReupload uploads a catalog, re-uploads it with
// changed prices and reads the history back, on Parquet files and, when
// one is given, on ClickHouse.
func TestPriceHistoryAfterReupload(t *testing.T) {
	t.Run("parquet", func(t *testing.T) { testPriceHistoryAfterReupload(t, nil) })
	t.Run("clickhouse", func(t *testing.T) {
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
		db := "feedline_prices_" + strings.ToLower(ulid.Make().String()[16:])
		u.Path = "/" + db
		t.Cleanup(func() {
			opt, err := clickhouse.ParseDSN(base)
			if err != nil {
				t.Error(err)
				return
			}
			conn, err := clickhouse.Open(opt)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
				t.Errorf("drop %s: %v", db, err)
			}
		})
		testPriceHistoryAfterReupload(t, func(c *serveConfig) { c.ClickHouseURL = u.String() })
	})
}

func testPriceHistoryAfterReupload(t *testing.T, tune func(*serveConfig)) {
	ts := startTestSystemWith(t, t.TempDir(), tune)
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	ts.uploadOK("acme", key, delimited(testCatalog, ","), "mode=full")

	prices := func(id string) api.PriceHistory {
		t.Helper()
		r := ts.do("GET", "/v1/products/"+url.PathEscape(id)+"/prices", "", nil, "")
		if r.Status != http.StatusOK {
			t.Fatalf("prices of %s answered %d: %s", id, r.Status, r.Body)
		}
		var h api.PriceHistory
		r.json(t, &h)
		return h
	}
	waitPoints := func(id string, n int) []schemas.PricePoint {
		t.Helper()
		var h api.PriceHistory
		eventually(t, "price history of "+id, func() bool {
			h = prices(id)
			return len(h.Points) >= n
		})
		return h.Points
	}
	first := waitPoints("acme:A1", 1)
	if len(first) != 1 || first[0].Price != 12900 || first[0].Currency != "KRW" {
		t.Fatalf("A1 history after the first upload = %+v, want one point 12900 KRW", first)
	}

	// A1 gets cheaper, A3 dearer; A2 is unchanged.
	changed := make([]catalogRow, 0, len(testCatalog))
	for _, r := range testCatalog {
		switch r.SKU {
		case "A1":
			r.Price = "9900"
		case "A3":
			r.Price = "17000"
		}
		changed = append(changed, r)
	}
	if st := ts.uploadOK("acme", key, delimited(changed, ","), "mode=full"); st.Counts.Accepted != 2 {
		t.Fatalf("re-upload accepted %d, want 2", st.Counts.Accepted)
	}
	a1 := waitPoints("acme:A1", 2)
	if len(a1) != 2 || a1[0].Price != 12900 || a1[1].Price != 9900 || a1[1].At.Before(a1[0].At) {
		t.Errorf("A1 history = %+v, want 12900 then 9900, oldest first", a1)
	}
	a3 := waitPoints("acme:A3", 2)
	if len(a3) != 2 || a3[0].Price != 15000 || a3[1].Price != 17000 {
		t.Errorf("A3 history = %+v, want 15000 then 17000", a3)
	}
	h := prices("acme:A2")
	if len(h.Points) != 1 || h.Points[0].Price != 25000 || h.ProductID != "acme:A2" {
		t.Errorf("unchanged A2 history = %+v, want one point 25000", h)
	}
	if since := time.Since(h.Since); since < schemas.PriceHistoryWindow-time.Hour || since > schemas.PriceHistoryWindow+time.Hour {
		t.Errorf("history since %v, want %v ago", h.Since, schemas.PriceHistoryWindow)
	}

	r := ts.do("GET", "/v1/products/acme:NOPE/prices", "", nil, "")
	if r.Status != http.StatusNotFound {
		t.Fatalf("unknown product's prices answered %d: %s", r.Status, r.Body)
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "acme:NOPE") {
		t.Errorf("404 detail %q does not name the product", p.Detail)
	}
}
