package elasticsearch

// The Elasticsearch layout of the product index: an index template applied to
// every concrete index "<alias>-vN" behind the search alias. A document is
// the Product JSON plus the derived fields below; a delete is a tombstone
// document (FieldDeleted true) that keeps the delete's version, because
// Elasticsearch forgets real deletes after index.gc_deletes and a late,
// older upsert would bring the product back.

// MappingVersion names the field layout and text analysis. An index
// written with another must be rebuilt (feedline reindex), not read.
const MappingVersion = 3

// Document fields. schemas.Product fields keep their JSON names.
const (
	FieldID            = "id" // keyword: sort tie-break (sorting on _id is disabled by default)
	FieldTitle         = "title"
	FieldBrand         = "brand"
	FieldBrandKeyword  = "brand.keyword" // exact brand: filter and facet
	FieldDescription   = "description"
	FieldCategoryPaths = "category_paths" // every CategoryPaths() value
	FieldPartner       = "partner"
	FieldAvailability  = "availability"
	FieldCurrency      = "currency"        // ISO 4217: what a price filter or sort compares in
	FieldEffective     = "effective_price" // EffectivePrice(), minor units
	FieldUpdatedAt     = "updated_at"
	FieldVersion       = "version"
	FieldDeleted       = "deleted"     // true on tombstones only
	FieldIdentifiers   = "identifiers" // every Product.Identifiers() value, exact
	FieldSuggest       = "suggest"     // every Product.SuggestTerms() value, exact
)

// TextAnalyzer analyses title, brand and description at indexing and
// query time alike, as the embedded index does: Hangul split from Latin
// letters and digits it touches ("갤럭시S24" is "갤럭시 S24"), standard
// tokenizer, fullwidth folding, lowercase, CJK and Hangul bigrams, English
// plurals.
const TextAnalyzer = "product_text"

// Text field boosts, as in the embedded index: a title match outranks a
// brand match, which outranks a description match.
const (
	BoostTitle       = 3
	BoostBrand       = 2
	BoostDescription = 1
	// BoostIdentifier puts the product whose SKU, GTIN, MPN or model number
	// the query is above every text match.
	BoostIdentifier = 1000
)

// IndexTemplate is the body of PUT _index_template/<name>.
type IndexTemplate struct {
	IndexPatterns []string       `json:"index_patterns"`
	Priority      int            `json:"priority"`
	Template      IndexBody      `json:"template"`
	Meta          map[string]any `json:"_meta,omitempty"`
}

// IndexBody holds the settings and mappings of one index.
type IndexBody struct {
	Settings IndexSettings `json:"settings"`
	Mappings Mappings      `json:"mappings"`
}

// IndexSettings are the index settings the template sets.
type IndexSettings struct {
	Shards   int      `json:"number_of_shards"`
	Replicas int      `json:"number_of_replicas"`
	Analysis Analysis `json:"analysis"`
}

// Analysis declares custom character filters, token filters and
// analyzers.
type Analysis struct {
	CharFilter map[string]CharFilter  `json:"char_filter,omitempty"`
	Filter     map[string]TokenFilter `json:"filter"`
	Analyzer   map[string]Analyzer    `json:"analyzer"`
}

// CharFilter is a configured character filter.
type CharFilter struct {
	Type        string `json:"type"`
	Pattern     string `json:"pattern,omitempty"`
	Replacement string `json:"replacement,omitempty"`
}

// TokenFilter is a configured token filter.
type TokenFilter struct {
	Type     string `json:"type"`
	Language string `json:"language,omitempty"`
}

// Analyzer is a custom analyzer: character filters, a tokenizer and
// token filters, in order.
type Analyzer struct {
	Type       string   `json:"type"`
	CharFilter []string `json:"char_filter,omitempty"`
	Tokenizer  string   `json:"tokenizer"`
	Filter     []string `json:"filter"`
}

// hangulBoundary matches the empty place between a Hangul syllable and a
// Latin letter or digit, in either order (Java regular expression syntax).
// The standard tokenizer keeps "갤럭시S24" as one token that cjk_bigram
// leaves whole, so "갤럭시" would not find it.
const hangulBoundary = `(?<=\p{IsHangul})(?=[\p{IsLatin}\p{Nd}])|(?<=[\p{IsLatin}\p{Nd}])(?=\p{IsHangul})`

