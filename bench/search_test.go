package bench

import (
	"strconv"
	"testing"
)

// TestNaverEPGen: a product is the same for the same seed and position,
// its identifiers are unique across the catalog and its GTIN carries a
// valid EAN-13 check digit.
func TestNaverEPGen(t *testing.T) {
	g := naverEPGen{seed: 1}
	if a, b := g.product(41), g.product(41); a.Title != b.Title || a.Price != b.Price || a.GTIN != b.GTIN {
		t.Fatalf("product 41 differs between calls: %+v vs %+v", a, b)
	}
	seen := map[string]int{}
	for n := range 5000 {
		p := g.product(n)
		if p.ID == "" || p.Title == "" || p.Price <= 0 || len(p.Category) != 4 {
			t.Fatalf("product %d lacks what a Naver EP row gives: %+v", n, p)
		}
		for _, id := range []string{p.ID, p.GTIN, p.Attributes["model_number"], g.mpn(n)} {
			if prev, dup := seen[id]; dup {
				t.Fatalf("identifier %q of product %d is also product %d's", id, n, prev)
			}
			seen[id] = n
		}
		sum := 0
		for i, c := range p.GTIN {
			d, _ := strconv.Atoi(string(c))
			if i%2 == 1 {
				d *= 3
			}
			sum += d
		}
		if len(p.GTIN) != 13 || sum%10 != 0 {
			t.Fatalf("product %d: GTIN %q is not a valid EAN-13", n, p.GTIN)
		}
	}
}

// TestSearchConfigValidate: settings a run cannot take are refused, naming the flag.
func TestSearchConfigValidate(t *testing.T) {
	if err := DefaultSearchConfig().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, change := range map[string]func(*SearchConfig){
		"--products": func(c *SearchConfig) { c.Products = 0 },
		"--duration": func(c *SearchConfig) { c.Duration = 0 },
		"--conns":    func(c *SearchConfig) { c.Conns = 1; c.Threads = 2 },
		"--rate":     func(c *SearchConfig) { c.Rate = 0 },
		"--classes":  func(c *SearchConfig) { c.Classes = []string{"nosuch"} },
	} {
		c := DefaultSearchConfig()
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
