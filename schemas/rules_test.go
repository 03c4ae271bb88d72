package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// rulesMapping is a mapping of the columns sku, name, price, brand, stock,
// cat and img with the rules given as JSON.
func rulesMapping(t *testing.T, rules string) Mapping {
	t.Helper()
	doc := `{"fields": {"id": "sku", "title": "name", "price": "price", "brand": "brand", "availability": "stock",
		"category": "cat", "image_urls": "img"}, "defaults": {"currency": "EUR"}, "rules": ` + rules + `}`
	var m Mapping
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("rules %s: %v", rules, err)
	}
	return m
}

var rulesColumns = []string{"sku", "name", "price", "brand", "stock", "cat", "img"}

func mapWith(t *testing.T, m Mapping, values ...string) Product {
	t.Helper()
	rm := NewRowMapper(m, "shop", rulesColumns, batchTime)
	p, rej := firstError(rm, RawRow{Row: 2, Values: values})
	if rej != nil {
		t.Fatalf("row %q rejected: %+v", values, rej)
	}
	return p
}

func TestRuleSetAndDefault(t *testing.T) {
	m := rulesMapping(t, `[
		{"kind": "default", "field": "brand", "value": "Acme"},
		{"kind": "set", "field": "title", "value": "Sample kit", "when": {"field": "brand", "equals": "SAMPLE"}},
		{"kind": "set", "field": "availability", "value": "preorder", "when": [{"field": "category", "contains": "new"}, {"field": "price", "matches": "^[0-9]+$"}]}
	]`)
	if p := mapWith(t, m, "1", "Kettle", "10.00", "", "", "", ""); p.Brand != "Acme" || p.Title != "Kettle" {
		t.Errorf("default brand: %+v", p)
	}
	if p := mapWith(t, m, "2", "Kettle", "10.00", "Bosch", "", "", ""); p.Brand != "Bosch" {
		t.Errorf("a default replaced a brand the row has: %q", p.Brand)
	}
	// Conditions ignore case; a condition list needs every one to hold.
	if p := mapWith(t, m, "3", "Kettle", "10.00", "sample", "", "", ""); p.Title != "Sample kit" {
		t.Errorf("set when the brand is sample: title %q", p.Title)
	}
	if p := mapWith(t, m, "4", "Kettle", "10", "", "", "New > Home", ""); p.Availability != Preorder {
		t.Errorf("both conditions hold: %q", p.Availability)
	}
	if p := mapWith(t, m, "5", "Kettle", "10.50", "", "", "New > Home", ""); p.Availability != InStock {
		t.Errorf("one condition of two holds: %q", p.Availability)
	}
}

func TestRuleReplace(t *testing.T) {
	m := rulesMapping(t, `[
		{"kind": "replace", "field": "title", "pattern": "(?i)\\s*[-–]\\s*free shipping!*$", "with": ""},
		{"kind": "replace", "field": "title", "pattern": "^(\\w+) (\\w+)$", "with": "$2 $1"},
		{"kind": "replace", "field": "image_urls", "pattern": "^http://", "with": "https://"}
	]`)
	p := mapWith(t, m, "1", "Steel kettle - FREE SHIPPING!!", "10", "", "", "", "http://img.example/a.jpg")
	if p.Title != "kettle Steel" {
		t.Errorf("title %q, want the promotion removed and the words swapped", p.Title)
	}
	if !reflect.DeepEqual(p.ImageURLs, []string{"https://img.example/a.jpg"}) {
		t.Errorf("images %q", p.ImageURLs)
	}
	// A replacement that empties a required field rejects the row, naming it.
	rm := NewRowMapper(rulesMapping(t, `[{"kind": "replace", "field": "title", "pattern": ".*", "with": ""}]`), "shop", rulesColumns, batchTime)
	if _, rej := firstError(rm, RawRow{Row: 3, Values: []string{"1", "Kettle", "10", "", "", "", ""}}); rej == nil || rej.Code != CodeMissingTitle {
		t.Errorf("emptied title: %+v, want missing_title", rej)
	}
}

