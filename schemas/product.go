// Package schemas holds feedline's domain: the canonical product, the events
// that flow between stages, partner mappings, and the small interfaces that
// stages use to reach outside systems.
package schemas

import (
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned by stores and indexes when a key does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when creating something that already exists.
var ErrExists = errors.New("already exists")

// Availability is the one stock vocabulary every partner value maps onto.
type Availability string

// The availabilities a product can have.
const (
	InStock    Availability = "in_stock"
	OutOfStock Availability = "out_of_stock"
	Preorder   Availability = "preorder"
	Backorder  Availability = "backorder"
)

// Availabilities lists the vocabulary in a stable order (for docs and validation).
var Availabilities = []Availability{InStock, OutOfStock, Preorder, Backorder}

// Product is the canonical catalog record. Prices are integer minor units of
// Currency (cents, or whole won for KRW), never floats.
type Product struct {
	ID           string            `json:"id"`
	Partner      string            `json:"partner"`
	SKU          string            `json:"sku"`
	Title        string            `json:"title"`
	Description  string            `json:"description,omitempty"`
	Brand        string            `json:"brand,omitempty"`
	Category     []string          `json:"category,omitempty"`
	Price        int64             `json:"price"`
	SalePrice    *int64            `json:"sale_price,omitempty"`
	Currency     string            `json:"currency"`
	Availability Availability      `json:"availability"`
	URL          string            `json:"url,omitempty"`
	ImageURLs    []string          `json:"image_urls,omitempty"`
	GTIN         string            `json:"gtin,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
	Version      uint64            `json:"version"`
}

// ProductID joins partner and SKU; the colon cannot appear in a partner id.
func ProductID(partner, sku string) string { return partner + ":" + sku }

// SplitProductID returns the partner and SKU parts of a product id.
func SplitProductID(id string) (partner, sku string) {
	partner, sku, _ = strings.Cut(id, ":")
	return partner, sku
}

// EffectivePrice is what a shopper pays: the sale price when there is one.
func (p *Product) EffectivePrice() int64 {
	if p.SalePrice != nil {
		return *p.SalePrice
	}
	return p.Price
}

// CategoryPaths expands ["A","B","C"] into "A", "A > B", "A > B > C" so a
// filter can match any level of the path.
func (p *Product) CategoryPaths() []string {
	out := make([]string, 0, len(p.Category))
	for i := range p.Category {
		out = append(out, strings.Join(p.Category[:i+1], CategorySeparator))
	}
	return out
}

// CategorySeparator joins category levels in paths and facets.
const CategorySeparator = " > "
