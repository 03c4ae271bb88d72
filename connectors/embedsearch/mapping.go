package embedsearch

import (
	"fmt"
	"strconv"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"

	"feedline/schemas"
)

// Index fields. Documents are built directly (IndexAdvanced) rather than
// through the mapping's reflection walk, which is slower and would add
// fields of its own; the mapping below describes the filter fields for
// bleve's metadata and query-side tools.
const (
	fieldTitle        = "title"
	fieldBrand        = "brand"
	fieldDescription  = "description"
	fieldBrandKeyword = "brand_kw"
	fieldCategory     = "category" // every CategoryPaths() value
	fieldPartner      = "partner"
	fieldAvailability = "availability"
	fieldCurrency     = "currency"   // ISO 4217, for searches that compare prices
	fieldPrice        = "price"      // effective price, for range filters
	fieldPriceSort    = "price_sort" // effective price, sort only; unmapped
	fieldUpdated      = "updated"    // UpdatedAt in Unix milliseconds; sort only, unmapped
	fieldVersion      = "_v"         // applied change version, products and tombstones; unmapped
	fieldIdentifier   = "ident"      // every Product.Identifiers() value, exact
	fieldLive         = "_live"      // present on products, absent on tombstones
	fieldSuggest      = "suggest"    // every Product.SuggestTerms() value, exact; its dictionary recounts suggestions at open
	fieldSource       = "_source"    // the product JSON, stored only (sourceCodec)
)

// schemaVersion names the field layout and text analysis; an index written
// with another must be rebuilt from the log rather than read.
const schemaVersion = "feedline-products-5"

var schemaKey = []byte("feedline:schema")

// Text field boosts: a title match outranks a brand match, which outranks a
// description match.
const (
	boostTitle       = 3.0
	boostBrand       = 2.0
	boostDescription = 1.0
	// boostIdentifier puts the product whose SKU, GTIN, MPN or model number
	// the query is above every text match.
	boostIdentifier = 1000.0
)

const (
	textOptions       = index.IndexField
	filterOptions     = index.IndexField | index.SkipFreqNorm
	sortOptions       = index.IndexField | index.SkipFreqNorm | index.DocValues
	storedOptions     = index.StoreField
	liveTerm          = "t"
	facetSize         = 20
	facetBrand        = "brand"
	facetCategory     = "category"
	facetPartner      = "partner"
	facetAvailability = "availability"
)

// newMapping describes the filter and sort fields for bleve: no dynamic
// fields, no _all composite, nothing stored, doc values only where a sort or
// facet reads them. Text fields are analysed by newTextAnalyzer in this
// package, at indexing and query time, so the mapping does not name them.
func newMapping() (*mapping.IndexMappingImpl, error) {
	im := mapping.NewIndexMapping()
	im.IndexDynamic = false
	im.StoreDynamic = false
	im.DocValuesDynamic = false

	kw := func(name string, docValues bool) *mapping.FieldMapping {
		fm := mapping.NewKeywordFieldMapping()
		fm.Name = name
		fm.Analyzer = keyword.Name
		fm.Store = false
		fm.IncludeInAll = false
		fm.IncludeTermVectors = false
		fm.DocValues = docValues
		fm.SkipFreqNorm = true
		return fm
	}
	price := mapping.NewNumericFieldMapping()
	price.Name = fieldPrice
	price.Store = false
	price.IncludeInAll = false
	price.DocValues = false
	price.SkipFreqNorm = true

	dm := mapping.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(fieldBrandKeyword, kw(fieldBrandKeyword, true))
	dm.AddFieldMappingsAt(fieldCategory, kw(fieldCategory, true))
	dm.AddFieldMappingsAt(fieldPartner, kw(fieldPartner, true))
	dm.AddFieldMappingsAt(fieldAvailability, kw(fieldAvailability, true))
	dm.AddFieldMappingsAt(fieldCurrency, kw(fieldCurrency, true))
	dm.AddFieldMappingsAt(fieldSuggest, kw(fieldSuggest, false))
	dm.AddFieldMappingsAt(fieldPrice, price)
	dm.AddFieldMappingsAt(fieldIdentifier, kw(fieldIdentifier, false))
	dm.AddFieldMappingsAt(fieldLive, kw(fieldLive, false))
	im.DefaultMapping = dm
	if err := im.Validate(); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return im, nil
}

// docBuilder turns products and tombstones into bleve documents.
type docBuilder struct {
	text    analysis.Analyzer
	sources *sourceCodec
}

