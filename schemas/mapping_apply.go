package schemas

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // mapping time zones such as Asia/Seoul resolve on hosts without a zone database
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
	location  *time.Location // the zone of update times that name none
	fields    [numFields]fieldPlan
	attrs     []attributePlan
	currency  currencyUnit // the default currency, when it is a valid one
	rules     []compiledRule
	// excludeUpTo is how many rules decide whether a row is excluded:
	// those up to the last exclude rule.
	excludeUpTo int
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
// own. Column names match as ColumnIndex says.
func NewRowMapper(m Mapping, partner string, columns []string, updatedAt time.Time) *RowMapper {
	r := m.Resolve()
	header := newColumnIndex(columns)
	rm := &RowMapper{partner: partner, updatedAt: updatedAt, location: time.UTC}
	if loc, err := parseTimezone(r.Timezone); err == nil && loc != nil {
		rm.location = loc
	}
	for name, src := range r.Fields {
		f, ok := parseField(name)
		if !ok || len(src) == 0 {
			continue
		}
		p := &rm.fields[f]
		p.mapped = true
		p.columns = src
		for _, c := range src {
			if i := header.position(c); i >= 0 {
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
		if i := header.position(r.Attributes[name]); i >= 0 {
			rm.attrs = append(rm.attrs, attributePlan{name: name, index: i})
		}
	}
	rm.rules = compileRules(r.Rules)
	for i, c := range rm.rules {
		if c.kind == RuleExclude {
			rm.excludeUpTo = i + 1
		}
	}
	return rm
}

// Excluded reports whether the mapping's rules leave the row out of the
// upload. A deletion is never excluded.
func (rm *RowMapper) Excluded(row RawRow) bool {
	if rm.excludeUpTo == 0 || rm.Operation(row) == OpDelete {
		return false
	}
	_, excluded := rm.ruleValues(row, rm.Operation(row) == OpUpdate, rm.excludeUpTo)
	return excluded
}

// ruleValues reads the row's field values and runs the first n rules on
// them; excluded is true once an exclude rule holds.
func (rm *RowMapper) ruleValues(row RawRow, partial bool, n int) (v *fieldValues, excluded bool) {
	v = &fieldValues{}
	for f := range numFields {
		p := &rm.fields[f]
		switch f {
		case fieldCategory:
			if len(p.columns) > 1 {
				levels := rm.categoryLevels(row, partial)
				v.text[f], v.carried[f] = strings.Join(levels, " > "), rm.anyCell(row, p.indexes)
				continue
			}
		case fieldImageURLs:
			var cells []string
			for _, i := range p.indexes {
				if c := cell(row, i); c != "" {
					cells = append(cells, c)
				}
			}
			v.carried[f] = len(cells) > 0
			if len(cells) == 0 && !partial {
				cells = append(cells, p.fallback)
			}
			v.text[f] = strings.Join(cells, "\n")
			continue
		}
		text, fromColumn := rm.column(row, f)
		if partial && !fromColumn {
			text = ""
		}
		v.text[f], v.carried[f] = text, fromColumn
	}
	for i := range rm.rules[:n] {
		if rm.rules[i].apply(v, partial) {
			return v, true
		}
	}
	return v, false
}

// anyCell reports whether one of the row's cells at indexes has a value.
func (rm *RowMapper) anyCell(row RawRow, indexes []int) bool {
	for _, i := range indexes {
		if cell(row, i) != "" {
			return true
		}
	}
	return false
}

// rowReader reads one row's field values: from the columns, or, when the
// mapping has rules, as the rules left them.
type rowReader struct {
	rm      *RowMapper
	row     RawRow
	partial bool
	vals    *fieldValues // nil without rules
}

func (rm *RowMapper) reader(row RawRow, partial bool) rowReader {
	rd := rowReader{rm: rm, row: row, partial: partial}
	if len(rm.rules) > 0 {
		rd.vals, _ = rm.ruleValues(row, partial, len(rm.rules))
	}
	return rd
}

// column is RowMapper.column after the rules.
func (rd rowReader) column(f field) (string, bool) {
	if rd.vals == nil {
		return rd.rm.column(rd.row, f)
	}
	return rd.vals.text[f], rd.vals.carried[f]
}

func (rd rowReader) value(f field) string {
	v, _ := rd.column(f)
	return v
}

func (rd rowReader) category() []string {
	if rd.vals == nil {
		return rd.rm.category(rd.row, rd.partial)
	}
	if rd.partial && !rd.vals.carried[fieldCategory] {
		return nil
	}
	return splitCategory(rd.vals.text[fieldCategory])
}

func (rd rowReader) imageURLs() (urls, bad []string) {
	if rd.vals == nil {
		return rd.rm.imageURLs(rd.row, rd.partial)
	}
	if rd.partial && !rd.vals.carried[fieldImageURLs] {
		return nil, nil
	}
	return appendImageURLs(nil, nil, rd.vals.text[fieldImageURLs])
}

// columnIndex finds a mapping's column names in a file's header: exactly
// after trimming, else ignoring case, else as Merchant Center reads
// headers (a "g:" namespace, spaces, hyphens and underscores alike).
type columnIndex struct {
	header []string
	keys   []string
}

func newColumnIndex(columns []string) columnIndex {
	ix := columnIndex{header: make([]string, len(columns)), keys: make([]string, len(columns))}
	for i, c := range columns {
		ix.header[i] = clean(c)
		ix.keys[i] = ColumnKey(c)
	}
	return ix
}

func (ix columnIndex) position(column string) int {
	column = clean(column)
	if i := slices.Index(ix.header, column); i >= 0 {
		return i
	}
	if i := slices.IndexFunc(ix.header, func(h string) bool { return strings.EqualFold(h, column) }); i >= 0 {
		return i
	}
	return slices.Index(ix.keys, ColumnKey(column))
}

// ColumnKey is the loosest form a column name is matched in: lower case,
// without a "g:" namespace, with spaces and hyphens as underscores, so
// "g:price", "Image Link" and "image_link" are the columns "price" and
// "image_link".
func ColumnKey(name string) string {
	k := strings.ToLower(clean(name))
	k = strings.TrimPrefix(k, "g:")
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return '_'
		}
		return r
	}, strings.TrimSpace(k))
}

