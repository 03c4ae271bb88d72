package schemas

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldSource names the source column(s) feeding one canonical field. In
// JSON it is a string, or an array of strings (e.g. category levels spread
// over several columns). For NDJSON a column is a dotted path ("offer.price").
//
// Several columns mean category levels for category, a union of lists for
// image_urls, and "first non-empty column wins" for every other field.
type FieldSource []string

// UnmarshalJSON accepts "col" or ["col1", "col2"].
func (f *FieldSource) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*f = FieldSource{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*f = many
	return nil
}

// MarshalJSON writes a single column as a plain string.
func (f FieldSource) MarshalJSON() ([]byte, error) {
	if len(f) == 1 {
		return json.Marshal(f[0])
	}
	return json.Marshal([]string(f))
}

// Mapping tells normalise how one partner's columns become a Product. It is
// a versioned document: every upload records the version it used.
//
// Fields maps a canonical field (see MappingFields) to its source columns;
// Defaults gives a field's value when its columns are absent or empty. With
// a Preset, Fields, Defaults and Attributes override the preset's entries;
// an empty column list or value removes the preset's entry.
//
// list_price is for feeds whose price column holds the selling price and
// another the regular one (Naver's normal_price): when the list price is
// higher it becomes Price, and the selling price SalePrice.
//
// Quoted says whether the partner's delimited files quote fields (a quote
// at the start of a field opens a quoted field, RFC 4180); absent, CSV
// does and TSV (tsv, google_merchant, naver_ep) does not, so an inch mark
// in a TSV title is an ordinary character. Presets leave it to the format.
//
// Charset names the text encoding of the partner's files (see Charsets);
// absent, it is detected. Timezone is the zone of update times that name
// none (an IANA name or an offset such as "+09:00"); absent, UTC.
//
// Rules run in order on every row after the columns are mapped (and the
// defaults applied), before the values are checked: see Rule.
type Mapping struct {
	Version    int                    `json:"version,omitempty"`
	Preset     string                 `json:"preset,omitempty"`
	Fields     map[string]FieldSource `json:"fields,omitempty"`
	Defaults   map[string]string      `json:"defaults,omitempty"`
	Attributes map[string]string      `json:"attributes,omitempty"` // attribute name -> column
	Quoted     *bool                  `json:"quoted,omitempty"`
	Charset    string                 `json:"charset,omitempty"`
	Timezone   string                 `json:"timezone,omitempty"`
	Rules      []Rule                 `json:"rules,omitempty"`
	UpdatedAt  time.Time              `json:"updated_at,omitempty"`
}

// Charsets are the text encodings a mapping may declare, by the names
// partners use; each maps to the canonical name decoders know.
func Charsets() map[string]string {
	return map[string]string{
		"utf-8": CharsetUTF8, "utf8": CharsetUTF8,
		"euc-kr": CharsetEUCKR, "cp949": CharsetEUCKR, "ks_c_5601-1987": CharsetEUCKR, "uhc": CharsetEUCKR, "windows-949": CharsetEUCKR,
		"windows-1252": CharsetWindows1252, "cp1252": CharsetWindows1252, "iso-8859-1": CharsetWindows1252, "latin1": CharsetWindows1252,
		"utf-16": CharsetUTF16, "utf-16le": CharsetUTF16LE, "utf-16be": CharsetUTF16BE,
	}
}

// Canonical charset names.
const (
	CharsetUTF8        = "utf-8"
	CharsetEUCKR       = "euc-kr" // CP949, the superset Korean Windows writes
	CharsetWindows1252 = "windows-1252"
	CharsetUTF16       = "utf-16" // the byte order mark decides, little-endian without one
	CharsetUTF16LE     = "utf-16le"
	CharsetUTF16BE     = "utf-16be"
)

// CanonicalCharset resolves a charset name as partners write it; ok is
// false for one feedline does not read.
func CanonicalCharset(name string) (string, bool) {
	c, ok := Charsets()[strings.ToLower(strings.TrimSpace(name))]
	return c, ok
}

// field enumerates the canonical fields so a RowMapper can index plans by
// field instead of hashing names on every row.
type field uint8

const (
	fieldID field = iota
	fieldTitle
	fieldDescription
	fieldBrand
	fieldCategory
	fieldPrice
	fieldSalePrice
	fieldListPrice // the regular price when the price column holds the selling price
	fieldCurrency
	fieldAvailability
	fieldURL
	fieldImageURLs
	fieldGTIN
	fieldUpdatedAt
	fieldDeleted   // a truthy value deletes the product
	fieldOperation // I, U or D (Naver EP's class): insert, update only the fields carried, delete
	numFields
)

