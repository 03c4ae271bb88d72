package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"feedline/schemas"
)

// rulesMapping uses every kind of rule on a partner's own columns.
const rulesMapping = `{"fields": {"id": "sku", "title": "name", "price": "price", "brand": "maker", "availability": "stock", "category": "cat"},
	"defaults": {"currency": "EUR"},
	"rules": [
		{"kind": "map", "field": "availability", "table": {"1": "in stock", "0": "out of stock"}, "otherwise": "preorder"},
		{"kind": "map", "field": "brand", "table": {"bosch gmbh": "Bosch", "b.s.h.": "Bosch"}, "ignore_case": true},
		{"kind": "replace", "field": "title", "pattern": "(?i)\\s*-\\s*free shipping$", "with": ""},
		{"kind": "default", "field": "brand", "value": "House brand"},
		{"kind": "set", "field": "title", "value": "Gift card", "when": {"field": "category", "equals": "vouchers"}},
		{"name": "no samples", "kind": "exclude", "when": {"field": "title", "matches": "(?i)^sample"}},
		{"kind": "category", "table": {"Kitchen": "Home > Kitchen", "Kitchen > Kettles": "Home > Kitchen > Kettles"}, "otherwise": "Other"}
	]}`

// The rules of a mapping apply to an upload through the whole system:
// what search holds is what the rules made of each row, an excluded row
// is counted and not listed, so a full upload deletes its product.
func TestMappingRulesEndToEnd(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("rules")
	ts.setMapping("rules", key, rulesMapping)

	feed := "sku,name,price,maker,stock,cat\n" +
		"K1,Steel kettle - FREE SHIPPING,39.90,BOSCH GmbH,1,Kitchen > Kettles > Electric\n" +
		"K2,Cutting board,12.00,,0,Kitchen > Boards\n" +
		"K3,Sample kettle,1.00,Bosch,1,Kitchen\n" +
		"V1,Voucher 50,50.00,,7,Vouchers\n" +
		"G1,Garden hose,20.00,Gardena,1,Garden\n"
	st := ts.uploadOK("rules", key, []byte(feed), "")
	if c := st.Counts; st.State != schemas.StateDone || c.Read != 5 || c.Accepted != 4 || c.Excluded != 1 || c.Rejected != 0 || c.Indexed != 4 {
		t.Fatalf("first upload %s %+v", st.State, c)
	}
	got := ts.allProducts("rules")
	want := map[string]struct {
		title, brand, category string
		avail                  schemas.Availability
	}{
		"rules:K1": {"Steel kettle", "Bosch", "Home > Kitchen > Kettles", schemas.InStock},
		"rules:K2": {"Cutting board", "House brand", "Home > Kitchen", schemas.OutOfStock},
		"rules:V1": {"Gift card", "House brand", "Other", schemas.Preorder},
		"rules:G1": {"Garden hose", "Gardena", "Other", schemas.InStock},
	}
	if len(got) != len(want) {
		t.Errorf("search holds %d products, want %d: %v", len(got), len(want), got)
	}
	for id, w := range want {
		p, ok := got[id]
		if !ok {
			t.Errorf("%s is not in search", id)
			continue
		}
		if p.Title != w.title || p.Brand != w.brand || strings.Join(p.Category, " > ") != w.category || p.Availability != w.avail {
			t.Errorf("%s = %q %q %q %q, want %+v", id, p.Title, p.Brand, strings.Join(p.Category, " > "), p.Availability, w)
		}
	}
	if r := ts.search(url.Values{"q": {"sample"}, "partner": {"rules"}}); len(r.Hits) != 0 {
		t.Errorf("the excluded row is searchable: %+v", r.Hits)
	}

	// The same feed with the garden hose now a sample: excluded, so the
	// full upload deletes it.
	st = ts.uploadOK("rules", key, []byte(strings.Replace(feed, "Garden hose", "Sample hose", 1)), "")
	if c := st.Counts; st.State != schemas.StateDone || c.Excluded != 2 || c.Unchanged != 3 || c.Deleted != 1 {
		t.Errorf("second upload %s %+v, want 2 excluded, 3 unchanged, the hose deleted", st.State, c)
	}
	if r := ts.do(http.MethodGet, "/v1/products/rules:G1", "", nil, ""); r.Status != http.StatusNotFound {
		t.Errorf("the excluded product is still served: %d %s", r.Status, r.Body)
	}
}