// Operation is what a row asks for: the whole product as given (the
// default), a change of only the fields it carries, or a deletion.
type Operation uint8

// The operations, upsert first: a row that names none is an upsert.
const (
	OpUpsert Operation = iota
	OpUpdate
	OpDelete
	opUnknown
)

// Operation reads the row's operation from its mapped operation column (I,
// U, D as Naver EP's class says, or insert, update, delete) or its deleted
// column (1, true, yes, y, d, delete or deleted deletes).
func (rm *RowMapper) Operation(row RawRow) Operation {
	if rm.fields[fieldDeleted].mapped {
		switch strings.ToLower(rm.value(row, fieldDeleted)) {
		case "1", "true", "yes", "y", "d", "delete", "deleted":
			return OpDelete
		}
	}
	if !rm.fields[fieldOperation].mapped {
		return OpUpsert
	}
	switch strings.ToLower(rm.value(row, fieldOperation)) {
	case "", "i", "insert", "upsert", "n", "new":
		return OpUpsert
	case "u", "update":
		return OpUpdate
	case "d", "delete", "deleted":
		return OpDelete
	}
	return opUnknown
}

// Deleted reports whether the row asks to delete its product, and its SKU.
func (rm *RowMapper) Deleted(row RawRow) (sku string, deleted bool) {
	if rm.Operation(row) != OpDelete {
		return "", false
	}
	sku = rm.value(row, fieldID)
	return sku, sku != ""
}

// SourceID is the product id a row names, or "" when it names none. It
// reads the id alone, so it works on a row too broken to map.
func (rm *RowMapper) SourceID(row RawRow) string { return rm.value(row, fieldID) }

// Map converts one row. It reports every issue of the row; the product is
// valid unless one of them is an error (HasError). Warnings name fields
// that were dropped or repaired. It leaves Version to the normalise stage.
func (rm *RowMapper) Map(row RawRow) (Product, []Issue) { return rm.mapRow(row, nil) }

// MapUpdate applies a row that changes only the fields it carries (a
// non-empty value in a mapped column) to prev, the product's current
// version; the rest stay as prev has them, and defaults do not apply.
func (rm *RowMapper) MapUpdate(row RawRow, prev Product) (Product, []Issue) {
	return rm.mapRow(row, &prev)
}

// rowIssues collects the issues of one row.
type rowIssues struct {
	row    int64
	sku    string
	issues []Issue
}

func (ri *rowIssues) add(f field, code, severity, reason string) {
	ri.issues = append(ri.issues, Issue{Row: ri.row, SourceID: shorten(ri.sku, MaxSKUBytes), Field: f.String(), Code: code, Severity: severity, Reason: reason})
}

func (ri *rowIssues) fail(f field, code, reason string) { ri.add(f, code, SeverityError, reason) }
func (ri *rowIssues) warn(f field, code, reason string) { ri.add(f, code, SeverityWarning, reason) }