func TestRuleMapTable(t *testing.T) {
	m := rulesMapping(t, `[
		{"kind": "map", "field": "availability", "table": {"1": "in stock", "2": "out of stock", "3": "preorder"}, "otherwise": "out of stock"},
		{"kind": "map", "field": "brand", "table": {"hewlett packard": "HP", "hewlett-packard": "HP"}, "ignore_case": true}
	]`)
	for stock, want := range map[string]Availability{"1": InStock, "2": OutOfStock, "3": Preorder, "9": OutOfStock} {
		if p := mapWith(t, m, "1", "Printer", "99", "", stock, "", ""); p.Availability != want {
			t.Errorf("stock %q became %q, want %q", stock, p.Availability, want)
		}
	}
	if p := mapWith(t, m, "1", "Printer", "99", "Hewlett-Packard", "1", "", ""); p.Brand != "HP" {
		t.Errorf("brand %q, want HP", p.Brand)
	}
	if p := mapWith(t, m, "1", "Printer", "99", "Canon", "1", "", ""); p.Brand != "Canon" {
		t.Errorf("a brand the table lacks changed: %q", p.Brand)
	}
	// Without ignore_case the table is matched exactly.
	exact := rulesMapping(t, `[{"kind": "map", "field": "brand", "table": {"hp": "HP"}}]`)
	if p := mapWith(t, exact, "1", "Printer", "99", "Hp", "", "", ""); p.Brand != "Hp" {
		t.Errorf("exact table matched another case: %q", p.Brand)
	}
}

func TestRuleCategoryTable(t *testing.T) {
	m := rulesMapping(t, `[{"kind": "category", "table": {
		"Shoes": "Apparel > Footwear",
		"shoes > running": "Sport > Running > Shoes",
		"Kitchen | Kettles": "Home > Kitchen > Kettles"
	}, "otherwise": "Other"}]`)
	for cat, want := range map[string][]string{
		"Shoes > Running > Trail": {"Sport", "Running", "Shoes"}, // the most specific entry wins
		"SHOES > Hiking":          {"Apparel", "Footwear"},
		"Kitchen > Kettles":       {"Home", "Kitchen", "Kettles"}, // keys split like categories
		"Garden":                  {"Other"},
	} {
		if p := mapWith(t, m, "1", "Item", "10", "", "", cat, ""); !reflect.DeepEqual(p.Category, want) {
			t.Errorf("category %q became %q, want %q", cat, p.Category, want)
		}
	}
	if p := mapWith(t, m, "1", "Item", "10", "", "", "", ""); p.Category != nil {
		t.Errorf("no category became %q", p.Category)
	}
}

func TestRuleExclude(t *testing.T) {
	m := rulesMapping(t, `[
		{"kind": "map", "field": "brand", "table": {"tst": "Test"}, "ignore_case": true},
		{"kind": "exclude", "when": {"field": "brand", "in": ["Test", "Sample"]}},
		{"kind": "exclude", "when": [{"field": "availability", "equals": "out of stock"}, {"field": "category", "matches": "^Clearance"}]},
		{"kind": "set", "field": "brand", "value": "Sample"}
	]`)
	rm := NewRowMapper(m, "shop", rulesColumns, batchTime)
	row := func(brand, stock, cat string) RawRow {
		return RawRow{Row: 2, Values: []string{"1", "Item", "10", brand, stock, cat, ""}}
	}
	for _, tc := range []struct {
		row  RawRow
		want bool
	}{
		{row("TST", "", ""), true}, // excluded after the map rule before it
		{row("sample", "", ""), true},
		{row("Acme", "", ""), false},                               // a rule after the last exclude does not decide
		{row("Acme", "out of stock", "Clearance > Shoes"), true},   // both conditions
		{row("Acme", "in stock", "Clearance > Shoes"), false},      // one of two
		{row("Acme", "out of stock", "Shoes > Clearance"), false},  // matches is anchored by the pattern
		{row("Acme", "out of stock", "Clearance|Kitchen"), true},   // category conditions see the path as A > B
		{row("Acme", "out of stock", " Clearance >  Kids "), true}, // levels trimmed
	} {
		if got := rm.Excluded(tc.row); got != tc.want {
			t.Errorf("Excluded(%q) = %v, want %v", tc.row.Values, got, tc.want)
		}
	}
	// A deletion is never excluded.
	del := Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "deleted": {"del"}, "title": {"name"}, "price": {"price"}},
		Rules: []Rule{{Kind: RuleExclude, When: Conditions{{Field: "title", Empty: ptr(true)}}}}}
	rmDel := NewRowMapper(del, "shop", []string{"sku", "del", "name", "price"}, batchTime)
	if rmDel.Excluded(RawRow{Values: []string{"1", "yes", "", ""}}) {
		t.Error("a deletion row was excluded")
	}
	if !rmDel.Excluded(RawRow{Values: []string{"1", "", "", "5"}}) {
		t.Error("a row with an empty title was not excluded")
	}
}

