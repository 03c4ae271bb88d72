package decode

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// generatedColumns are the columns of the generated product files, in order.
var generatedColumns = []string{
	"id", "title", "description", "brand", "category", "price", "sale_price",
	"currency", "availability", "link", "image_link", "gtin", "updated_at",
}

// productRow is one generated product as it is written to Parquet.
// SalePrice is null when the product is not on sale.
type productRow struct {
	ID           string    `parquet:"id" json:"id"`
	Title        string    `parquet:"title" json:"title"`
	Description  string    `parquet:"description" json:"description"`
	Brand        string    `parquet:"brand,dict" json:"brand"`
	Category     string    `parquet:"category,dict" json:"category"`
	Price        string    `parquet:"price" json:"price"`
	SalePrice    *string   `parquet:"sale_price,optional" json:"sale_price"`
	Currency     string    `parquet:"currency,dict" json:"currency"`
	Availability string    `parquet:"availability,dict" json:"availability"`
	Link         string    `parquet:"link" json:"link"`
	ImageLink    string    `parquet:"image_link" json:"image_link"`
	GTIN         string    `parquet:"gtin" json:"gtin"`
	UpdatedAt    time.Time `parquet:"updated_at,timestamp(millisecond)" json:"updated_at"`
}

// values renders the row as decoders return it.
func (p *productRow) values() []string {
	sale := ""
	if p.SalePrice != nil {
		sale = *p.SalePrice
	}
	return []string{p.ID, p.Title, p.Description, p.Brand, p.Category, p.Price, sale,
		p.Currency, p.Availability, p.Link, p.ImageLink, p.GTIN, p.UpdatedAt.Format(time.RFC3339Nano)}
}

// GeneratedMapping is the partner mapping (JSON) of the columns GenerateCSV
// and GenerateParquet write.
const GeneratedMapping = `{"fields": {"id": "id", "title": "title", "description": "description", "brand": "brand", "category": "category",
  "price": "price", "sale_price": "sale_price", "currency": "currency", "availability": "availability", "url": "link",
  "image_urls": "image_link", "gtin": "gtin", "updated_at": "updated_at"}}`