func (f field) String() string {
	switch f {
	case fieldID:
		return "id"
	case fieldTitle:
		return "title"
	case fieldDescription:
		return "description"
	case fieldBrand:
		return "brand"
	case fieldCategory:
		return "category"
	case fieldPrice:
		return "price"
	case fieldSalePrice:
		return "sale_price"
	case fieldListPrice:
		return "list_price"
	case fieldCurrency:
		return "currency"
	case fieldAvailability:
		return "availability"
	case fieldURL:
		return "url"
	case fieldImageURLs:
		return "image_urls"
	case fieldGTIN:
		return "gtin"
	case fieldUpdatedAt:
		return "updated_at"
	case fieldDeleted:
		return "deleted"
	case fieldOperation:
		return "operation"
	}
	return fmt.Sprintf("field(%d)", uint8(f))
}

// parseField resolves a canonical field name, accepting aliases.
func parseField(name string) (field, bool) {
	if name == "image_url" {
		return fieldImageURLs, true
	}
	for f := range numFields {
		if f.String() == name {
			return f, true
		}
	}
	return 0, false
}

// MappingFields lists the canonical field names a Mapping accepts, sorted.
// "image_url" is accepted too, as an alias of "image_urls".
func MappingFields() []string {
	names := make([]string, 0, numFields)
	for f := range numFields {
		names = append(names, f.String())
	}
	slices.Sort(names)
	return names
}

// MappingError lists every problem Validate found, each phrased so the
// partner can fix the mapping document.
type MappingError struct {
	Problems []string
}

func (e *MappingError) Error() string {
	return "invalid mapping: " + strings.Join(e.Problems, "; ")
}

// availabilityChoices is how availability errors spell the vocabulary.
const availabilityChoices = "in stock / out of stock / preorder / backorder"

// Validate reports every problem of the mapping as a *MappingError, or nil.
func (m Mapping) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var preset Mapping
	if m.Preset != "" {
		presets := Presets()
		p, ok := presets[m.Preset]
		if !ok {
			add("unknown preset %q; known presets: %s", m.Preset, strings.Join(sortedKeys(presets), ", "))
		}
		preset = p
	}

	mapped := make(map[field]string, len(m.Fields))
	for _, name := range sortedKeys(m.Fields) {
		f, ok := parseField(name)
		if !ok {
			add("unknown field %q; valid fields: %s", name, strings.Join(MappingFields(), ", "))
			continue
		}
		if other, dup := mapped[f]; dup {
			add("fields %q and %q both map %s; keep one", other, name, f)
			continue
		}
		mapped[f] = name
		columns := m.Fields[name]
		if len(columns) == 0 {
			if _, inPreset := preset.Fields[f.String()]; !inPreset {
				add("field %q names no column", name)
			}
			continue
		}
		for _, c := range columns {
			if strings.TrimSpace(c) == "" {
				add("field %q has an empty column name", name)
				break
			}
		}
	}

	for _, name := range sortedKeys(m.Defaults) {
		f, ok := parseField(name)
		if !ok {
			add("unknown field %q in defaults; valid fields: %s", name, strings.Join(MappingFields(), ", "))
			continue
		}
		v := strings.TrimSpace(m.Defaults[name])
		if v == "" {
			continue
		}
		switch f {
		case fieldID:
			add("id cannot have a default: every row would get the same SKU")
		case fieldCurrency:
			if _, ok := currencyFromText(v); !ok {
				add("default currency %q is not an ISO 4217 code", v)
			}
		case fieldAvailability:
			if _, ok := ParseAvailability(v); !ok {
				add("default availability %q is not one of %s", v, availabilityChoices)
			}
		}
	}

	for _, name := range sortedKeys(m.Attributes) {
		if strings.TrimSpace(name) == "" {
			add("an attribute has an empty name")
			continue
		}
		if strings.TrimSpace(m.Attributes[name]) == "" {
			if _, inPreset := preset.Attributes[name]; !inPreset {
				add("attribute %q has an empty column name", name)
			}
		}
	}

	if m.Charset != "" {
		if _, ok := CanonicalCharset(m.Charset); !ok {
			add("charset %q is not one feedline reads; use utf-8, euc-kr (cp949), windows-1252 or utf-16 (utf-16le, utf-16be)", m.Charset)
		}
	}
	if _, err := parseTimezone(m.Timezone); err != nil {
		add("%v", err)
	}
	problems = append(problems, validateRules(m.Rules)...)

	r := m.Resolve()
	if len(r.Fields["id"]) == 0 {
		add("required field \"id\" is not mapped")
	}
	for _, name := range []string{"title", "price"} {
		if len(r.Fields[name]) == 0 && strings.TrimSpace(r.Defaults[name]) == "" {
			add("required field %q is not mapped", name)
		}
	}
	if len(r.Fields["sale_price"]) > 0 && len(r.Fields["list_price"]) > 0 {
		add("sale_price and list_price are both mapped; map sale_price when the price column is the regular price, list_price when it is the selling price")
	}

	if len(problems) > 0 {
		return &MappingError{Problems: problems}
	}
	return nil
}

