package parquetsink

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"feedline/schemas"
)

// change is one upsert of a product at a version and time.
func change(id string, version uint64, at time.Time, price, sale int64, currency string) schemas.ProductChangeRow {
	partner, sku := schemas.SplitProductID(id)
	return schemas.ProductChangeRow{
		EventID: fmt.Sprintf("%s@%d", id, version), ProductID: id, Partner: partner, SKU: sku,
		Kind: string(schemas.ChangeUpsert), Version: version, Title: "Kettle", Price: price, SalePrice: sale,
		Currency: currency, ChangedAt: at,
	}
}

func TestPricesFollowOneProductAcrossDaysAndRetries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithRowGroupRows(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	old := time.Date(2024, 1, 5, 9, 0, 0, 0, time.UTC)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(26 * time.Hour)
	t2 := t1.Add(time.Hour)
	t3 := t2.Add(24 * time.Hour)
	deleted := change("acme:K1", 6, t3.Add(time.Hour), 0, 0, "")
	deleted.Kind = string(schemas.ChangeDelete)
	batches := [][]schemas.ProductChangeRow{
		{change("acme:K1", 1, old, 1000, 0, "KRW")}, // before the window
		{change("acme:K1", 2, t0, 15000, 0, "KRW"), change("acme:K2", 1, t0, 99, 0, "KRW"), change("acme:K3", 1, t0, 5, 0, "KRW")},
		{change("acme:K1", 3, t1, 15000, 0, "KRW")},     // title only: no new point
		{change("acme:K1", 4, t2, 15000, 12000, "KRW")}, // on sale
		{change("acme:K1", 4, t2, 15000, 12000, "KRW")}, // a retried write
		{change("acme:K2", 2, t3, 100, 0, "KRW"), change("acme:K1", 5, t3, 13000, 0, "USD"), deleted},
	}
	for _, b := range batches {
		if err := s.Write(ctx, schemas.AnalyticsBatch{ProductChanges: b}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Prices(ctx, "acme:K1", t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []schemas.PricePoint{{At: t0, Price: 15000, Currency: "KRW"}, {At: t2, Price: 12000, Currency: "KRW"}, {At: t3, Price: 13000, Currency: "USD"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("K1 prices = %+v\nwant %+v", got, want)
	}
	if got, err := s.Prices(ctx, "acme:K1", old.Add(-time.Hour)); err != nil || len(got) != 4 || got[0].Price != 1000 {
		t.Errorf("K1 prices since before the first change = %+v, %v; want 4 points from 1000", got, err)
	}
	got, err = s.Prices(ctx, "acme:NONE", old)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("unknown product prices = %#v, %v; want an empty list", got, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prices(cancelled, "acme:K1", old); err == nil {
		t.Error("Prices with a cancelled context did not fail")
	}
}

// TestPricesSkipRowGroupsOfOtherProducts checks the filters a read relies
// on: a row group of other products is ruled out, one of the product is not.
func TestPricesSkipRowGroupsOfOtherProducts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithRowGroupRows(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	rows := []schemas.ProductChangeRow{
		change("acme:A", 1, at, 1, 0, "KRW"), change("acme:B", 1, at, 2, 0, "KRW"),
		change("acme:M", 1, at, 3, 0, "KRW"), change("acme:N", 1, at, 4, 0, "KRW"),
		change("acme:X", 1, at, 5, 0, "KRW"), change("acme:Z", 1, at, 6, 0, "KRW"),
	}
	if err := s.Write(context.Background(), schemas.AnalyticsBatch{ProductChanges: rows}); err != nil {
		t.Fatal(err)
	}
	paths, err := tableFiles(dir, schemas.TableProductChanges)
	if err != nil || len(paths) != 1 {
		t.Fatalf("files = %v, %v; want one", paths, err)
	}
	f, err := os.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	file, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	col, _ := file.Schema().Lookup(productIDColumn)
	groups := file.RowGroups()
	if len(groups) != 3 {
		t.Fatalf("%d row groups, want 3", len(groups))
	}
	if groups[0].ColumnChunks()[col.ColumnIndex].BloomFilter() == nil {
		t.Error("product_id has no bloom filter")
	}
	for _, tc := range []struct {
		id   string
		want []bool
	}{
		{"acme:A", []bool{true, false, false}},
		{"acme:N", []bool{false, true, false}},
		{"acme:Y", []bool{false, false, false}}, // within X..Z, ruled out by the bloom filter
		{"acme:0", []bool{false, false, false}},
	} {
		for i, rg := range groups {
			if got := mayHold(rg.ColumnChunks()[col.ColumnIndex], tc.id, parquet.ValueOf(tc.id)); got != tc.want[i] {
				t.Errorf("row group %d may hold %s = %v, want %v", i, tc.id, got, tc.want[i])
			}
		}
	}
}
