package embedsearch

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"feedline/schemas"
)

// catalogGen makes realistic products: mixed Korean and English titles,
// a few sentences of description, three-level categories, a sale price on
// some, attributes and image URLs.
type catalogGen struct {
	rng *rand.Rand
}

var (
	genBrands   = []string{"삼성", "LG", "Sony", "Apple", "샤오미", "Anker", "QCY", "Bose", "JBL", "필립스", "쿠쿠", "Nike", "Adidas", "뉴발란스", "무인양품", "IKEA", "한샘", "Logitech", "Razer", "다이슨"}
	genNouns    = []string{"무선 이어폰", "블루투스 스피커", "노트북", "스마트워치", "Wireless Earbuds", "Gaming Mouse", "Mechanical Keyboard", "운동화", "Running Shoes", "전기밥솥", "공기청정기", "Vacuum Cleaner", "헤드폰", "USB-C Charger", "보조배터리", "모니터", "Desk Lamp", "텀블러", "Backpack", "백팩"}
	genAdjs     = []string{"초경량", "프리미엄", "New", "Pro", "Ultra", "Mini", "2025년형", "대용량", "Compact", "노이즈캔슬링", "Slim", "방수", "Fast", "Classic"}
	genSentence = []string{
		"하루 종일 편안하게 사용할 수 있는 인체공학적 디자인입니다.",
		"Premium materials and a sleek finish for everyday use.",
		"최신 블루투스 5.3 칩셋으로 안정적인 연결을 제공합니다.",
		"Long battery life keeps you going all week on a single charge.",
		"정품 인증 제품이며 무료 배송 및 1년 무상 A/S를 제공합니다.",
		"Includes a USB-C cable, quick start guide and carrying pouch.",
		"생활 방수 기능으로 운동이나 야외 활동에도 걱정 없습니다.",
		"Designed for comfort with soft cushions and adjustable fit.",
	}
	genCats = [][]string{
		{"전자제품", "음향기기", "이어폰"}, {"전자제품", "음향기기", "스피커"}, {"전자제품", "컴퓨터", "노트북"},
		{"전자제품", "컴퓨터", "주변기기"}, {"패션", "신발", "운동화"}, {"가전", "주방가전", "밥솥"},
		{"가전", "생활가전", "청소기"}, {"Electronics", "Audio", "Headphones"}, {"Home", "Lighting"}, {"Sports", "Bags"},
	}
)

func (g catalogGen) product(partner string, n int, version uint64) schemas.Product {
	r := g.rng
	sku := fmt.Sprintf("SKU-%08d", n)
	brand := genBrands[r.IntN(len(genBrands))]
	title := fmt.Sprintf("%s %s %s %s %d", brand, genAdjs[r.IntN(len(genAdjs))], genNouns[r.IntN(len(genNouns))], genAdjs[r.IntN(len(genAdjs))], 100+r.IntN(900))
	var desc strings.Builder
	for i := range 3 + r.IntN(3) {
		if i > 0 {
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
	return schemas.Product{
		ID:           schemas.ProductID(partner, sku),
		Partner:      partner,
		SKU:          sku,
		Title:        title,
		Description:  desc.String(),
		Brand:        brand,
		Category:     genCats[r.IntN(len(genCats))],
		Price:        price,
		SalePrice:    sale,
		Currency:     "KRW",
		Availability: schemas.Availabilities[r.IntN(len(schemas.Availabilities))],
		URL:          "https://shop.example/p/" + sku,
		ImageURLs:    []string{"https://img.example/" + sku + "/1.jpg", "https://img.example/" + sku + "/2.jpg"},
		GTIN:         fmt.Sprintf("880%010d", n),
		Attributes:   map[string]string{"color": "black", "색상": "검정", "model": sku},
		UpdatedAt:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second),
		Version:      version,
	}
}

func (g catalogGen) batch(partner string, from, n int, version uint64) []schemas.ProductChange {
	out := make([]schemas.ProductChange, n)
	for i := range out {
		p := g.product(partner, from+i, version)
		out[i] = schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: version, Product: &p, New: true}
	}
	return out
}

// BenchmarkApply indexes new products in calls of 1,000 (one call per op),
// including the wait for the last batch to reach the disk, from one caller
// and from two concurrent callers.
func BenchmarkApply(b *testing.B) {
	for _, callers := range []int{1, 2} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) { benchmarkApply(b, callers) })
	}
}

func benchmarkApply(b *testing.B, callers int) {
	size := benchApplySize()
	ix, err := Open(filepath.Join(b.TempDir(), "products"))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	g := catalogGen{rng: rand.New(rand.NewPCG(1, 2))}
	batches := make([][]schemas.ProductChange, b.N)
	for i := range batches {
		batches[i] = g.batch("shop", i*size, size, 1)
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := c; i < b.N; i += callers {
				res, err := ix.Apply(b.Context(), batches[i])
				if err != nil {
					b.Error(err)
					return
				}
				if res.Indexed != int64(size) {
					b.Errorf("indexed %d of %d", res.Indexed, size)
				}
			}
		})
	}
	wg.Wait()
	if err := ix.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "docs/s")
	// The process's CPU time, background merging included: what a
	// shared machine's other load does not change.
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e3/float64(b.N*size), "cpu-µs/doc")
}