// suggest are p.SuggestTerms(), which Apply counts too.
func (b docBuilder) product(id string, version uint64, p *schemas.Product, suggest []string) (*document.Document, error) {
	src, err := b.sources.encode(p)
	if err != nil {
		return nil, fmt.Errorf("encode product %s: %w", id, err)
	}
	d := document.NewDocument(id)
	b.addText(d, fieldTitle, p.Title)
	b.addText(d, fieldBrand, p.Brand)
	b.addText(d, fieldDescription, p.Description)
	addTerm(d, fieldBrandKeyword, nil, p.Brand, sortOptions)
	for i, path := range p.CategoryPaths() {
		addTerm(d, fieldCategory, []uint64{uint64(i)}, path, sortOptions)
	}
	// Facets and price statistics read partner, availability and currency.
	addTerm(d, fieldPartner, nil, p.Partner, sortOptions)
	addTerm(d, fieldAvailability, nil, string(p.Availability), sortOptions)
	addTerm(d, fieldCurrency, nil, p.Currency, sortOptions)
	for i, t := range suggest {
		addTerm(d, fieldSuggest, []uint64{uint64(i)}, t, filterOptions)
	}
	for i, ident := range p.Identifiers() {
		addTerm(d, fieldIdentifier, []uint64{uint64(i)}, ident, filterOptions)
	}
	// Range filters need a full numeric field's sixteen precision terms;
	// sorts read doc values, which need only the exact one, so sorting goes
	// through a field of its own. Updated is only sorted on.
	price := float64(p.EffectivePrice())
	d.AddField(document.NewNumericFieldWithIndexingOptions(fieldPrice, nil, priceTerm(p.EffectivePrice()), filterOptions))
	d.AddField(document.NewTextFieldWithIndexingOptions(fieldPriceSort, nil, sortableNumber(price), sortOptions))
	d.AddField(document.NewTextFieldWithIndexingOptions(fieldUpdated, nil, sortableNumber(float64(p.UpdatedAt.UnixMilli())), sortOptions))
	d.AddField(document.NewTextFieldWithIndexingOptions(fieldLive, nil, []byte(liveTerm), filterOptions))
	d.AddField(versionField(version))
	d.AddField(document.NewTextFieldWithIndexingOptions(fieldSource, nil, src, storedOptions))
	return d, nil
}

// tombstone records a delete: it keeps the version so an older upsert
// arriving later is recognised as stale, and matches no search.
func (b docBuilder) tombstone(id string, version uint64) *document.Document {
	d := document.NewDocument(id)
	d.AddField(versionField(version))
	return d
}

func (b docBuilder) addText(d *document.Document, name, value string) {
	if value == "" {
		return
	}
	d.AddField(document.NewTextFieldCustom(name, nil, []byte(value), textOptions, b.text))
}

func addTerm(d *document.Document, name string, pos []uint64, value string, opts index.FieldIndexingOptions) {
	if value == "" {
		return
	}
	d.AddField(document.NewTextFieldWithIndexingOptions(name, pos, []byte(value), opts))
}

func versionField(v uint64) *document.TextField {
	return document.NewTextFieldWithIndexingOptions(fieldVersion, nil, encodeVersion(v), sortOptions)
}

// encodeVersion writes v as 16 hex digits: doc values separate terms with
// 0xFF bytes, so a raw binary encoding of a version such as 0x…FFC9 would be
// split apart. Fixed-width hex also sorts like the number.
func encodeVersion(v uint64) []byte {
	return fmt.Appendf(nil, "%016x", v)
}

func decodeVersion(term []byte) (uint64, bool) {
	if len(term) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(term), 16, 64)
	return v, err == nil
}

// priceTerm is the number the price filter field indexes for a price in
// minor units: bleve indexes a number's float64 bits, and an integral
// float's low mantissa bits are all zero, so most of its sixteen precision
// terms were as many distinct terms as prices (a fifth of the index on
// disk). Indexed as the integer itself, the terms above a price's
// highest bit are one shared term. priceRange asks in the same encoding.
func priceTerm(minor int64) float64 { return numeric.Int64ToFloat64(minor) }

// sortableNumber encodes n the way bleve's numeric fields encode their
// exact-precision term, so a numeric sort and search_after read it.
func sortableNumber(n float64) []byte {
	return numeric.MustNewPrefixCodedInt64(numeric.Float64ToInt64(n), 0)
}
