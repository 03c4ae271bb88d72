package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"feedline/schemas"
)

// feedline mapping lint checks a mapping on a sample with no server.
func TestMappingLintOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mapping := write("mapping.json", `{"fields": {"id": "sku", "title": "name", "price": "price", "brand": "brand", "category": "cat"},
		"defaults": {"currency": "EUR"},
		"rules": [
			{"kind": "replace", "field": "title", "pattern": "(?i)\\s*free shipping$", "with": ""},
			{"kind": "exclude", "when": {"field": "brand", "equals": "test"}},
			{"kind": "category", "table": {"Shoes": "Apparel > Footwear"}}
		]}`)
	sample := write("sample.tsv", "sku\tname\tprice\tbrand\tcat\n"+
		"S1\tTrail shoe FREE SHIPPING\t89.99\tStride\tShoes > Trail\n"+
		"S2\tTest item\t1.00\tTest\t\n"+
		"S3\tBroken\tabc\tStride\t\n")
	lint := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"mapping", "lint"}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := lint(mapping, "--sample", sample, "--partner", "acme")
	if code != 0 {
		t.Fatalf("lint exited %d:\n%s", code, out)
	}
	for _, want := range []string{"tsv", "rows read   3", "valid       1", "rejected    1", "excluded    1",
		"acme:S1  Trail shoe  89.99 EUR", "Apparel > Footwear", "price_unparseable", `price "abc" is not a number`} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q:\n%s", want, out)
		}
	}
	code, out = lint(mapping, "--sample", sample, "--json")
	var pv schemas.Preview
	if err := json.Unmarshal([]byte(out), &pv); code != 0 || err != nil {
		t.Fatalf("lint --json exited %d (%v):\n%s", code, err, out)
	}
	if pv.Counts.Valid != 1 || pv.Counts.Excluded != 1 || len(pv.Products) != 1 || pv.Products[0].Title != "Trail shoe" {
		t.Errorf("lint --json: %+v", pv)
	}

	bad := write("bad.json", `{"fields": {"id": "sku", "title": "name", "price": "price"}, "rules": [{"kind": "map", "field": "brand"}, {"kind": "replace", "field": "title", "pattern": "[", "with": ""}]}`)
	code, out = lint(bad, "--sample", sample)
	if code != 1 || !strings.Contains(out, `rule 1 (map brand): needs a "table"`) || !strings.Contains(out, `rule 2 (replace title): pattern "[" is not a valid regular expression`) {
		t.Errorf("invalid mapping: exit %d:\n%s", code, out)
	}
	other := write("other.json", `{"fields": {"id": "Artikel", "title": "name", "price": "price"}, "defaults": {"currency": "EUR"}}`)
	if code, out = lint(other, "--sample", sample); code != 1 || !strings.Contains(out, `id is mapped to column "Artikel"`) {
		t.Errorf("columns that do not fit: exit %d:\n%s", code, out)
	}
	if code, out = lint(mapping); code != 0 || !strings.Contains(out, "valid mapping (3 rules)") {
		t.Errorf("lint without a sample: exit %d:\n%s", code, out)
	}
}