// quoted repeats a partner's value in a reason, shortened.
func quoted(v string) string { return strconv.Quote(shorten(v, maxQuotedValue)) }

func (rm *RowMapper) mapRow(row RawRow, prev *Product) (Product, []Issue) {
	partial := prev != nil
	rd := rm.reader(row, partial)
	// get reads a field: in an update only what the row carries.
	get := func(f field) string {
		if partial {
			v, fromColumn := rd.column(f)
			if !fromColumn {
				return ""
			}
			return v
		}
		return rd.value(f)
	}
	sku := rm.value(row, fieldID)
	ri := &rowIssues{row: row.Row, sku: sku}
	if sku == "" {
		ri.issues = append(ri.issues, *rm.missing(row, "", fieldID))
	} else if len(sku) > MaxSKUBytes {
		ri.fail(fieldID, CodeIDTooLong, fmt.Sprintf("id is %d bytes long; at most %d are allowed", len(sku), MaxSKUBytes))
	}
	if rm.Operation(row) == opUnknown {
		ri.fail(fieldOperation, CodeOperationUnknown, fmt.Sprintf("operation %s is not I (insert), U (update) or D (delete)", quoted(rm.value(row, fieldOperation))))
	}

	var p Product
	if partial {
		p = *prev
		p.Category = slices.Clone(prev.Category)
		p.ImageURLs = slices.Clone(prev.ImageURLs)
		p.Attributes = maps.Clone(prev.Attributes)
		if prev.SalePrice != nil {
			s := *prev.SalePrice
			p.SalePrice = &s
		}
	}
	p.ID, p.Partner, p.SKU = ProductID(rm.partner, sku), rm.partner, sku

	if title := get(fieldTitle); title != "" {
		title = collapseSpace(title)
		if n := utf8.RuneCountInString(title); n > MaxTitleRunes {
			ri.fail(fieldTitle, CodeTitleTooLong, fmt.Sprintf("title has %d characters; at most %d are allowed", n, MaxTitleRunes))
		}
		p.Title = title
	} else if !partial {
		ri.issues = append(ri.issues, *rm.missing(row, sku, fieldTitle))
	}

	rm.prices(rd, &p, prev, get, ri)

	if text := get(fieldAvailability); text != "" {
		if a, ok := ParseAvailability(text); ok {
			p.Availability = a
		} else {
			ri.warn(fieldAvailability, CodeAvailabilityUnknown, fmt.Sprintf("availability %s is not one of %s; it is ignored", quoted(text), availabilityChoices))
		}
	}
	if p.Availability == "" {
		// Feeds often omit availability when everything listed is for sale.
		p.Availability = InStock
		if a, ok := ParseAvailability(rm.fields[fieldAvailability].fallback); ok {
			p.Availability = a
		}
	}

	if url := get(fieldURL); url != "" {
		if isHTTPURL(url) {
			p.URL = url
		} else {
			ri.warn(fieldURL, CodeURLInvalid, fmt.Sprintf("url %s is not an http(s) URL; it is dropped", quoted(url)))
		}
	}
	if gtin := get(fieldGTIN); gtin != "" {
		if code, err := checkGTIN(gtin); err != nil {
			ri.warn(fieldGTIN, code, "gtin "+err.Error()+"; it is dropped")
		} else {
			p.GTIN = gtin
		}
	}
	images, bad := rd.imageURLs()
	if images != nil || !partial {
		p.ImageURLs = images
	}
	if len(bad) > 0 {
		ri.warn(fieldImageURLs, CodeImageURLInvalid, fmt.Sprintf("%d image link(s) not an http(s) URL and dropped: %s", len(bad), strings.Join(bad, ", ")))
	}
	if v := get(fieldDescription); v != "" || !partial {
		p.Description = v
	}
	if v := get(fieldBrand); v != "" || !partial {
		p.Brand = v
	}
	if c := rd.category(); c != nil || !partial {
		p.Category = c
	}
	p.UpdatedAt = rm.updatedAt
	if text := get(fieldUpdatedAt); text != "" {
		if t, ok := parseUpdatedAt(text, rm.location); ok {
			p.UpdatedAt = t
		} else {
			ri.warn(fieldUpdatedAt, CodeUpdatedAtUnparseable, fmt.Sprintf("updated_at %s is not a date and time; the upload's time is used", quoted(text)))
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
	p.Version = 0
	if HasError(ri.issues) {
		return Product{}, ri.issues
	}
	return p, ri.issues
}

// prices sets Price, SalePrice and Currency. In an update, a price the row
// does not carry stays as prev has it: with a list price mapped the price
// column is the selling price, else the regular one.
func (rm *RowMapper) prices(rd rowReader, p *Product, prev *Product, get func(field) string, ri *rowIssues) {
	partial := prev != nil
	row := rd.row
	// A currency column is authoritative; a default yields to a currency
	// the price itself names.
	currencyText, fromColumn := rd.column(fieldCurrency)
	unit := rm.currency
	if partial {
		unit, _ = lookupCurrency(prev.Currency)
		if !fromColumn {
			currencyText = ""
		}
	}
	if (fromColumn && currencyText != unit.code) || (!fromColumn && currencyText != "" && unit.code == "") {
		u, ok := currencyFromText(currencyText)
		if !ok {
			ri.fail(fieldCurrency, CodeCurrencyUnknown, fmt.Sprintf("currency %s is not an ISO 4217 code", quoted(currencyText)))
			return
		}
		unit = u
	}
	columnCurrency := unit.code

	priceText := get(fieldPrice)
	var price int64
	switch {
	case priceText != "":
		v, u, named, err := parseMoney(priceText, unit)
		switch {
		case err != nil:
			ri.fail(fieldPrice, CodePriceUnparseable, "price "+shortenErr(err))
			return
		case named && fromColumn && u.code != columnCurrency:
			ri.fail(fieldPrice, CodePriceCurrencyMismatch, fmt.Sprintf("price %s is in %s but the currency column says %s", quoted(priceText), u.code, columnCurrency))
			return
		case v == 0:
			ri.fail(fieldPrice, CodePriceZero, fmt.Sprintf("price %s is zero", quoted(priceText)))
			return
		}
		price, unit = v, u
	case partial:
	default:
		ri.issues = append(ri.issues, *rm.missing(row, rm.value(row, fieldID), fieldPrice))
		return
	}
	p.Currency = unit.code

	related := func(f field, unparseable, mismatch string) (int64, bool) {
		text := get(f)
		if text == "" {
			return 0, false
		}
		v, u, named, err := parseMoney(text, unit)
		if err != nil {
			ri.warn(f, unparseable, f.String()+" "+shortenErr(err)+"; it is dropped")
			return 0, false
		}
		if named && u.code != unit.code {
			ri.warn(f, mismatch, fmt.Sprintf("%s %s is in %s but price is in %s; it is dropped", f, quoted(text), u.code, unit.code))
			return 0, false
		}
		return v, true
	}

	if rm.fields[fieldListPrice].mapped {
		// The price column is what the shopper pays, the list price the regular one.
		selling, regular := price, int64(0)
		if priceText == "" { // an update that leaves the selling price
			selling = prev.EffectivePrice()
		}
		if v, ok := related(fieldListPrice, CodeListPriceUnparseable, CodeListPriceCurrency); ok {
			regular = v
		} else if partial && get(fieldListPrice) == "" && prev.SalePrice != nil {
			regular = prev.Price
		}
		if partial && priceText == "" && get(fieldListPrice) == "" {
			return // neither price is carried: prev's stand
		}
		p.Price, p.SalePrice = selling, nil
		if regular > selling {
			s := selling
			p.Price, p.SalePrice = regular, &s
		}
		return
	}

	if priceText != "" {
		p.Price = price
		if p.SalePrice != nil && *p.SalePrice >= price {
			p.SalePrice = nil // a kept sale price must stay below a new price
		}
	}
	text := get(fieldSalePrice)
	if text == "" {
		return
	}
	v, ok := related(fieldSalePrice, CodeSalePriceUnparseable, CodeSalePriceCurrency)
	switch {
	case !ok:
	case v > p.Price:
		ri.warn(fieldSalePrice, CodeSalePriceAbovePrice, fmt.Sprintf("sale price %s is higher than price %s; it is dropped", formatMinor(v, unit.scale), formatMinor(p.Price, unit.scale)))
	case v > 0 && v < p.Price:
		// Zero is how many feeds say "no sale"; a sale at full price is no sale.
		p.SalePrice = &v
	default:
		p.SalePrice = nil
	}
}

// shortenErr is an error's text with partner values already quoted in it
// kept short.
func shortenErr(err error) string { return shorten(err.Error(), 2*maxQuotedValue) }

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
// In an update it is nil unless the row carries a category.
func (rm *RowMapper) category(row RawRow, partial bool) []string {
	p := &rm.fields[fieldCategory]
	if len(p.columns) > 1 {
		return rm.categoryLevels(row, partial)
	}
	v, fromColumn := rm.column(row, fieldCategory)
	if partial && !fromColumn {
		return nil
	}
	return splitCategory(v)
}

// categoryLevels reads a category spread over several columns, one level
// each, or the default's path.
func (rm *RowMapper) categoryLevels(row RawRow, partial bool) []string {
	p := &rm.fields[fieldCategory]
	var levels []string
	for _, i := range p.indexes {
		if v := cell(row, i); v != "" {
			if levels == nil {
				levels = make([]string, 0, len(p.indexes))
			}
			levels = append(levels, v)
		}
	}
	if levels != nil || p.fallback == "" || partial {
		return levels
	}
	return splitCategory(p.fallback)
}

// imageURLs joins the lists of every image column, or the default's, and
// returns the values that are not http(s) URLs, quoted. In an update it is
// nil unless the row carries an image column.
func (rm *RowMapper) imageURLs(row RawRow, partial bool) (urls, bad []string) {
	p := &rm.fields[fieldImageURLs]
	for _, i := range p.indexes {
		urls, bad = appendImageURLs(urls, bad, cell(row, i))
	}
	if urls == nil && p.fallback != "" && !partial {
		urls, bad = appendImageURLs(urls, bad, p.fallback)
	}
	return urls, bad
}

// missing explains why a required field has no value.
func (rm *RowMapper) missing(row RawRow, sku string, f field) *Issue {
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
	code := CodeMissingPrice
	switch f {
	case fieldID:
		code = CodeMissingID
	case fieldTitle:
		code = CodeMissingTitle
	}
	return &Issue{Row: row.Row, SourceID: shorten(sku, MaxSKUBytes), Field: f.String(), Code: code, Severity: SeverityError, Reason: reason}
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

// splitCategory splits a category path (the first line of s) on '>', else '|', else " / " (a bare
// '/' belongs to names like "T-Shirts/Tops"). Levels are trimmed, empty ones dropped.
func splitCategory(s string) []string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] // several product types: the first is the product's category
	}
	if s = strings.TrimSpace(s); s == "" {
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
// '|', ',' or white space, skipping ones already present; the other values
// go to bad, quoted.
func appendImageURLs(urls, bad []string, s string) ([]string, []string) {
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
		switch u := s[:j]; {
		case u == "":
		case !hasHTTPHost(u):
			if len(bad) < 3 {
				bad = append(bad, quoted(u))
			}
		case !slices.Contains(urls, u):
			if urls == nil {
				urls = make([]string, 0, 4) // most feeds list a handful
			}
			urls = append(urls, u)
		}
		s = s[j:]
	}
	return urls, bad
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
// check digit; otherwise it returns the issue code and why.
func checkGTIN(s string) (string, error) {
	switch len(s) {
	case 8, 12, 13, 14:
	default:
		return CodeGTINLength, fmt.Errorf("%s must have 8, 12, 13 or 14 digits", quoted(s))
	}
	if !allDigits(s) {
		return CodeGTINLength, fmt.Errorf("%s must have 8, 12, 13 or 14 digits", quoted(s))
	}
	// Weights alternate 3, 1, ... leftwards from the digit before the check digit.
	sum, weight := 0, 3
	for i := len(s) - 2; i >= 0; i-- {
		sum += int(s[i]-'0') * weight
		weight = 4 - weight
	}
	want := byte((10-sum%10)%10) + '0'
	if s[len(s)-1] != want {
		return CodeGTINCheckDigit, fmt.Errorf("%q has check digit %c but its digits give %c", s, s[len(s)-1], want)
	}
	return "", nil
}

// updatedAtLayouts are the update-time spellings read besides RFC 3339.
var updatedAtLayouts = []string{
	time.DateTime, time.DateOnly, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z0700", "2006/01/02 15:04:05", "2006.01.02 15:04:05", "20060102150405", "20060102",
}

// parseUpdatedAt reads RFC 3339 and the common feed spellings; values
// without a zone are in loc (the mapping's time zone, UTC by default).
func parseUpdatedAt(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	for _, layout := range updatedAtLayouts {
		if len(layout) != len(s) && !strings.Contains(layout, "Z07") {
			continue
		}
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseTimezone reads a mapping's time zone: an IANA name ("Asia/Seoul"), a
// UTC offset ("+09:00") or "UTC"; "" is UTC.
func parseTimezone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || strings.EqualFold(name, "utc") || name == "Z":
		return time.UTC, nil
	case name[0] == '+' || name[0] == '-':
		t, err := time.Parse("-07:00", name)
		if err != nil {
			if t, err = time.Parse("-0700", name); err != nil {
				return nil, fmt.Errorf("time zone %q is not an offset such as +09:00", name)
			}
		}
		_, offset := t.Zone()
		return time.FixedZone(name, offset), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA name such as Asia/Seoul or an offset such as +09:00", name)
	}
	return loc, nil
}
