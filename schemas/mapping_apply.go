package schemas

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a row may carry.
const (
	MaxSKUBytes   = 256
	MaxTitleRunes = 500
)

// RowMapper turns the raw rows of one batch into Products. Column positions
// are resolved once, when it is built, so Map does no lookups by name. A
// RowMapper is not modified by Map and may be shared between goroutines.
type RowMapper struct {
	partner   string
	updatedAt time.Time
	fields    [numFields]fieldPlan
	attrs     []attributePlan
	currency  currencyUnit // the default currency, when it is a valid one
}

// fieldPlan is where one canonical field comes from in this batch.
type fieldPlan struct {
	mapped   bool
	columns  []string // as the mapping names them, for rejection reasons
	indexes  []int    // positions of those columns present in the batch, in mapping order
	fallback string   // the mapping's default for the field
}

type attributePlan struct {
	name  string
	index int
}

// NewRowMapper prepares m (resolving its preset) for a batch with the given
// columns. updatedAt stamps rows that carry no parseable updated_at of their
// own. Column names match exactly after trimming, or else case-insensitively.
func NewRowMapper(m Mapping, partner string, columns []string, updatedAt time.Time) *RowMapper {
	r := m.Resolve()
	header := make([]string, len(columns))
	for i, c := range columns {
		header[i] = clean(c)
	}
	position := func(column string) int {
		column = clean(column)
		if i := slices.Index(header, column); i >= 0 {
			return i
		}
		return slices.IndexFunc(header, func(h string) bool { return strings.EqualFold(h, column) })
	}

	rm := &RowMapper{partner: partner, updatedAt: updatedAt}
	for name, src := range r.Fields {
		f, ok := parseField(name)
		if !ok || len(src) == 0 {
			continue
		}
		p := &rm.fields[f]
		p.mapped = true
		p.columns = src
		for _, c := range src {
			if i := position(c); i >= 0 {
				p.indexes = append(p.indexes, i)
			}
		}
	}
	for name, v := range r.Defaults {
		if f, ok := parseField(name); ok {
			rm.fields[f].fallback = clean(v)
		}
	}
	if u, ok := currencyFromText(rm.fields[fieldCurrency].fallback); ok {
		rm.currency = u
	}
	for _, name := range sortedKeys(r.Attributes) {
		if i := position(r.Attributes[name]); i >= 0 {
			rm.attrs = append(rm.attrs, attributePlan{name: name, index: i})
		}
	}
	return rm
}

// Deleted reports whether the row asks to delete its product (the mapped
// "deleted" column holds 1, true, yes, y, d, delete or deleted), and its SKU.
func (rm *RowMapper) Deleted(row RawRow) (sku string, deleted bool) {
	if !rm.fields[fieldDeleted].mapped {
		return "", false
	}
	switch strings.ToLower(rm.value(row, fieldDeleted)) {
	case "1", "true", "yes", "y", "d", "delete", "deleted":
		sku = rm.value(row, fieldID)
		return sku, sku != ""
	}
	return "", false
}

// SourceID is the product id a row names, or "" when it names none. It
// reads the id alone, so it works on a row too broken to map.
func (rm *RowMapper) SourceID(row RawRow) string { return rm.value(row, fieldID) }

