package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"feedline/schemas"
)

func upsertAt(id string, version uint64, at time.Time, price, sale int64, currency string) schemas.ProductChangeRow {
	partner, sku := schemas.SplitProductID(id)
	return schemas.ProductChangeRow{
		EventID: fmt.Sprintf("%s@%d", id, version), ProductID: id, Partner: partner, SKU: sku,
		Kind: string(schemas.ChangeUpsert), Version: version, Title: "Kettle", Price: price, SalePrice: sale,
		Currency: currency, ChangedAt: at,
	}
}

func TestPricesReadOneProductOldestFirst(t *testing.T) {
	s, _ := openSink(t)
	ctx := context.Background()
	old := time.Date(2024, 1, 5, 9, 0, 0, 0, time.UTC)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1, t2, t3 := t0.Add(26*time.Hour), t0.Add(27*time.Hour), t0.Add(51*time.Hour)
	deleted := upsertAt("acme:K1", 6, t3.Add(time.Hour), 0, 0, "")
	deleted.Kind = string(schemas.ChangeDelete)
	batches := [][]schemas.ProductChangeRow{
		{upsertAt("acme:K1", 1, old, 1000, 0, "KRW")},
		{upsertAt("acme:K1", 2, t0, 15000, 0, "KRW"), upsertAt("acme:K2", 1, t0, 99, 0, "KRW"), upsertAt("other:K1", 1, t0, 5, 0, "KRW")},
		{upsertAt("acme:K1", 3, t1, 15000, 0, "KRW")},     // title only: no new point
		{upsertAt("acme:K1", 4, t2, 15000, 12000, "KRW")}, // on sale
		{upsertAt("acme:K1", 4, t2, 15000, 12000, "KRW")}, // a retried write
		{upsertAt("acme:K2", 2, t3, 100, 0, "KRW"), upsertAt("acme:K1", 5, t3, 13000, 0, "USD"), deleted},
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
	if got, err := s.Prices(ctx, "other:K1", old); err != nil || len(got) != 1 || got[0].Price != 5 {
		t.Errorf("other:K1 prices = %+v, %v; want its own single point", got, err)
	}
	got, err = s.Prices(ctx, "acme:NONE", old)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("unknown product prices = %#v, %v; want an empty list", got, err)
	}
	s.Close()
	if _, err := s.Prices(ctx, "acme:K1", old); err == nil {
		t.Error("Prices after Close did not fail")
	}
}