// Resolve expands the preset and applies the mapping's own entries on top.
// Field names are canonical in the result (aliases resolved) and it names no
// preset, so resolving it again changes nothing. It shares no maps with m.
func (m Mapping) Resolve() Mapping {
	out := Mapping{
		Version:    m.Version,
		UpdatedAt:  m.UpdatedAt,
		Fields:     map[string]FieldSource{},
		Defaults:   map[string]string{},
		Attributes: map[string]string{},
	}
	if m.Quoted != nil {
		q := *m.Quoted
		out.Quoted = &q
	}
	if m.Preset != "" {
		// Presets returns fresh maps, so they can be taken over as they are.
		if p, ok := Presets()[m.Preset]; ok {
			out.Fields, out.Defaults, out.Attributes, out.Timezone, out.Charset = p.Fields, p.Defaults, p.Attributes, p.Timezone, p.Charset
		}
	}
	if m.Timezone != "" {
		out.Timezone = m.Timezone
	}
	out.Rules = slices.Clone(m.Rules)
	if m.Charset != "" {
		out.Charset = m.Charset
	}
	for _, name := range sortedKeys(m.Fields) {
		src := m.Fields[name]
		if f, ok := parseField(name); ok {
			name = f.String()
		}
		if len(src) == 0 {
			delete(out.Fields, name)
		} else {
			out.Fields[name] = slices.Clone(src)
		}
	}
	for _, name := range sortedKeys(m.Defaults) {
		v := m.Defaults[name]
		if f, ok := parseField(name); ok {
			name = f.String()
		}
		if strings.TrimSpace(v) == "" {
			delete(out.Defaults, name)
		} else {
			out.Defaults[name] = v
		}
	}
	for name, column := range m.Attributes {
		if strings.TrimSpace(column) == "" {
			delete(out.Attributes, name)
		} else {
			out.Attributes[name] = column
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ErrColumnsMismatch says a file's columns cannot feed its mapping.
var ErrColumnsMismatch = errorString("the file's columns do not match the mapping")

// CheckColumns tells whether rows of a file with these columns can become
// products: every required field (id; title and price unless they have a
// default) needs one of its columns in the file. A file that carries a
// mapped operation or deleted column may hold updates and deletions, which
// need the id alone. The error wraps ErrColumnsMismatch and names what is
// missing, and the columns the file has.
func (m Mapping) CheckColumns(columns []string) error {
	r := m.Resolve()
	ix := newColumnIndex(columns)
	present := func(name string) bool {
		for _, c := range r.Fields[name] {
			if ix.position(c) >= 0 {
				return true
			}
		}
		return false
	}
	required := []string{"id"}
	if !present("operation") && !present("deleted") {
		required = append(required, "title", "price")
	}
	var problems []string
	for _, name := range required {
		if len(r.Fields[name]) == 0 || present(name) || strings.TrimSpace(r.Defaults[name]) != "" {
			continue // an unmapped required field is the mapping's problem, told when it was stored
		}
		cols := r.Fields[name]
		if len(cols) == 1 {
			problems = append(problems, fmt.Sprintf("%s is mapped to column %q", name, cols[0]))
		} else {
			problems = append(problems, fmt.Sprintf("%s is mapped to columns %s", name, quoteAll(cols)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	have := make([]string, 0, min(len(columns), 20))
	for _, c := range columns[:min(len(columns), 20)] {
		have = append(have, strconv.Quote(shorten(clean(c), 40)))
	}
	more := ""
	if len(columns) > 20 {
		more = fmt.Sprintf(" and %d more", len(columns)-20)
	}
	return fmt.Errorf("%w: %s, which the file does not have; its columns are %s%s. Change the mapping (PUT /v1/partners/{partner}/mapping) or export the file with those columns",
		ErrColumnsMismatch, strings.Join(problems, "; "), strings.Join(have, ", "), more)
}