// Map converts one row, or explains in the rejection why it cannot. It
// leaves Version to the normalise stage.
func (rm *RowMapper) Map(row RawRow) (Product, *Rejection) {
	sku := rm.value(row, fieldID)
	if sku == "" {
		return Product{}, rm.missing(row, "", fieldID)
	}
	if len(sku) > MaxSKUBytes {
		return Product{}, rm.reject(row, sku, fieldID, fmt.Sprintf("id is %d bytes long; at most %d are allowed", len(sku), MaxSKUBytes))
	}

	title := rm.value(row, fieldTitle)
	if title == "" {
		return Product{}, rm.missing(row, sku, fieldTitle)
	}
	title = collapseSpace(title)
	if n := utf8.RuneCountInString(title); n > MaxTitleRunes {
		return Product{}, rm.reject(row, sku, fieldTitle, fmt.Sprintf("title has %d characters; at most %d are allowed", n, MaxTitleRunes))
	}

	// A currency column is authoritative; a default yields to a currency
	// the price itself names.
	currencyText, fromColumn := rm.column(row, fieldCurrency)
	unit := rm.currency
	if (fromColumn && currencyText != rm.currency.code) || (!fromColumn && currencyText != "" && unit.code == "") {
		u, ok := currencyFromText(currencyText)
		if !ok {
			return Product{}, rm.reject(row, sku, fieldCurrency, fmt.Sprintf("currency %q is not an ISO 4217 code", currencyText))
		}
		unit = u
	}
	columnCurrency := unit.code

	priceText := rm.value(row, fieldPrice)
	if priceText == "" {
		return Product{}, rm.missing(row, sku, fieldPrice)
	}
	price, unit, named, err := parseMoney(priceText, unit)
	if err != nil {
		return Product{}, rm.reject(row, sku, fieldPrice, "price "+err.Error())
	}
	if named && fromColumn && unit.code != columnCurrency {
		return Product{}, rm.reject(row, sku, fieldPrice, fmt.Sprintf("price %q is in %s but the currency column says %s", priceText, unit.code, columnCurrency))
	}
	if price == 0 {
		return Product{}, rm.reject(row, sku, fieldPrice, fmt.Sprintf("price %q is zero", priceText))
	}

	var sale *int64
	if text := rm.value(row, fieldSalePrice); text != "" {
		v, rej := rm.relatedPrice(row, sku, fieldSalePrice, text, unit)
		if rej != nil {
			return Product{}, rej
		}
		if v > price {
			return Product{}, rm.reject(row, sku, fieldSalePrice, fmt.Sprintf("sale price %s is higher than price %s", formatMinor(v, unit.scale), formatMinor(price, unit.scale)))
		}
		// Zero is how many feeds say "no sale"; a sale at full price is no sale.
		if v > 0 && v < price {
			sale = &v
		}
	}
	if text := rm.value(row, fieldListPrice); text != "" {
		v, rej := rm.relatedPrice(row, sku, fieldListPrice, text, unit)
		if rej != nil {
			return Product{}, rej
		}
		if v > price {
			selling := price
			price, sale = v, &selling
		}
	}

	// Empty with no default means in stock: feeds often omit availability when everything listed is for sale.
	availability := InStock
	if text := rm.value(row, fieldAvailability); text != "" {
		a, ok := ParseAvailability(text)
		if !ok {
			return Product{}, rm.reject(row, sku, fieldAvailability, fmt.Sprintf("availability %q is not one of %s", text, availabilityChoices))
		}
		availability = a
	}

	url := rm.value(row, fieldURL)
	if url != "" && !isHTTPURL(url) {
		return Product{}, rm.reject(row, sku, fieldURL, fmt.Sprintf("url %q is not an http(s) URL", url))
	}

	gtin := rm.value(row, fieldGTIN)
	if gtin != "" {
		if err := checkGTIN(gtin); err != nil {
			return Product{}, rm.reject(row, sku, fieldGTIN, "gtin "+err.Error())
		}
	}

	p := Product{
		ID:           ProductID(rm.partner, sku),
		Partner:      rm.partner,
		SKU:          sku,
		Title:        title,
		Description:  rm.value(row, fieldDescription),
		Brand:        rm.value(row, fieldBrand),
		Category:     rm.category(row),
		Price:        price,
		SalePrice:    sale,
		Currency:     unit.code,
		Availability: availability,
		URL:          url,
		ImageURLs:    rm.imageURLs(row),
		GTIN:         gtin,
		UpdatedAt:    rm.updatedAt,
	}
	if text := rm.value(row, fieldUpdatedAt); text != "" {
		if t, ok := parseUpdatedAt(text); ok {
			p.UpdatedAt = t
		}
	}
	for _, a := range rm.attrs {
		if v := cell(row, a.index); v != "" {
			if p.Attributes == nil {
				p.Attributes = make(map[string]string, len(rm.attrs))
			}
			p.Attributes[a.name] = v
		}
	}
	return p, nil
}

// relatedPrice parses a sale or list price, which must be in the price's currency.
func (rm *RowMapper) relatedPrice(row RawRow, sku string, f field, text string, unit currencyUnit) (int64, *Rejection) {
	v, u, named, err := parseMoney(text, unit)
	if err != nil {
		return 0, rm.reject(row, sku, f, f.String()+" "+err.Error())
	}
	if named && u.code != unit.code {
		return 0, rm.reject(row, sku, f, fmt.Sprintf("%s %q is in %s but price is in %s", f, text, u.code, unit.code))
	}
	return v, nil
}

