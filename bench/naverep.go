package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"feedline/schemas"
)

// naverEPGen makes the products two Naver Shopping EP feeds give after the
// naver_ep preset: Korean and English titles in the EP style ("[브랜드] …"),
// no description, a maker, a model number and four category levels. Product
// n is a function of the seed and n alone, so the bench can name existing
// identifiers without keeping the catalog in memory.
type naverEPGen struct{ seed uint64 }

// naverPartners are the two EP feeds the catalog is split over.
var naverPartners = []string{"naver-a", "naver-b"}

var (
	epBrands = []struct{ name, maker, code string }{
		{"JBL", "Harman", "JB"}, {"Sony", "Sony", "WH"}, {"삼성전자", "삼성전자", "SM"}, {"LG전자", "LG전자", "LG"},
		{"Apple", "Apple", "MX"}, {"Bose", "Bose", "QC"}, {"샤오미", "Xiaomi", "XM"}, {"Anker", "Anker", "AK"},
		{"QCY", "QCY", "QC"}, {"로지텍", "Logitech", "LO"}, {"다이슨", "Dyson", "DY"}, {"쿠쿠", "쿠쿠전자", "CR"},
		{"나이키", "Nike", "NK"}, {"아디다스", "Adidas", "AD"}, {"무인양품", "MUJI", "MU"}, {"락앤락", "Lock&Lock", "LL"},
	}
	epItems = []struct {
		ko, en string
		cats   [4]string
	}{
		{"헤드폰", "Headphones", [4]string{"디지털/가전", "음향가전", "헤드폰", "무선헤드폰"}},
		{"무선 이어폰", "Wireless Earbuds", [4]string{"디지털/가전", "음향가전", "이어폰", "블루투스이어폰"}},
		{"블루투스 스피커", "Bluetooth Speaker", [4]string{"디지털/가전", "음향가전", "스피커", "블루투스스피커"}},
		{"게이밍 마우스", "Gaming Mouse", [4]string{"디지털/가전", "PC주변기기", "마우스", "게이밍마우스"}},
		{"기계식 키보드", "Mechanical Keyboard", [4]string{"디지털/가전", "PC주변기기", "키보드", "기계식키보드"}},
		{"보조배터리", "Power Bank", [4]string{"디지털/가전", "휴대폰액세서리", "배터리", "보조배터리"}},
		{"러닝화", "Running Shoes", [4]string{"패션잡화", "남성신발", "운동화", "러닝화"}},
		{"백팩", "Backpack", [4]string{"패션잡화", "가방", "백팩", "캐주얼백팩"}},
		{"전기밥솥", "Rice Cooker", [4]string{"디지털/가전", "주방가전", "밥솥", "전기압력밥솥"}},
		{"무선 청소기", "Cordless Vacuum", [4]string{"디지털/가전", "생활가전", "청소기", "무선청소기"}},
		{"텀블러", "Tumbler", [4]string{"생활/건강", "주방용품", "잔/컵", "텀블러"}},
		{"스마트워치", "Smartwatch", [4]string{"디지털/가전", "웨어러블", "스마트워치", "스마트워치"}},
	}
	epAdjectives = []string{"노이즈캔슬링", "초경량", "2025년형", "Pro", "Mini", "Premium", "대용량", "방수", "Slim", "Ultra", "한정판", "Classic"}
	epColors     = []string{"블랙", "화이트", "Navy", "그레이", "베이지", "Red", "실버", "Blue"}
)

// product is the n-th product (from 0) of the catalog, with its version.
func (g naverEPGen) product(n int) schemas.Product {
	r := rand.New(rand.NewPCG(g.seed, uint64(n)))
	b := epBrands[r.IntN(len(epBrands))]
	item := epItems[r.IntN(len(epItems))]
	partner := naverPartners[n%len(naverPartners)]
	sku := fmt.Sprintf("EP%09d", n+1)
	model := g.modelNumber(n, b.code)

	var title strings.Builder
	title.Grow(96)
	title.WriteString("[" + b.name + "] ")
	if r.IntN(2) == 0 {
		title.WriteString(epAdjectives[r.IntN(len(epAdjectives))] + " ")
	}
	title.WriteString(item.ko + " " + item.en + " " + model + " " + epColors[r.IntN(len(epColors))] + " 정품")

	price := (10 + r.Int64N(4990)) * 100
	var sale *int64
	if r.IntN(10) < 3 {
		s := price * (70 + r.Int64N(25)) / 100 / 100 * 100
		sale = &s
	}
	availability := schemas.InStock
	if r.IntN(10) == 0 {
		availability = schemas.OutOfStock
	}
	attrs := map[string]string{"maker": b.maker, "model_number": model, "naver_category": fmt.Sprintf("5000%04d", r.IntN(2000))}
	if r.IntN(2) == 0 {
		attrs["mpn"] = g.mpn(n)
	}
	return schemas.Product{
		ID:           schemas.ProductID(partner, sku),
		Partner:      partner,
		SKU:          sku,
		Title:        title.String(),
		Brand:        b.name,
		Category:     item.cats[:],
		Price:        price,
		SalePrice:    sale,
		Currency:     "KRW",
		Availability: availability,
		URL:          "https://smartstore.example.com/products/" + sku,
		ImageURLs:    []string{"https://shop-phinf.example.net/" + sku + "/main.jpg"},
		GTIN:         g.gtin(n),
		Attributes:   attrs,
		UpdatedAt:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(365*24*3600)) * time.Second),
		Version:      1,
	}
}

// modelNumber is unique per product: the maker's code, a series and n.
func (g naverEPGen) modelNumber(n int, code string) string {
	return fmt.Sprintf("%s-%d%06d", code, 1+n%9, n)
}

func (g naverEPGen) mpn(n int) string { return fmt.Sprintf("MPN%08dK", n) }

// gtin is an EAN-13 from the Korean range 880 with a valid check digit,
// unique per product.
func (g naverEPGen) gtin(n int) string {
	d := []byte(fmt.Sprintf("880%09d", n))
	sum := 0
	for i, c := range d {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += int(c-'0') * w
	}
	return string(append(d, byte('0'+(10-sum%10)%10)))
}

// changes are the upserts of products [from, from+n).
func (g naverEPGen) changes(from, n int) []schemas.ProductChange {
	out := make([]schemas.ProductChange, n)
	for i := range out {
		p := g.product(from + i)
		out[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: p.Version, Product: &p, New: true}
	}
	return out
}
