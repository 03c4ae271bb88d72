package schemas

import (
	"testing"
	"time"
)

// BenchmarkRowMapper maps a realistic 12-column Google Merchant row.
func BenchmarkRowMapper(b *testing.B) {
	columns := []string{"id", "title", "description", "brand", "product_type", "price", "sale_price",
		"availability", "link", "image_link", "additional_image_link", "gtin"}
	row := RawRow{Row: 1, Values: []string{
		"TENT-2P", "Trail Tent 2P Ultralight", "Two-person backpacking tent, 1.9 kg, two doors.", "TrailCo",
		"Sporting Goods > Camping > Tents", "249.00 USD", "199.00 USD", "in stock",
		"https://outdoor.example/p/tent-2p", "https://cdn.outdoor.example/tent-2p.jpg",
		"https://cdn.outdoor.example/tent-2p-b.jpg,https://cdn.outdoor.example/tent-2p-c.jpg", "00036000291452",
	}}
	rm := NewRowMapper(Mapping{Preset: PresetGoogleMerchant}, "outdoorco", columns, time.Now())
	if _, rej := firstError(rm, row); rej != nil {
		b.Fatalf("rejected: %+v", rej)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := firstError(rm, row); rej != nil {
			b.Fatal(rej.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkParseMoney reads a European-formatted price.
func BenchmarkParseMoney(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseMoney("1.299,00 €", "EUR"); err != nil {
			b.Fatal(err)
		}
	}
}