// GenerateCSV writes a header line and then rows realistic products as CSV,
// with the columns id, title, description, brand, category, price,
// sale_price, currency, availability, link, image_link, gtin and updated_at.
// The same seed gives the same products in every Generate function; about
// 1% of them are invalid on purpose (an empty title or a price of "abc").
func GenerateCSV(w io.Writer, rows int, seed int64) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(generatedColumns); err != nil {
		return err
	}
	g := newProductGen(seed)
	for i := range rows {
		p := g.next(i)
		if err := cw.Write(p.values()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// GenerateNDJSON writes rows realistic products as NDJSON, one object per
// line with the same keys as GenerateCSV's columns, in order. Prices are
// JSON numbers when they are numbers and a missing sale price is null.
func GenerateNDJSON(w io.Writer, rows int, seed int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	g := newProductGen(seed)
	var line []byte
	for i := range rows {
		p := g.next(i)
		line = append(line[:0], '{')
		for j, v := range p.values() {
			if j > 0 {
				line = append(line, ',')
			}
			line = appendJSONString(line, generatedColumns[j])
			line = append(line, ':')
			switch {
			case j == 6 && p.SalePrice == nil:
				line = append(line, "null"...)
			case (j == 5 || j == 6) && isDecimal(v):
				line = append(line, v...)
			default:
				line = appendJSONString(line, v)
			}
		}
		line = append(line, '}', '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// generatedRowGroup bounds the rows a Parquet writer buffers in memory.
const generatedRowGroup = 50_000

// GenerateParquet writes rows realistic products as Parquet, with the same
// columns as GenerateCSV, in row groups of at most 50,000 rows so memory
// stays bounded.
func GenerateParquet(w io.Writer, rows int, seed int64) error {
	pw := parquet.NewGenericWriter[productRow](w, parquet.MaxRowsPerRowGroup(generatedRowGroup))
	g := newProductGen(seed)
	batch := make([]productRow, 0, 1024)
	flush := func() error {
		_, err := pw.Write(batch)
		batch = batch[:0]
		return err
	}
	for i := range rows {
		batch = append(batch, g.next(i))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
		if (i+1)%generatedRowGroup == 0 {
			if err := flush(); err != nil {
				return err
			}
			if err := pw.Flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return pw.Close()
}

func isDecimal(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && s != "" && s[0] != '+' && s[0] != '.' && !strings.ContainsAny(s, "eEnNiI")
}

// appendJSONString writes s as a JSON string; s is valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// productGen makes plausible products of a Korean marketplace.
type productGen struct {
	r    *rand.Rand
	base time.Time
}

func newProductGen(seed int64) *productGen {
	return &productGen{
		r:    rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

var (
	genBrands = []string{"나이키", "Nike", "삼성전자", "LG전자", "Apple", "아디다스", "무인양품", "Uniqlo", "오뚜기", "CJ제일제당",
		"아모레퍼시픽", "Sony", "다이슨", "Logitech", "쿠쿠", "Lock&Lock"}
	genItems = []struct{ ko, en, category string }{
		{"러닝화", "Running Shoes", "패션 > 신발 > 운동화"},
		{"무선 이어폰", "Wireless Earbuds", "디지털 > 음향기기 > 이어폰"},
		{"텀블러", "Tumbler", "생활 > 주방용품 > 텀블러"},
		{"백팩", "Backpack", "패션 > 가방 > 백팩"},
		{"스킨케어 세트", "Skincare Set", "뷰티 > 스킨케어 > 세트"},
		{"라면 5입", "Ramen 5-pack", "식품 > 가공식품 > 라면"},
		{"노트북 파우치", "Laptop Sleeve", "디지털 > 액세서리 > 파우치"},
		{"전기밥솥", "Rice Cooker", "가전 > 주방가전 > 밥솥"},
		{"무선 마우스", "Wireless Mouse", "디지털 > 주변기기 > 마우스"},
		{"후드 티셔츠", "Hoodie", "패션 > 의류 > 티셔츠"},
		{"헤드폰", "Noise Cancelling Headphones", "Electronics > Audio > Headphones"},
		{"보온 물병", "Insulated Water Bottle", "Home & Garden > Kitchen > Drinkware"},
	}
	genAdjectives = []string{"신상", "한정판", "초경량", "Premium", "Classic", "2025 신형", "베스트셀러", "Pro"}
	genColors     = []string{"블랙", "화이트", "Navy", "Grey", "베이지", "Red"}
	genPhrases    = []string{
		"가볍고 튼튼한 소재로 매일 쓰기 좋습니다.",
		"Free shipping on orders over 30,000원.",
		"공식 수입원 정품, 1년 무상 A/S.",
		"Designed for everyday comfort; machine washable.",
		"당일 출고 (평일 오후 2시 이전 주문).",
		"Compatible with iOS and Android.",
	}
	genAvailability = []string{"in_stock", "in_stock", "in_stock", "in_stock", "in_stock", "in_stock", "in_stock", "in_stock",
		"out_of_stock", "out_of_stock", "preorder", "backorder"}
)

func (g *productGen) next(i int) productRow {
	r := g.r
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	item := genItems[r.IntN(len(genItems))]
	brand := pick(genBrands)
	id := fmt.Sprintf("SKU-%08d", i+1)

	var title strings.Builder
	title.Grow(96)
	title.WriteString("[" + brand + "] ")
	if r.IntN(3) == 0 {
		title.WriteString(pick(genAdjectives) + " ")
	}
	title.WriteString(item.ko + " " + item.en)
	switch r.IntN(10) {
	case 0:
		title.WriteString(", " + pick(genColors)) // a comma: quoted in CSV
	case 1:
		title.WriteString(` 15.6" ` + pick(genColors)) // an inch mark: doubled quote in CSV
	default:
		title.WriteString(" " + pick(genColors))
	}

	desc := pick(genPhrases) + " " + pick(genPhrases)
	if r.IntN(50) == 0 {
		desc = "특징:\n- " + pick(genPhrases) + "\n- " + pick(genPhrases) // a newline: quoted in CSV
	}

	currency := "KRW"
	var price, salePrice int64
	var priceText, saleText string
	if r.IntN(10) < 7 {
		price = (5 + r.Int64N(4995)) * 100
		priceText = strconv.FormatInt(price, 10)
		if r.IntN(10) < 3 {
			salePrice = price * (70 + r.Int64N(25)) / 100 / 100 * 100
			saleText = strconv.FormatInt(salePrice, 10)
		}
	} else {
		currency = "USD"
		price = 499 + r.Int64N(50000)
		priceText = fmt.Sprintf("%d.%02d", price/100, price%100)
		if r.IntN(10) < 3 {
			salePrice = price * (70 + r.Int64N(25)) / 100
			saleText = fmt.Sprintf("%d.%02d", salePrice/100, salePrice%100)
		}
	}

	p := productRow{
		ID:           id,
		Title:        title.String(),
		Description:  desc,
		Brand:        brand,
		Category:     item.category,
		Price:        priceText,
		Currency:     currency,
		Availability: pick(genAvailability),
		Link:         "https://shop.example.com/products/" + id + "?utm_source=feed",
		ImageLink:    "https://img.example.com/p/" + id + "/main.jpg",
		GTIN:         g.gtin(currency),
		UpdatedAt:    g.base.Add(time.Duration(r.Int64N(365*24*3600)) * time.Second),
	}
	if saleText != "" {
		p.SalePrice = &saleText
	}
	if r.IntN(100) == 0 { // invalid on purpose, for the rejection path
		if r.IntN(2) == 0 {
			p.Title = ""
		} else {
			p.Price = "abc"
		}
	}
	return p
}

// gtin makes an EAN-13 with a valid check digit; Korean goods start with 880.
func (g *productGen) gtin(currency string) string {
	var d [13]byte
	start := 0
	if currency == "KRW" {
		d[0], d[1], d[2] = 8, 8, 0
		start = 3
	}
	for i := start; i < 12; i++ {
		d[i] = byte(g.r.IntN(10))
	}
	sum := 0
	for i := range 12 {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += int(d[i]) * w
	}
	d[12] = byte((10 - sum%10) % 10)
	for i := range d {
		d[i] += '0'
	}
	return string(d[:])
}
