package normalise

import (
	"testing"
	"unsafe"

	"feedline/schemas"
)

// TestCatalogKeepsNoDecodedMessage: a decoded batch's strings share the
// message's buffer, so a key stored as given would keep the whole message
// alive for as long as the product is in the catalog.
func TestCatalogKeepsNoDecodedMessage(t *testing.T) {
	t.Parallel()
	b := &schemas.ProductBatch{Partner: "acme", Seq: 1, Batch: 1}
	for _, id := range []string{"sku-1", "sku-2"} {
		p := &schemas.Product{ID: id, Title: "Kettle", Price: 1000, Currency: "KRW"}
		b.Changes = append(b.Changes, schemas.ProductChange{ID: id, Kind: schemas.ChangeUpsert, Version: 1, Product: p})
	}
	data, err := schemas.MarshalProductBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	var decoded schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(data, &decoded); err != nil {
		t.Fatal(err)
	}
	decoded.Seen = []string{decoded.Changes[0].ID}
	from := map[*byte]bool{unsafe.StringData(decoded.Partner): true}
	for _, ch := range decoded.Changes {
		from[unsafe.StringData(ch.ID)] = true
		from[unsafe.StringData(ch.Product.Currency)] = true
	}

	c := newCatalog()
	c.apply(&decoded, 7)
	c.commit(decoded.Partner, 2, map[string]entry{decoded.Changes[1].ID: {version: 2, currency: decoded.Changes[1].Product.Currency}}, decoded.Seen, 8)
	for partner, ps := range c.partners {
		if from[unsafe.StringData(partner)] {
			t.Errorf("partner key %q is the decoded message's string", partner)
		}
		for id, e := range ps {
			if from[unsafe.StringData(id)] {
				t.Errorf("product key %q is the decoded message's string", id)
			}
			if from[unsafe.StringData(e.currency)] {
				t.Errorf("currency of %q is the decoded message's string", id)
			}
		}
	}
	if len(c.partners["acme"]) != 2 {
		t.Errorf("catalog holds %d products, want 2", len(c.partners["acme"]))
	}
}

// TestCopiesOfOneVersionPlaceTheProductAtTheLatest: two workers compacting
// at once each publish a copy of the same versions; whichever order a
// worker commits and folds them in, it keeps the latest, as a replay does,
// so no worker removes the copy another keeps.
func TestCopiesOfOneVersionPlaceTheProductAtTheLatest(t *testing.T) {
	t.Parallel()
	p := &schemas.Product{ID: "sku-1", Title: "Kettle", Price: 1000, Currency: "KRW"}
	copyOf := func(seq uint64) *schemas.ProductBatch {
		return &schemas.ProductBatch{Partner: "acme", Seq: seq, Changes: []schemas.ProductChange{{ID: "sku-1", Kind: schemas.ChangeUpsert, Version: 3, Product: p}}}
	}
	replayed := newCatalog()
	replayed.apply(copyOf(2), 55)
	replayed.apply(copyOf(2), 56)

	folded := newCatalog() // its own copy, 56, committed before the other's, 55, is folded
	folded.commit("acme", 2, map[string]entry{"sku-1": {fp: p.Fingerprint(), version: 3, price: 1000, currency: "KRW", seen: 2}}, nil, 56)
	folded.apply(copyOf(2), 55)

	reversed := newCatalog()
	reversed.apply(copyOf(2), 56)
	reversed.apply(copyOf(2), 55)
	for name, c := range map[string]*catalog{"replayed": replayed, "committed, then folded": folded, "folded out of order": reversed} {
		if e, _ := c.get("acme", "sku-1"); e.at != 56 || e.version != 3 {
			t.Errorf("%s: the product is at %d (version %d), want the latest copy, 56", name, e.at, e.version)
		}
	}
	gone := newCatalog()
	del := func(seq uint64) *schemas.ProductBatch {
		return &schemas.ProductBatch{Partner: "acme", Seq: seq, Changes: []schemas.ProductChange{{ID: "sku-1", Kind: schemas.ChangeDelete, Version: 4}}}
	}
	gone.apply(del(3), 60)
	gone.apply(del(3), 58)
	if e, _ := gone.get("acme", "sku-1"); e.at != 60 || !e.deleted {
		t.Errorf("a deletion folded twice is at %d (deleted %v), want 60", e.at, e.deleted)
	}
}
