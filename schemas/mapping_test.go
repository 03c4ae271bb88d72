package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMappingJSON(t *testing.T) {
	m := Mapping{
		Version:    3,
		Fields:     map[string]FieldSource{"id": {"sku"}, "category": {"cat1", "cat2"}},
		Defaults:   map[string]string{"currency": "EUR"},
		Attributes: map[string]string{"color": "Farbe"},
		UpdatedAt:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// A single column is written as a string, several as an array.
	if s := string(b); !strings.Contains(s, `"id":"sku"`) || !strings.Contains(s, `"category":["cat1","cat2"]`) {
		t.Errorf("json = %s", s)
	}
	var back Mapping
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip = %+v, want %+v", back, m)
	}

	var preset Mapping
	if err := json.Unmarshal([]byte(`{"preset": "naver_ep"}`), &preset); err != nil {
		t.Fatal(err)
	}
	if preset.Preset != PresetNaverEP || preset.Validate() != nil {
		t.Errorf("preset document = %+v, %v", preset, preset.Validate())
	}
	var bad Mapping
	if err := json.Unmarshal([]byte(`{"fields": {"id": 7}}`), &bad); err == nil {
		t.Error("a number as column accepted")
	}
}

// TestMappingQuoted checks the quoting setting: absent leaves it to the
// format, and false and true both survive a round trip and Resolve.
func TestMappingQuoted(t *testing.T) {
	for doc, want := range map[string]string{
		`{"preset": "naver_ep"}`:                  "<nil>",
		`{"preset": "naver_ep", "quoted": true}`:  "true",
		`{"preset": "naver_ep", "quoted": false}`: "false",
	} {
		var m Mapping
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
		show := func(q *bool) string {
			if q == nil {
				return "<nil>"
			}
			return fmt.Sprint(*q)
		}
		r := m.Resolve()
		if got := show(m.Quoted); got != want {
			t.Errorf("%s: quoted = %s, want %s", doc, got, want)
		}
		if got := show(r.Quoted); got != want {
			t.Errorf("%s: resolved quoted = %s, want %s", doc, got, want)
		}
		if r.Quoted != nil && r.Quoted == m.Quoted {
			t.Errorf("%s: Resolve shares the quoted setting with its input", doc)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "quoted") != (want != "<nil>") {
			t.Errorf("%s: marshalled as %s", doc, b)
		}
	}
	var bad Mapping
	if err := json.Unmarshal([]byte(`{"quoted": "yes"}`), &bad); err == nil {
		t.Error(`"quoted": "yes" accepted`)
	}
}

func TestMappingValidate(t *testing.T) {
	base := func() Mapping {
		return Mapping{
			Fields:   map[string]FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}},
			Defaults: map[string]string{"currency": "EUR"},
		}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid mapping: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Mapping)
		want   []string // substrings, each in one problem
	}{
		{"unknown preset", func(m *Mapping) { m.Preset = "amazon" },
			[]string{`unknown preset "amazon"; known presets: google_merchant, naver_ep`}},
		{"unknown field", func(m *Mapping) { m.Fields["preis"] = FieldSource{"Preis"} },
			[]string{`unknown field "preis"; valid fields: availability, brand, category, currency, deleted, description, gtin, id, image_urls, list_price, operation, price, sale_price, title, updated_at, url`}},
		{"missing id", func(m *Mapping) { delete(m.Fields, "id") }, []string{`required field "id" is not mapped`}},
		{"missing title and price", func(m *Mapping) { delete(m.Fields, "title"); delete(m.Fields, "price") },
			[]string{`required field "title" is not mapped`, `required field "price" is not mapped`}},
		{"empty column", func(m *Mapping) { m.Fields["brand"] = FieldSource{" "} }, []string{`field "brand" has an empty column name`}},
		{"no column", func(m *Mapping) { m.Fields["brand"] = FieldSource{} }, []string{`field "brand" names no column`}},
		{"unknown default currency", func(m *Mapping) { m.Defaults["currency"] = "EURO" },
			[]string{`default currency "EURO" is not an ISO 4217 code`}},
		{"unknown default availability", func(m *Mapping) { m.Defaults["availability"] = "maybe" },
			[]string{`default availability "maybe" is not one of in stock / out of stock / preorder / backorder`}},
		{"default id", func(m *Mapping) { m.Defaults["id"] = "1" }, []string{"id cannot have a default"}},
		{"unknown default field", func(m *Mapping) { m.Defaults["colour"] = "red" }, []string{`unknown field "colour" in defaults`}},
		{"alias twice", func(m *Mapping) { m.Fields["image_url"] = FieldSource{"a"}; m.Fields["image_urls"] = FieldSource{"b"} },
			[]string{`fields "image_url" and "image_urls" both map image_urls`}},
		{"empty attribute column", func(m *Mapping) { m.Attributes = map[string]string{"color": ""} },
			[]string{`attribute "color" has an empty column name`}},
		{"sale and list price", func(m *Mapping) { m.Fields["sale_price"] = FieldSource{"s"}; m.Fields["list_price"] = FieldSource{"l"} },
			[]string{"sale_price and list_price are both mapped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.change(&m)
			err := m.Validate()
			var merr *MappingError
			if !errors.As(err, &merr) {
				t.Fatalf("Validate() = %v, want a *MappingError", err)
			}
			if len(merr.Problems) != len(tt.want) {
				t.Errorf("problems = %q, want %d", merr.Problems, len(tt.want))
			}
			for _, w := range tt.want {
				found := false
				for _, p := range merr.Problems {
					found = found || strings.Contains(p, w)
				}
				if !found {
					t.Errorf("problems = %q, want one containing %q", merr.Problems, w)
				}
			}
		})
	}
}

