package schemas

import "testing"

func TestFeedEntryCompactFormRoundTrips(t *testing.T) {
	for _, e := range []FeedEntry{
		{ID: "01a", Kind: FeedKindPost, Author: "user:alice", Ref: "01a"},
		{ID: "01b", Kind: FeedKindProduct, Author: "shop:acme", Ref: "acme:SKU|1"},
		{ID: "01c", Kind: FeedKindPriceDrop, Author: "shop:acme", Ref: "acme:AC-1002", PriceOld: 159000, PriceNew: 129000},
		{ID: "01d", Kind: FeedKindPriceDrop, Author: "shop:acme", Ref: "acme:7|8-9", PriceOld: 10, PriceNew: 9},
	} {
		back, err := ParseFeedEntry(e.String())
		if err != nil || back != e {
			t.Errorf("%q: read back as %+v, %v; want %+v", e.String(), back, err, e)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
}

// Entries stored before price drops carried their prices read as before,
// whatever the product id holds.
func TestFeedEntryReadsDropsWithoutPrices(t *testing.T) {
	for s, want := range map[string]FeedEntry{
		"01c|price_drop|shop:acme|acme:AC-1002":  {ID: "01c", Kind: FeedKindPriceDrop, Author: "shop:acme", Ref: "acme:AC-1002"},
		"01c|price_drop|shop:acme|acme:1|2":      {ID: "01c", Kind: FeedKindPriceDrop, Author: "shop:acme", Ref: "acme:1|2"},
		"01c|price_drop|shop:acme|12-x|acme:SKU": {ID: "01c", Kind: FeedKindPriceDrop, Author: "shop:acme", Ref: "12-x|acme:SKU"},
		"01c|product|shop:acme|10-9|acme:SKU":    {ID: "01c", Kind: FeedKindProduct, Author: "shop:acme", Ref: "10-9|acme:SKU"},
	} {
		got, err := ParseFeedEntry(s)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", s, got, err, want)
		}
	}
}
