package schemas

import (
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Fingerprint hashes a product's canonical content: everything a shopper or
// analyst could see change, but not Version or UpdatedAt. Equal fingerprints
// mean a re-uploaded row changes nothing downstream.
func (p *Product) Fingerprint() uint64 {
	d := xxhash.New()
	w := func(s string) {
		_, _ = d.WriteString(s)
		_, _ = d.Write([]byte{0})
	}
	w(p.ID)
	w(p.Title)
	w(p.Description)
	w(p.Brand)
	for _, c := range p.Category {
		w(c)
	}
	w("|")
	w(strconv.FormatInt(p.Price, 10))
	if p.SalePrice != nil {
		w(strconv.FormatInt(*p.SalePrice, 10))
	}
	w("|")
	w(p.Currency)
	w(string(p.Availability))
	w(p.URL)
	for _, u := range p.ImageURLs {
		w(u)
	}
	w("|")
	w(p.GTIN)
	keys := make([]string, 0, len(p.Attributes))
	for k := range p.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w(k)
		w(p.Attributes[k])
	}
	return d.Sum64()
}