func TestMappingValidatePresetSuppliesRequired(t *testing.T) {
	m := Mapping{Preset: PresetGoogleMerchant, Fields: map[string]FieldSource{"currency": {"currency"}}}
	if err := m.Validate(); err != nil {
		t.Errorf("preset with an extra field: %v", err)
	}
	m = Mapping{Preset: PresetGoogleMerchant, Fields: map[string]FieldSource{"title": {}}}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), `required field "title" is not mapped`) {
		t.Errorf("removing the preset's title: %v", err)
	}
	// A default counts as a source for title and price.
	m = Mapping{Fields: map[string]FieldSource{"id": {"sku"}, "price": {"p"}}, Defaults: map[string]string{"title": "Gift card", "currency": "USD"}}
	if err := m.Validate(); err != nil {
		t.Errorf("title from a default: %v", err)
	}
}

func TestMappingResolve(t *testing.T) {
	m := Mapping{
		Version:    2,
		Preset:     PresetGoogleMerchant,
		Fields:     map[string]FieldSource{"image_url": {"bild"}, "brand": {"marke", "hersteller"}},
		Defaults:   map[string]string{"currency": "EUR"},
		Attributes: map[string]string{"mpn": "", "farbe": "Farbe"},
	}
	r := m.Resolve()
	if r.Preset != "" || r.Version != 2 {
		t.Errorf("resolved preset %q version %d", r.Preset, r.Version)
	}
	if got := r.Fields["image_urls"]; !reflect.DeepEqual(got, FieldSource{"bild"}) {
		t.Errorf("image_urls = %q, want the alias override", got)
	}
	if _, ok := r.Fields["image_url"]; ok {
		t.Error("alias kept in the resolved mapping")
	}
	if got := r.Fields["brand"]; !reflect.DeepEqual(got, FieldSource{"marke", "hersteller"}) {
		t.Errorf("brand = %q", got)
	}
	if got := r.Fields["url"]; !reflect.DeepEqual(got, FieldSource{"link"}) {
		t.Errorf("url = %q, want the preset's", got)
	}
	if _, ok := r.Attributes["mpn"]; ok || r.Attributes["farbe"] != "Farbe" || r.Attributes["condition"] != "condition" {
		t.Errorf("attributes = %v", r.Attributes)
	}
	if r.Defaults["currency"] != "EUR" {
		t.Errorf("defaults = %v", r.Defaults)
	}
	if again := r.Resolve(); !reflect.DeepEqual(again, r) {
		t.Errorf("resolving twice changed the mapping:\n%+v\n%+v", again, r)
	}
	// The result shares nothing with the input.
	r.Fields["brand"][0] = "changed"
	if m.Fields["brand"][0] != "marke" {
		t.Error("Resolve shares column slices with its input")
	}
}
