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