// column returns the first non-empty value of f's columns, and whether it
// came from a column rather than the mapping's default.
func (rm *RowMapper) column(row RawRow, f field) (string, bool) {
	p := &rm.fields[f]
	for _, i := range p.indexes {
		if v := cell(row, i); v != "" {
			return v, true
		}
	}
	return p.fallback, false
}

// value is column without the provenance.
func (rm *RowMapper) value(row RawRow, f field) string {
	v, _ := rm.column(row, f)
	return v
}

// category reads levels from several columns, or splits one column's path.
func (rm *RowMapper) category(row RawRow) []string {
	p := &rm.fields[fieldCategory]
	if len(p.columns) > 1 {
		var levels []string
		for _, i := range p.indexes {
			if v := cell(row, i); v != "" {
				if levels == nil {
					levels = make([]string, 0, len(p.indexes))
				}
				levels = append(levels, v)
			}
		}
		if levels != nil || p.fallback == "" {
			return levels
		}
		return splitCategory(p.fallback)
	}
	return splitCategory(rm.value(row, fieldCategory))
}

// imageURLs joins the lists of every image column, or the default's.
func (rm *RowMapper) imageURLs(row RawRow) []string {
	p := &rm.fields[fieldImageURLs]
	var urls []string
	for _, i := range p.indexes {
		urls = appendImageURLs(urls, cell(row, i))
	}
	if urls == nil && p.fallback != "" {
		urls = appendImageURLs(urls, p.fallback)
	}
	return urls
}

func (rm *RowMapper) reject(row RawRow, sku string, f field, reason string) *Rejection {
	return &Rejection{Row: row.Row, SourceID: sku, Field: f.String(), Reason: reason}
}

// missing explains why a required field has no value.
func (rm *RowMapper) missing(row RawRow, sku string, f field) *Rejection {
	p := &rm.fields[f]
	var reason string
	switch {
	case !p.mapped:
		reason = fmt.Sprintf("%s is not mapped to a column", f)
	case len(p.indexes) == 0 && len(p.columns) == 1:
		reason = fmt.Sprintf("column %q (mapped to %s) is not in the file", p.columns[0], f)
	case len(p.indexes) == 0:
		reason = fmt.Sprintf("columns %s (mapped to %s) are not in the file", quoteAll(p.columns), f)
	case len(p.columns) == 1:
		reason = fmt.Sprintf("%s is empty (column %q)", f, p.columns[0])
	default:
		reason = fmt.Sprintf("%s is empty (columns %s)", f, quoteAll(p.columns))
	}
	return rm.reject(row, sku, f, reason)
}

func quoteAll(columns []string) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(quoted, ", ")
}

// cell returns value i of the row, cleaned; rows may be shorter than the header.
func cell(row RawRow, i int) string {
	if i < len(row.Values) {
		return clean(row.Values[i])
	}
	return ""
}

// clean drops a UTF-8 byte order mark and surrounding white space.
func clean(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(s, "\uFEFF"))
}

// collapseSpace turns every run of white space into one space. It allocates
// only when there is something to collapse.
func collapseSpace(s string) string {
	prevSpace := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ' ':
				if prevSpace {
					return strings.Join(strings.Fields(s), " ")
				}
				prevSpace = true
			case c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
				return strings.Join(strings.Fields(s), " ")
			default:
				prevSpace = false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			return strings.Join(strings.Fields(s), " ")
		}
		prevSpace = false
		i += size
	}
	return s
}

// ParseAvailability maps a partner's stock value ("in stock", "Y", "품절",
// "https://schema.org/InStock") onto the Availability vocabulary, ignoring
// case, spaces, '_' and '-'.
func ParseAvailability(s string) (Availability, bool) {
	s = clean(s)
	if i := strings.LastIndex(s, "schema.org/"); i >= 0 {
		s = s[i+len("schema.org/"):]
	}
	var buf [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '_' || c == '-' || c == '\t':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return "", false
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "instock", "available", "y", "yes", "true", "1", "limitedavailability", "onlineonly", "instoreonly",
		"재고있음", "판매중", "있음":
		return InStock, true
	case "outofstock", "n", "no", "false", "0", "soldout", "discontinued",
		"품절", "일시품절", "재고없음", "없음", "판매중지", "판매종료":
		return OutOfStock, true
	case "preorder", "presale", "예약판매", "예약":
		return Preorder, true
	case "backorder":
		return Backorder, true
	}
	return "", false
}

