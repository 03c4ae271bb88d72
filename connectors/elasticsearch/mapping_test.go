package elasticsearch

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"feedline/schemas"
)

// With dynamic mapping off, a Product field missing from the mappings would
// be stored but never indexed; every one must be mapped on purpose.
func TestMappingsCoverProduct(t *testing.T) {
	t.Parallel()
	props := NewMappings().Properties
	pt := reflect.TypeFor[schemas.Product]()
	for i := range pt.NumField() {
		name, _, _ := strings.Cut(pt.Field(i).Tag.Get("json"), ",")
		if _, ok := props[name]; !ok {
			t.Errorf("Product field %q has no mapping", name)
		}
	}
	for _, f := range []string{FieldCategoryPaths, FieldEffective, FieldDeleted} {
		if _, ok := props[f]; !ok {
			t.Errorf("derived field %q has no mapping", f)
		}
	}
	for _, f := range []string{FieldTitle, FieldBrand, FieldDescription} {
		if p := props[f]; p.Type != "text" || p.Analyzer != TextAnalyzer {
			t.Errorf("%s: %+v, want text analysed by %s", f, p, TextAnalyzer)
		}
	}
	for _, f := range []string{FieldID, FieldPartner, FieldAvailability, FieldCategoryPaths} {
		if p := props[f]; p.Type != "keyword" || p.Index != nil || p.DocValues != nil {
			t.Errorf("%s: %+v, want an indexed keyword with doc values", f, p)
		}
	}
	if kw := props[FieldBrand].Fields["keyword"]; kw.Type != "keyword" || FieldBrandKeyword != FieldBrand+".keyword" {
		t.Errorf("brand keyword sub-field %+v", kw)
	}
	for _, f := range []string{"price", "sale_price", FieldEffective, FieldVersion} {
		if props[f].Type != "long" {
			t.Errorf("%s is %q, want long (minor units, no floats)", f, props[f].Type)
		}
	}
}

func TestIndexTemplateJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(NewIndexTemplate("catalog", 0, -2))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		IndexPatterns []string `json:"index_patterns"`
		Template      struct {
			Settings map[string]any `json:"settings"`
			Mappings struct {
				Dynamic    string                    `json:"dynamic"`
				Properties map[string]map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
		Meta map[string]any `json:"_meta"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.IndexPatterns, []string{"catalog-v*"}) {
		t.Errorf("patterns %v", v.IndexPatterns)
	}
	if v.Template.Settings["number_of_shards"] != 1.0 || v.Template.Settings["number_of_replicas"] != 0.0 {
		t.Errorf("settings %v, want the floor of 1 shard and 0 replicas", v.Template.Settings)
	}
	if v.Template.Mappings.Dynamic != "false" || v.Meta[MetaMappingVersion] != float64(MappingVersion) {
		t.Errorf("dynamic %q, meta %v", v.Template.Mappings.Dynamic, v.Meta)
	}
	// Unset options are left out rather than sent as false.
	if title := v.Template.Mappings.Properties[FieldTitle]; len(title) != 2 {
		t.Errorf("title mapping %v, want only type and analyzer", title)
	}
	if url := v.Template.Mappings.Properties["url"]; url["index"] != false || url["doc_values"] != false {
		t.Errorf("url mapping %v, want stored in the source only", url)
	}
}
