package schemas

// Elasticsearch layout of the product index: an index template applied to
// every concrete index "<alias>-vN" behind the search alias. A document is
// the Product JSON plus the derived fields below; a delete is a tombstone
// document (ESFieldDeleted true) that keeps the delete's version, because
// Elasticsearch forgets real deletes after index.gc_deletes and a late,
// older upsert would bring the product back.

// ESMappingVersion names the field layout and text analysis. An index
// written with another must be rebuilt (feedline reindex), not read.
const ESMappingVersion = 1

// Document fields. Product fields keep their JSON names.
const (
	ESFieldID            = "id" // keyword: sort tie-break (sorting on _id is disabled by default)
	ESFieldTitle         = "title"
	ESFieldBrand         = "brand"
	ESFieldBrandKeyword  = "brand.keyword" // exact brand: filter and facet
	ESFieldDescription   = "description"
	ESFieldCategoryPaths = "category_paths" // every CategoryPaths() value
	ESFieldPartner       = "partner"
	ESFieldAvailability  = "availability"
	ESFieldEffective     = "effective_price" // EffectivePrice(), minor units
	ESFieldUpdatedAt     = "updated_at"
	ESFieldVersion       = "version"
	ESFieldDeleted       = "deleted" // true on tombstones only
)

// ESTextAnalyzer analyses title, brand and description at indexing and
// query time alike, as the embedded index does: Hangul split from Latin
// letters and digits it touches ("갤럭시S24" is "갤럭시 S24"), standard
// tokenizer, fullwidth folding, lowercase, CJK and Hangul bigrams, English
// plurals.
const ESTextAnalyzer = "product_text"

// Text field boosts, as in the embedded index: a title match outranks a
// brand match, which outranks a description match.
const (
	ESBoostTitle       = 3
	ESBoostBrand       = 2
	ESBoostDescription = 1
)

// ESIndexTemplate is the body of PUT _index_template/<name>.
type ESIndexTemplate struct {
	IndexPatterns []string       `json:"index_patterns"`
	Priority      int            `json:"priority"`
	Template      ESIndexBody    `json:"template"`
	Meta          map[string]any `json:"_meta,omitempty"`
}

// ESIndexBody holds the settings and mappings of one index.
type ESIndexBody struct {
	Settings ESIndexSettings `json:"settings"`
	Mappings ESMappings      `json:"mappings"`
}

// ESIndexSettings are the index settings the template sets.
type ESIndexSettings struct {
	Shards   int        `json:"number_of_shards"`
	Replicas int        `json:"number_of_replicas"`
	Analysis ESAnalysis `json:"analysis"`
}

// ESAnalysis declares custom character filters, token filters and
// analyzers.
type ESAnalysis struct {
	CharFilter map[string]ESCharFilter  `json:"char_filter,omitempty"`
	Filter     map[string]ESTokenFilter `json:"filter"`
	Analyzer   map[string]ESAnalyzer    `json:"analyzer"`
}

// ESCharFilter is a configured character filter.
type ESCharFilter struct {
	Type        string `json:"type"`
	Pattern     string `json:"pattern,omitempty"`
	Replacement string `json:"replacement,omitempty"`
}

// ESTokenFilter is a configured token filter.
type ESTokenFilter struct {
	Type     string `json:"type"`
	Language string `json:"language,omitempty"`
}

// ESAnalyzer is a custom analyzer: character filters, a tokenizer and
// token filters, in order.
type ESAnalyzer struct {
	Type       string   `json:"type"`
	CharFilter []string `json:"char_filter,omitempty"`
	Tokenizer  string   `json:"tokenizer"`
	Filter     []string `json:"filter"`
}

// esHangulBoundary matches the empty place between a Hangul syllable and a
// Latin letter or digit, in either order (Java regular expression syntax).
// The standard tokenizer keeps "갤럭시S24" as one token that cjk_bigram
// leaves whole, so "갤럭시" would not find it.
const esHangulBoundary = `(?<=\p{IsHangul})(?=[\p{IsLatin}\p{Nd}])|(?<=[\p{IsLatin}\p{Nd}])(?=\p{IsHangul})`

