package elasticsearch

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"feedline/schemas"
)

var (
	genBrands   = []string{"삼성", "LG", "Sony", "Apple", "샤오미", "Anker", "QCY", "Bose", "JBL", "필립스", "쿠쿠", "Nike", "다이슨"}
	genNouns    = []string{"무선 이어폰", "블루투스 스피커", "노트북", "Wireless Earbuds", "Gaming Mouse", "운동화", "Running Shoes", "전기밥솥", "공기청정기", "USB-C Charger", "보조배터리", "Desk Lamp"}
	genAdjs     = []string{"초경량", "프리미엄", "New", "Pro", "Ultra", "Mini", "2025년형", "대용량", "Compact", "노이즈캔슬링", "Slim", "방수"}
	genSentence = []string{
		"하루 종일 편안하게 사용할 수 있는 인체공학적 디자인입니다.",
		"Premium materials and a sleek finish for everyday use.",
		"최신 블루투스 5.3 칩셋으로 안정적인 연결을 제공합니다.",
		"Long battery life keeps you going all week on a single charge.",
		"정품 인증 제품이며 무료 배송 및 1년 무상 A/S를 제공합니다.",
		"Includes a USB-C cable, quick start guide and carrying pouch.",
	}
	genCats = [][]string{
		{"전자제품", "음향기기", "이어폰"}, {"전자제품", "컴퓨터", "노트북"}, {"패션", "신발", "운동화"},
		{"가전", "주방가전", "밥솥"}, {"Electronics", "Audio", "Headphones"}, {"Home", "Lighting"},
	}
)

// benchProducts makes n realistic products: mixed Korean and English
// titles, a few sentences of description, three-level categories, a sale
// price on some, attributes and image URLs.
func benchProducts(n int) []schemas.Product {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]schemas.Product, n)
	for i := range out {
		sku := fmt.Sprintf("SKU-%08d", i)
		brand := genBrands[r.IntN(len(genBrands))]
		var desc strings.Builder
		for j := range 3 + r.IntN(3) {
			if j > 0 {
				desc.WriteByte(' ')
			}
			desc.WriteString(genSentence[r.IntN(len(genSentence))])
		}
		price := int64(1000 + r.IntN(500)*1000)
		var sale *int64
		if r.IntN(10) < 3 {
			s := price * 8 / 10
			sale = &s
		}
		out[i] = schemas.Product{
			ID: schemas.ProductID("shop1", sku), Partner: "shop1", SKU: sku,
			Title:       fmt.Sprintf("%s %s %s %s %d", brand, genAdjs[r.IntN(len(genAdjs))], genNouns[r.IntN(len(genNouns))], genAdjs[r.IntN(len(genAdjs))], 100+r.IntN(900)),
			Description: desc.String(), Brand: brand, Category: genCats[r.IntN(len(genCats))],
			Price: price, SalePrice: sale, Currency: "KRW",
			Availability: schemas.Availabilities[r.IntN(len(schemas.Availabilities))],
			URL:          "https://shop.example/p/" + sku,
			ImageURLs:    []string{"https://img.example/" + sku + "/1.jpg", "https://img.example/" + sku + "/2.jpg"},
			GTIN:         fmt.Sprintf("880%010d", i),
			Attributes:   map[string]string{"color": "black", "색상": "검정", "model": sku},
			UpdatedAt:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		}
	}
	return out
}

// instantNode answers bulk requests at once with one created item per
// action, and the setup calls of Open.
func instantNode(b *testing.B) *httptest.Server {
	item := []byte(`{"index":{"status":201}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk"):
			body, _ := io.ReadAll(r.Body)
			n := bytes.Count(body, []byte{'\n'}) / 2 // an action line and a source line each
			var out bytes.Buffer
			out.Grow(32 + n*(len(item)+1))
			out.WriteString(`{"took":1,"errors":false,"items":[`)
			for i := range n {
				if i > 0 {
					out.WriteByte(',')
				}
				out.Write(item)
			}
			out.WriteString(`]}`)
			_, _ = w.Write(out.Bytes())
		case r.URL.Path == "/":
			_, _ = w.Write(recorded(b, exInfo))
		case strings.HasPrefix(r.URL.Path, "/_alias/"):
			_, _ = io.WriteString(w, `{"products-v1":{"aliases":{"products":{}}}}`)
		default:
			_, _ = io.WriteString(w, `{"acknowledged":true}`)
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkApply measures Apply of 4,000-product batches: document
// encoding, the bulk indexer and reading the bulk answers, against a node
// that answers at once.
func BenchmarkApply(b *testing.B) {
	const batch = 4000
	srv := instantNode(b)
	ix, err := Open(b.Context(), Config{
		Addresses: []string{srv.URL},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	products := benchProducts(batch)
	changes := make([]schemas.ProductChange, batch)
	for i := range products {
		changes[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: products[i].ID, Product: &products[i]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range changes {
			changes[j].Version = uint64(i + 1)
		}
		res, err := ix.Apply(b.Context(), changes)
		if err != nil || res.Indexed != batch {
			b.Fatalf("Apply: %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "docs/s")
}