// An update row (Naver EP class U) changes only what it carries: a rule
// that sets a field makes it carried, a default rule adds nothing.
func TestRulesOnUpdateRows(t *testing.T) {
	m := Mapping{Preset: PresetNaverEP, Rules: []Rule{
		{Kind: RuleDefault, Field: "brand", Value: ptr("Acme")},
		{Kind: RuleReplace, Field: "title", Pattern: " \\(new\\)$", With: ptr("")},
		{Kind: RuleSet, Field: "description", Value: ptr("Updated"), When: Conditions{{Field: "title", NotEquals: ptr("")}}},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	cols := []string{"id", "title", "price_pc", "class", "update_time"}
	rm := NewRowMapper(m, "shop", cols, batchTime)
	prev := Product{ID: "shop:1", Partner: "shop", SKU: "1", Title: "Old", Brand: "Bosch", Price: 1000, Currency: "KRW", Availability: InStock}
	p, issues := rm.MapUpdate(RawRow{Row: 2, Values: []string{"1", "Kettle (new)", "", "U", ""}}, prev)
	if HasError(issues) {
		t.Fatalf("issues %+v", issues)
	}
	if p.Title != "Kettle" || p.Brand != "Bosch" || p.Description != "Updated" || p.Price != 1000 {
		t.Errorf("update = %+v, want the title cleaned, the description set and brand and price kept", p)
	}
	p, _ = rm.MapUpdate(RawRow{Row: 3, Values: []string{"1", "", "900", "U", ""}}, prev)
	if p.Title != "Old" || p.Description != "" || p.Price != 900 {
		t.Errorf("update without a title = %+v", p)
	}
}

func TestRulesValidate(t *testing.T) {
	base := `{"fields": {"id": "sku", "title": "name", "price": "price"}, "rules": `
	for _, tc := range []struct {
		rules string
		want  []string
	}{
		{`[{"kind": "replace", "field": "title", "pattern": "(", "with": ""}]`,
			[]string{`rule 1 (replace title): pattern "(" is not a valid regular expression: missing closing )`}},
		{`[{"name": "strip", "kind": "replace", "field": "title", "pattern": "[a-", "with": ""}]`,
			[]string{`rule 1 "strip" (replace title): pattern "[a-" is not a valid regular expression: missing closing ]`}},
		{`[{"kind": "set", "field": "brand", "value": "x"}, {"kind": "copy", "field": "brand"}]`,
			[]string{`rule 2 (copy brand): kind "copy" is not one of set, default, replace, map, exclude, category`}},
		{`[{"field": "brand"}]`, []string{`rule 1 (brand): needs a "kind"`}},
		{`[{"kind": "set", "field": "id", "value": "x"}]`, []string{`rule 1 (set id): field "id" cannot be changed by a rule`}},
		{`[{"kind": "set", "field": "colour", "value": "x"}]`, []string{`field "colour" cannot be changed by a rule`}},
		{`[{"kind": "set", "field": "brand"}]`, []string{`rule 1 (set brand): needs a "value"`}},
		{`[{"kind": "default", "field": "brand", "value": " "}]`, []string{"an empty default changes nothing"}},
		{`[{"kind": "replace", "field": "title", "pattern": "x"}]`, []string{`needs "with"`}},
		{`[{"kind": "map", "field": "brand"}]`, []string{`rule 1 (map brand): needs a "table"`}},
		{`[{"kind": "map", "field": "brand", "table": {"HP": "HP", "hp": "Hewlett"}, "ignore_case": true}]`,
			[]string{`table keys "HP" and "hp" are the same ignoring case`}},
		{`[{"kind": "exclude"}]`, []string{`rule 1 (exclude): needs "when"`}},
		{`[{"kind": "exclude", "when": {"field": "brand"}}]`, []string{"condition 1: give exactly one of equals"}},
		{`[{"kind": "exclude", "when": {"field": "brand", "equals": "a", "contains": "b"}}]`, []string{"(it has 2)"}},
		{`[{"kind": "exclude", "when": [{"field": "brand", "equals": "a"}, {"field": "brand", "matches": "*"}]}]`,
			[]string{`condition 2: matches "*" is not a valid regular expression: missing argument to repetition operator`}},
		{`[{"kind": "exclude", "when": {"field": "size", "equals": "a"}}]`, []string{`condition 1: field "size" is not one of`}},
		{`[{"kind": "category"}]`, []string{`rule 1 (category): needs a "table"`}},
		{`[{"kind": "category", "field": "brand", "table": {"a": "b"}}]`, []string{`takes no "field"`}},
		{`[{"kind": "set", "field": "brand", "value": "x", "pattern": "y"}]`, []string{`rule 1 (set brand): takes no "pattern"`}},
		{`[{"kind": "exclude", "when": {"field": "brand", "empty": true}, "value": "x"}]`, []string{`takes no "value"`}},
	} {
		var m Mapping
		if err := json.Unmarshal([]byte(base+tc.rules+"}"), &m); err != nil {
			t.Fatalf("%s: %v", tc.rules, err)
		}
		var merr *MappingError
		if err := m.Validate(); !errors.As(err, &merr) {
			t.Errorf("%s: Validate() = %v, want a *MappingError", tc.rules, err)
			continue
		}
		if len(merr.Problems) != len(tc.want) {
			t.Errorf("%s: problems %q, want %d", tc.rules, merr.Problems, len(tc.want))
		}
		for _, w := range tc.want {
			if !strings.Contains(strings.Join(merr.Problems, "\n"), w) {
				t.Errorf("%s: problems %q, want one containing %q", tc.rules, merr.Problems, w)
			}
		}
	}
}

// The rules survive a round trip through JSON and Resolve, and a rule with
// a bad pattern that somehow was stored is skipped rather than failing rows.
func TestRulesRoundTripAndResolve(t *testing.T) {
	m := rulesMapping(t, `[{"kind": "exclude", "when": {"field": "brand", "equals": "x"}}, {"kind": "default", "field": "brand", "value": "Acme"}]`)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Mapping
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Resolve().Rules, m.Rules) {
		t.Errorf("rules after a round trip %+v, want %+v", back.Resolve().Rules, m.Rules)
	}
	bad := Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}, "brand": {"brand"}},
		Defaults: map[string]string{"currency": "EUR"},
		Rules:    []Rule{{Kind: RuleReplace, Field: "title", Pattern: "(", With: ptr("")}, {Kind: RuleSet, Field: "brand", Value: ptr("B")}}}
	p := mapWith(t, bad, "1", "Kettle", "10", "", "", "", "")
	if p.Title != "Kettle" || p.Brand != "B" {
		t.Errorf("with an invalid stored rule: %+v", p)
	}
}

func ptr[T any](v T) *T { return &v }
