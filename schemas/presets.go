package schemas

// Preset names a partner can put in a mapping's "preset".
const (
	PresetGoogleMerchant = "google_merchant"
	PresetNaverEP        = "naver_ep"
)

// Presets returns the built-in mappings of common shopping-feed layouts,
// keyed by preset name. Every call builds fresh maps, so callers may modify
// the result.
func Presets() map[string]Mapping {
	return map[string]Mapping{
		PresetGoogleMerchant: googleMerchant(),
		PresetNaverEP:        naverEP(),
	}
}

// googleMerchant follows the Google Merchant Center product data spec: TSV
// headers as Merchant Center accepts them ("g:price", "image link", any
// case: see ColumnKey), or the elements of an RSS or Atom feed, g: or plain,
// nested ones as dotted names (shipping.price). Category comes from the
// first product_type only: several category columns would mean levels, not
// fallbacks; every product_type and google_product_category are kept as
// attributes. Prices carry their currency ("15.00 USD"), so there is no
// currency column.
func googleMerchant() Mapping {
	return Mapping{
		Fields: map[string]FieldSource{
			"id":           {"id"},
			"title":        {"title"},
			"description":  {"description", "summary"}, // Atom entries may carry a summary instead
			"brand":        {"brand"},
			"category":     {"product_type"},
			"price":        {"price"},
			"sale_price":   {"sale_price"},
			"availability": {"availability"},
			"url":          {"link"},
			"image_urls":   {"image_link", "additional_image_link"},
			"gtin":         {"gtin"},
		},
		Defaults: map[string]string{},
		Attributes: map[string]string{
			"google_product_category": "google_product_category",
			"condition":               "condition",
			"mpn":                     "mpn",
			"color":                   "color",
			"size":                    "size",
			"gender":                  "gender",
			"age_group":               "age_group",
			"item_group_id":           "item_group_id",
			"product_type":            "product_type",
			"shipping":                "shipping",
			"shipping.country":        "shipping.country",
			"shipping.service":        "shipping.service",
			"shipping.price":          "shipping.price",
			"mobile_link":             "mobile_link",
		},
	}
}

// naverEP follows the Naver Shopping EP 3.0 (engine page) TSV. price_pc is
// what the shopper pays and normal_price the regular price, so normal_price
// feeds list_price: when it is higher, it becomes the price and price_pc
// the sale price. An EP lists only sellable items, hence in_stock by
// default. A summary (delta) EP's class says I, U or D: U changes only the
// fields its row carries, D deletes. update_time is Korea time.
func naverEP() Mapping {
	return Mapping{
		Fields: map[string]FieldSource{
			"id":         {"id"},
			"title":      {"title"},
			"price":      {"price_pc"},
			"list_price": {"normal_price"},
			"url":        {"link"},
			"image_urls": {"image_link", "add_image_link"},
			"category":   {"category_name1", "category_name2", "category_name3", "category_name4"},
			"brand":      {"brand", "maker"},
			"updated_at": {"update_time"},
			"gtin":       {"barcode"},
			"operation":  {"class"},
		},
		Defaults: map[string]string{
			"currency":     "KRW",
			"availability": string(InStock),
		},
		Attributes: map[string]string{
			"naver_category": "naver_category",
			"maker":          "maker",
			"origin":         "origin",
			"condition":      "condition",
			"price_mobile":   "price_mobile",
			"mobile_link":    "mobile_link",
			"shipping":       "shipping",
			"model_number":   "model_number",
		},
		Timezone: "Asia/Seoul",
	}
}
