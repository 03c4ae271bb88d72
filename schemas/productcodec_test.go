package schemas

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The product codec must stay plain JSON: what it writes, encoding/json reads
// identically, and the other way round (dead letters and tools use either).
func TestProductBatchCodecIsPlainJSON(t *testing.T) {
	sale := int64(9900)
	in := &ProductBatch{
		Upload: "u1", Partner: "acme", Batch: 3, Seq: 42, At: time.Date(2026, 11, 22, 1, 2, 3, 4000, time.UTC),
		Changes: []ProductChange{
			{Kind: ChangeUpsert, ID: "acme:1", Version: 42<<32 | 7, Row: 7, New: true, Product: &Product{
				ID: "acme:1", Partner: "acme", SKU: "1", Title: "삼성 무선 이어폰 \"Pro\"", Category: []string{"Audio", "Earbuds"},
				Price: 12900, SalePrice: &sale, Currency: "KRW", Availability: InStock, ImageURLs: []string{"https://img/1.jpg"},
				Attributes: map[string]string{"color": "black"}, UpdatedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Version: 42<<32 | 7,
			}},
			{Kind: ChangeUpsert, ID: "acme:2", Version: 9, Price: &PriceChange{Old: 100, New: 90, Currency: "EUR"}, Product: &Product{ID: "acme:2"}},
			{Kind: ChangeDelete, ID: "acme:3", Version: 1<<32 - 1},
		},
		Seen: []string{"acme:4"},
		End:  &UploadRun{Upload: "u1", Counts: Counts{Read: 10, Accepted: 3}},
	}
	fast, err := MarshalProductBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	var viaStd ProductBatch
	if err := json.Unmarshal(fast, &viaStd); err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var viaFast ProductBatch
	if err := UnmarshalProductBatch(std, &viaFast); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &viaStd) || !reflect.DeepEqual(in, &viaFast) {
		t.Errorf("codecs disagree:\n in   %+v\n std  %+v\n fast %+v", in, viaStd, viaFast)
	}
}
