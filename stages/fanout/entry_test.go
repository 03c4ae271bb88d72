package fanout

import (
	"testing"
	"time"
	"unsafe"

	"feedline/schemas"
)

// TestCatalogEntryKeepsNoDecodedBatch: a shop's timeline keeps its news for
// months; an entry holding a substring of the decoded batch would keep the
// whole batch in memory with it.
func TestCatalogEntryKeepsNoDecodedBatch(t *testing.T) {
	t.Parallel()
	p := &schemas.Product{ID: "sku-1", Title: "Kettle", Price: 900, Currency: "KRW"}
	data, err := schemas.MarshalProductBatch(&schemas.ProductBatch{Partner: "acme", Changes: []schemas.ProductChange{
		{ID: "sku-1", Kind: schemas.ChangeUpsert, Version: 2, Product: p, Price: &schemas.PriceChange{Old: 1000, New: 900}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var b schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(data, &b); err != nil {
		t.Fatal(err)
	}
	c := b.Changes[0]
	e := CatalogEntry(schemas.FeedKindPriceDrop, schemas.Author(schemas.FolloweeShop, b.Partner), c, time.Now())
	if e.Ref != c.ID {
		t.Fatalf("entry refers to %q, want %q", e.Ref, c.ID)
	}
	if unsafe.StringData(e.Ref) == unsafe.StringData(c.ID) {
		t.Error("the entry's product id is the decoded batch's string")
	}
	if e.PriceOld != 1000 || e.PriceNew != 900 {
		t.Errorf("price drop %d → %d, want 1000 → 900", e.PriceOld, e.PriceNew)
	}
}