// BenchmarkAnalyzer analyses one product's title and description.
func BenchmarkAnalyzer(b *testing.B) {
	g := catalogGen{rng: rand.New(rand.NewPCG(1, 2))}
	p := g.product("shop", 1, 1)
	a := newTextAnalyzer()
	for b.Loop() {
		a.Analyze([]byte(p.Title))
		a.Analyze([]byte(p.Description))
	}
}

// benchCatalog is an index of 50,000 generated products from five shops,
// closed when b ends.
func benchCatalog(b *testing.B) *Index {
	ix, err := Open(filepath.Join(b.TempDir(), "products"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ix.Close() })
	g := catalogGen{rng: rand.New(rand.NewPCG(3, 4))}
	for i := range 50 {
		if _, err := ix.Apply(b.Context(), g.batch(fmt.Sprintf("shop%d", i%5), i*1000, 1000, 1)); err != nil {
			b.Fatal(err)
		}
	}
	return ix
}

// BenchmarkSearch runs free text with two filters and both facets over
// 50,000 products.
func BenchmarkSearch(b *testing.B) {
	ix := benchCatalog(b)
	queries := []schemas.SearchRequest{
		{Text: "무선 이어폰", Categories: []string{"전자제품"}, Availability: []schemas.Availability{schemas.InStock, schemas.Preorder}},
		{Text: "wireless earbuds", Brands: []string{"Sony", "Apple", "삼성"}, MaxPrice: ptr(int64(300000))},
		{Text: "프리미엄 스피커", Partners: []string{"shop1", "shop2"}, Categories: []string{"전자제품 > 음향기기"}},
		{Text: "running shoes", Categories: []string{"패션"}, MinPrice: ptr(int64(50000))},
	}
	b.ResetTimer()
	for i := range b.N {
		res, err := ix.Search(b.Context(), queries[i%len(queries)])
		if err != nil {
			b.Fatal(err)
		}
		if res.Total == 0 {
			b.Fatalf("no hits for %+v", queries[i%len(queries)])
		}
	}
}

// BenchmarkSearchUncached runs searches that miss the answer cache (it is
// cleared before each) over 50,000 products: exact words, and words with
// typos and a last word to complete.
func BenchmarkSearchUncached(b *testing.B) {
	ix := benchCatalog(b)
	for _, c := range []struct {
		name    string
		queries []schemas.SearchRequest
	}{
		{"exact", []schemas.SearchRequest{
			{Text: "무선 이어폰", Categories: []string{"전자제품"}},
			{Text: "wireless earbuds", Brands: []string{"Sony", "Apple", "삼성"}},
			{Text: "gaming mouse"},
			{Text: "running shoes", MinPrice: ptr(int64(50000))},
		}},
		{"forgiving", []schemas.SearchRequest{
			{Text: "무선 이어폰", Categories: []string{"전자제품"}},
			{Text: "wirless earbds", Brands: []string{"Sony", "Apple", "삼성"}},
			{Text: "gaming mou"},
			{Text: "runing sho", MinPrice: ptr(int64(50000))},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				ix.answers.changed()
				if _, err := ix.Search(b.Context(), c.queries[i%len(c.queries)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// benchApplySize is the batch size of BenchmarkApply (FEEDLINE_BENCH_BATCH, default 1000).
func benchApplySize() int {
	if n, err := strconv.Atoi(os.Getenv("FEEDLINE_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// BenchmarkSearchFacetsUncached runs searches past the answer cache, so each op
// pays for its passes and its facets: the four of BenchmarkSearch, which
// match a few thousand products (facets over every match), and two that
// match more than the bound (facets over the top hits), over 50,000
// products.
func BenchmarkSearchFacetsUncached(b *testing.B) {
	ix := benchCatalog(b)
	queries := []schemas.SearchRequest{
		{Text: "무선 이어폰", Categories: []string{"전자제품"}, Availability: []schemas.Availability{schemas.InStock, schemas.Preorder}},
		{Text: "wireless earbuds", Brands: []string{"Sony", "Apple", "삼성"}, MaxPrice: ptr(int64(300000))},
		{Text: "프리미엄 스피커", Partners: []string{"shop1", "shop2"}, Categories: []string{"전자제품 > 음향기기"}},
		{Text: "running shoes", Categories: []string{"패션"}, MinPrice: ptr(int64(50000))},
		{Sort: schemas.SortNewest},
		{Text: "프리미엄", Sort: schemas.SortRelevance},
	}
	for i := range queries {
		queries[i].Currency = "KRW"
	}
	// Measured once merging settled; CPU time per search is the figure
	// other processes on a shared machine do not change.
	for last := uint64(0); ix.Segments() != last; time.Sleep(time.Second) {
		last = ix.Segments()
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	defer func() {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	for i := range b.N {
		r := queries[i%len(queries)]
		p, err := ix.plan(r)
		if err != nil {
			b.Fatal(err)
		}
		res, err := ix.search(b.Context(), p, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Total == 0 {
			b.Fatalf("no hits for %+v", r)
		}
	}
}