// Mappings are the field mappings. Dynamic is "false": a field Product
// gains later is kept in the source but not indexed until the layout says so.
type Mappings struct {
	Dynamic    string           `json:"dynamic"`
	Meta       map[string]any   `json:"_meta,omitempty"`
	Properties map[string]Field `json:"properties"`
}

// Field is one field mapping.
type Field struct {
	Type      string           `json:"type,omitempty"`
	Analyzer  string           `json:"analyzer,omitempty"`
	Index     *bool            `json:"index,omitempty"`
	DocValues *bool            `json:"doc_values,omitempty"`
	Enabled   *bool            `json:"enabled,omitempty"`
	Fields    map[string]Field `json:"fields,omitempty"`
}

// MetaMappingVersion is the _meta key that records MappingVersion in
// templates and mappings.
const MetaMappingVersion = "feedline_mapping_version"

// IndexPattern matches the concrete indexes behind alias.
func IndexPattern(alias string) string { return alias + "-v*" }

// NewIndexTemplate returns the template for the indexes behind alias.
// Shards below one mean one; replicas below zero mean none.
func NewIndexTemplate(alias string, shards, replicas int) IndexTemplate {
	return IndexTemplate{
		IndexPatterns: []string{IndexPattern(alias)},
		Priority:      200,
		Template:      NewIndexBody(shards, replicas),
		Meta:          map[string]any{MetaMappingVersion: MappingVersion},
	}
}

// NewIndexBody returns the settings and mappings of one product index.
func NewIndexBody(shards, replicas int) IndexBody {
	if shards <= 0 {
		shards = 1
	}
	replicas = max(replicas, 0)
	return IndexBody{
		Settings: IndexSettings{
			Shards:   shards,
			Replicas: replicas,
			Analysis: Analysis{
				CharFilter: map[string]CharFilter{
					"hangul_boundary": {Type: "pattern_replace", Pattern: hangulBoundary, Replacement: " "},
				},
				Filter: map[string]TokenFilter{
					// plural_english only undoes plurals ("earbuds", "boxes",
					// "shoes"), so "running" is not cut to "run"; it is the
					// stemmer the embedded index uses.
					"english_plural": {Type: "stemmer", Language: "plural_english"},
				},
				Analyzer: map[string]Analyzer{
					TextAnalyzer: {
						Type:       "custom",
						CharFilter: []string{"hangul_boundary"},
						Tokenizer:  "standard",
						Filter:     []string{"cjk_width", "lowercase", "cjk_bigram", "english_plural"},
					},
				},
			},
		},
		Mappings: NewMappings(),
	}
}

// NewMappings returns the field mappings of a product index.
func NewMappings() Mappings {
	no := func() *bool { b := false; return &b }
	keyword := Field{Type: "keyword"}
	sourceOnly := func(typ string) Field { return Field{Type: typ, Index: no(), DocValues: no()} }
	text := Field{Type: "text", Analyzer: TextAnalyzer}
	return Mappings{
		Dynamic: "false",
		Meta:    map[string]any{MetaMappingVersion: MappingVersion},
		Properties: map[string]Field{
			FieldID:          keyword,
			FieldPartner:     keyword,
			"sku":            keyword,
			FieldTitle:       text,
			FieldDescription: text,
			FieldBrand: {
				Type: "text", Analyzer: TextAnalyzer,
				Fields: map[string]Field{"keyword": keyword},
			},
			"category":         sourceOnly("keyword"),
			FieldCategoryPaths: keyword,
			"price":            {Type: "long"},
			"sale_price":       {Type: "long"},
			FieldEffective:     {Type: "long"},
			FieldCurrency:      keyword,
			FieldAvailability:  keyword,
			"url":              sourceOnly("keyword"),
			"image_urls":       sourceOnly("keyword"),
			"gtin":             keyword,
			"attributes":       {Type: "object", Enabled: no()},
			FieldUpdatedAt:     {Type: "date"},
			FieldVersion:       {Type: "long"},
			FieldDeleted:       {Type: "boolean"},
			FieldIdentifiers:   keyword,
			FieldSuggest:       keyword,
		},
	}
}