// ESMappings are the field mappings. Dynamic is "false": a field Product
// gains later is kept in the source but not indexed until the layout says so.
type ESMappings struct {
	Dynamic    string             `json:"dynamic"`
	Meta       map[string]any     `json:"_meta,omitempty"`
	Properties map[string]ESField `json:"properties"`
}

// ESField is one field mapping.
type ESField struct {
	Type      string             `json:"type,omitempty"`
	Analyzer  string             `json:"analyzer,omitempty"`
	Index     *bool              `json:"index,omitempty"`
	DocValues *bool              `json:"doc_values,omitempty"`
	Enabled   *bool              `json:"enabled,omitempty"`
	Fields    map[string]ESField `json:"fields,omitempty"`
}

// ESMetaMappingVersion is the _meta key that records ESMappingVersion in
// templates and mappings.
const ESMetaMappingVersion = "feedline_mapping_version"

// ESIndexPattern matches the concrete indexes behind alias.
func ESIndexPattern(alias string) string { return alias + "-v*" }

// ESNewIndexTemplate returns the template for the indexes behind alias.
// Shards below one mean one; replicas below zero mean none.
func ESNewIndexTemplate(alias string, shards, replicas int) ESIndexTemplate {
	return ESIndexTemplate{
		IndexPatterns: []string{ESIndexPattern(alias)},
		Priority:      200,
		Template:      ESNewIndexBody(shards, replicas),
		Meta:          map[string]any{ESMetaMappingVersion: ESMappingVersion},
	}
}

// ESNewIndexBody returns the settings and mappings of one product index.
func ESNewIndexBody(shards, replicas int) ESIndexBody {
	if shards <= 0 {
		shards = 1
	}
	replicas = max(replicas, 0)
	return ESIndexBody{
		Settings: ESIndexSettings{
			Shards:   shards,
			Replicas: replicas,
			Analysis: ESAnalysis{
				CharFilter: map[string]ESCharFilter{
					"hangul_boundary": {Type: "pattern_replace", Pattern: esHangulBoundary, Replacement: " "},
				},
				Filter: map[string]ESTokenFilter{
					// plural_english only undoes plurals ("earbuds", "boxes",
					// "shoes"), so "running" is not cut to "run"; it is the
					// stemmer the embedded index uses.
					"english_plural": {Type: "stemmer", Language: "plural_english"},
				},
				Analyzer: map[string]ESAnalyzer{
					ESTextAnalyzer: {
						Type:       "custom",
						CharFilter: []string{"hangul_boundary"},
						Tokenizer:  "standard",
						Filter:     []string{"cjk_width", "lowercase", "cjk_bigram", "english_plural"},
					},
				},
			},
		},
		Mappings: ESNewMappings(),
	}
}

// ESNewMappings returns the field mappings of a product index.
func ESNewMappings() ESMappings {
	no := func() *bool { b := false; return &b }
	keyword := ESField{Type: "keyword"}
	sourceOnly := func(typ string) ESField { return ESField{Type: typ, Index: no(), DocValues: no()} }
	text := ESField{Type: "text", Analyzer: ESTextAnalyzer}
	return ESMappings{
		Dynamic: "false",
		Meta:    map[string]any{ESMetaMappingVersion: ESMappingVersion},
		Properties: map[string]ESField{
			ESFieldID:          keyword,
			ESFieldPartner:     keyword,
			"sku":              keyword,
			ESFieldTitle:       text,
			ESFieldDescription: text,
			ESFieldBrand: {
				Type: "text", Analyzer: ESTextAnalyzer,
				Fields: map[string]ESField{"keyword": keyword},
			},
			"category":           sourceOnly("keyword"),
			ESFieldCategoryPaths: keyword,
			"price":              {Type: "long"},
			"sale_price":         {Type: "long"},
			ESFieldEffective:     {Type: "long"},
			"currency":           keyword,
			ESFieldAvailability:  keyword,
			"url":                sourceOnly("keyword"),
			"image_urls":         sourceOnly("keyword"),
			"gtin":               keyword,
			"attributes":         {Type: "object", Enabled: no()},
			ESFieldUpdatedAt:     {Type: "date"},
			ESFieldVersion:       {Type: "long"},
			ESFieldDeleted:       {Type: "boolean"},
		},
	}
}
