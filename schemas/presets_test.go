package schemas

import (
	"reflect"
	"testing"
	"time"
)

func TestGoogleMerchantPreset(t *testing.T) {
	columns := []string{"id", "title", "description", "link", "image_link", "additional_image_link", "availability",
		"price", "sale_price", "google_product_category", "product_type", "brand", "gtin", "mpn", "condition"}
	rm := NewRowMapper(Mapping{Preset: PresetGoogleMerchant}, "outdoorco", columns, batchTime)
	p, rej := firstError(rm, RawRow{Row: 3, Values: []string{
		"TENT-2P", "Trail Tent 2P", "Two-person, 1.9 kg.", "https://outdoor.example/tent-2p",
		"https://cdn.outdoor.example/tent-2p.jpg", "https://cdn.outdoor.example/tent-2p-b.jpg,https://cdn.outdoor.example/tent-2p-c.jpg",
		"in stock", "249.00 USD", "199.00 USD", "Sporting Goods > Outdoor Recreation > Camping & Hiking > Tents",
		"Camping > Tents", "TrailCo", "00036000291452", "TT2P-2026", "new",
	}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	sale := int64(19900)
	want := Product{
		ID:           "outdoorco:TENT-2P",
		Partner:      "outdoorco",
		SKU:          "TENT-2P",
		Title:        "Trail Tent 2P",
		Description:  "Two-person, 1.9 kg.",
		Brand:        "TrailCo",
		Category:     []string{"Camping", "Tents"},
		Price:        24900,
		SalePrice:    &sale,
		Currency:     "USD",
		Availability: InStock,
		URL:          "https://outdoor.example/tent-2p",
		ImageURLs: []string{"https://cdn.outdoor.example/tent-2p.jpg", "https://cdn.outdoor.example/tent-2p-b.jpg",
			"https://cdn.outdoor.example/tent-2p-c.jpg"},
		GTIN: "00036000291452",
		Attributes: map[string]string{
			"google_product_category": "Sporting Goods > Outdoor Recreation > Camping & Hiking > Tents",
			"mpn":                     "TT2P-2026",
			"condition":               "new",
			"product_type":            "Camping > Tents",
		},
		UpdatedAt: batchTime,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Map =\n%+v\nwant\n%+v", p, want)
	}
}

func TestNaverEPPreset(t *testing.T) {
	columns := []string{"id", "title", "price_pc", "price_mobile", "normal_price", "link", "image_link", "add_image_link",
		"category_name1", "category_name2", "category_name3", "category_name4", "naver_category", "brand", "maker", "origin",
		"update_time", "class"}
	rm := NewRowMapper(Mapping{Preset: PresetNaverEP}, "hanshop", columns, batchTime)
	p, rej := firstError(rm, RawRow{Row: 2, Values: []string{
		"100234", "[무료배송] 여성 니트 가디건", "12900", "12900", "15900", "https://hanshop.example/goods/100234",
		"https://img.hanshop.example/100234.jpg", "https://img.hanshop.example/100234_1.jpg|https://img.hanshop.example/100234_2.jpg",
		"패션의류", "여성의류", "카디건", "", "50000805", "", "한샵", "국산", "2026-02-27 09:15:00", "U",
	}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	sale := int64(12900)
	want := Product{
		ID:           "hanshop:100234",
		Partner:      "hanshop",
		SKU:          "100234",
		Title:        "[무료배송] 여성 니트 가디건",
		Brand:        "한샵", // brand is empty, maker is the fallback
		Category:     []string{"패션의류", "여성의류", "카디건"},
		Price:        15900,
		SalePrice:    &sale,
		Currency:     "KRW",
		Availability: InStock,
		URL:          "https://hanshop.example/goods/100234",
		ImageURLs: []string{"https://img.hanshop.example/100234.jpg", "https://img.hanshop.example/100234_1.jpg",
			"https://img.hanshop.example/100234_2.jpg"},
		Attributes: map[string]string{"naver_category": "50000805", "maker": "한샵", "origin": "국산", "price_mobile": "12900"},
		UpdatedAt:  time.Date(2026, 2, 27, 0, 15, 0, 0, time.UTC), // 09:15 Korea time

	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Map =\n%+v\nwant\n%+v", p, want)
	}

	// Without a discount normal_price equals price_pc (or is left empty).
	p, rej = firstError(rm, RawRow{Row: 3, Values: []string{"100235", "양말", "3,000원", "", ""}})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	if p.Price != 3000 || p.SalePrice != nil || p.Currency != "KRW" {
		t.Errorf("Map = %d sale %v %s, want 3000 without sale", p.Price, p.SalePrice, p.Currency)
	}
}

func TestPresetWithOverrides(t *testing.T) {
	m := Mapping{
		Preset:   PresetNaverEP,
		Fields:   map[string]FieldSource{"gtin": {"barcode"}, "list_price": {}},
		Defaults: map[string]string{"availability": ""},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	r := m.Resolve()
	if got := r.Fields["gtin"]; !reflect.DeepEqual(got, FieldSource{"barcode"}) {
		t.Errorf("gtin = %q, want the override", got)
	}
	if _, ok := r.Fields["list_price"]; ok {
		t.Error("list_price still mapped; an empty column list removes it")
	}
	if _, ok := r.Defaults["availability"]; ok {
		t.Error("availability default kept; an empty value removes it")
	}
	if r.Defaults["currency"] != "KRW" || !reflect.DeepEqual(r.Fields["title"], FieldSource{"title"}) {
		t.Errorf("preset entries lost: %+v", r)
	}
}

func TestPresetsAreFresh(t *testing.T) {
	a := Presets()
	a[PresetNaverEP].Fields["id"] = FieldSource{"changed"}
	delete(a, PresetGoogleMerchant)
	b := Presets()
	if got := b[PresetNaverEP].Fields["id"]; !reflect.DeepEqual(got, FieldSource{"id"}) {
		t.Errorf("naver_ep id = %q after a caller changed its copy", got)
	}
	if _, ok := b[PresetGoogleMerchant]; !ok {
		t.Error("google_merchant gone after a caller deleted it from its copy")
	}
	for name, p := range b {
		if err := (Mapping{Preset: name}).Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
		if p.Preset != "" {
			t.Errorf("preset %s names preset %q itself", name, p.Preset)
		}
	}
}