// splitCategory splits a category path on '>', else '|', else " / " (a bare
// '/' belongs to names like "T-Shirts/Tops"). Levels are trimmed, empty ones dropped.
func splitCategory(s string) []string {
	if s == "" {
		return nil
	}
	var sep string
	switch {
	case strings.IndexByte(s, '>') >= 0:
		sep = ">"
	case strings.IndexByte(s, '|') >= 0:
		sep = "|"
	case strings.Contains(s, " / "):
		sep = " / "
	default:
		return []string{s}
	}
	levels := make([]string, 0, strings.Count(s, sep)+1)
	for {
		level, rest, found := strings.Cut(s, sep)
		if level = strings.TrimSpace(level); level != "" {
			levels = append(levels, level)
		}
		if !found {
			break
		}
		s = rest
	}
	if len(levels) == 0 {
		return nil
	}
	return levels
}

// appendImageURLs appends the http(s) URLs of a list separated by new lines,
// '|', ',' or white space, skipping ones already present.
func appendImageURLs(urls []string, s string) []string {
	for len(s) > 0 {
		i := 0
		for i < len(s) && isListSeparator(s[i]) {
			i++
		}
		s = s[i:]
		j := 0
		for j < len(s) && !isListSeparator(s[j]) {
			j++
		}
		// Splitting on every control byte leaves only the scheme and host to check.
		if u := s[:j]; hasHTTPHost(u) && !slices.Contains(urls, u) {
			if urls == nil {
				urls = make([]string, 0, 4) // most feeds list a handful
			}
			urls = append(urls, u)
		}
		s = s[j:]
	}
	return urls
}

func isListSeparator(c byte) bool { return c <= ' ' || c == '|' || c == ',' || c == 0x7f }

// isHTTPURL accepts absolute http and https URLs with a host and no white
// space or control characters.
func isHTTPURL(s string) bool {
	if !hasHTTPHost(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// hasHTTPHost reports whether s starts with "http://" or "https://" and a host.
func hasHTTPHost(s string) bool {
	var rest string
	switch {
	case len(s) > 8 && strings.EqualFold(s[:8], "https://"):
		rest = s[8:]
	case len(s) > 7 && strings.EqualFold(s[:7], "http://"):
		rest = s[7:]
	default:
		return false
	}
	c := rest[0]
	return c != '/' && c != '?' && c != '#'
}

// checkGTIN accepts GTIN-8, -12 (UPC-A), -13 (EAN) and -14 with a correct
// check digit.
func checkGTIN(s string) error {
	switch len(s) {
	case 8, 12, 13, 14:
	default:
		return fmt.Errorf("%q must have 8, 12, 13 or 14 digits", s)
	}
	if !allDigits(s) {
		return fmt.Errorf("%q must have 8, 12, 13 or 14 digits", s)
	}
	// Weights alternate 3, 1, ... leftwards from the digit before the check digit.
	sum, weight := 0, 3
	for i := len(s) - 2; i >= 0; i-- {
		sum += int(s[i]-'0') * weight
		weight = 4 - weight
	}
	want := byte((10-sum%10)%10) + '0'
	if s[len(s)-1] != want {
		return fmt.Errorf("%q has check digit %c but its digits give %c", s, s[len(s)-1], want)
	}
	return nil
}

// parseUpdatedAt reads RFC 3339, "2006-01-02 15:04:05" or "2006-01-02";
// values without a zone are UTC.
func parseUpdatedAt(s string) (time.Time, bool) {
	layout := time.RFC3339
	switch {
	case len(s) == len(time.DateOnly):
		layout = time.DateOnly
	case len(s) == len(time.DateTime) && s[10] == ' ':
		layout = time.DateTime
	case len(s) == len(time.DateTime) && s[10] == 'T':
		layout = "2006-01-02T15:04:05"
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
