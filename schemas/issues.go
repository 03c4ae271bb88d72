package schemas

import (
	"cmp"
	"slices"
	"unicode/utf8"
)

// Issue severities. An error rejects its row: the product keeps its last
// accepted version. A warning keeps the row with the field dropped or
// repaired, as feed tools do for optional attributes.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Issue codes: stable, machine-readable names of what is wrong with a row.
// IssueCodes documents each; partners filter and count by them.
const (
	// Mapping errors: the row cannot become a product.
	CodeMissingID             = "missing_id"
	CodeIDTooLong             = "id_too_long"
	CodeMissingTitle          = "missing_title"
	CodeTitleTooLong          = "title_too_long"
	CodeMissingPrice          = "missing_price"
	CodePriceUnparseable      = "price_unparseable"
	CodePriceZero             = "price_zero"
	CodePriceCurrencyMismatch = "price_currency_mismatch"
	CodeCurrencyUnknown       = "currency_unknown"
	CodeSalePriceUnparseable  = "sale_price_unparseable"
	CodeSalePriceAbovePrice   = "sale_price_above_price"
	CodeSalePriceCurrency     = "sale_price_currency_mismatch"
	CodeListPriceUnparseable  = "list_price_unparseable"
	CodeListPriceCurrency     = "list_price_currency_mismatch"
	CodeAvailabilityUnknown   = "availability_unknown"
	CodeURLInvalid            = "url_invalid"
	CodeImageURLInvalid       = "image_url_invalid"
	CodeGTINLength            = "gtin_length"
	CodeGTINCheckDigit        = "gtin_check_digit"
	CodeUpdatedAtUnparseable  = "updated_at_unparseable"
	CodeOperationUnknown      = "operation_unknown"
	CodeDuplicateID           = "duplicate_id"
	CodeUnclosedQuote         = "unclosed_quote"
	CodeQuoteMisplaced        = "quote_misplaced"
	CodeFieldCount            = "field_count"
	CodeRowTooLong            = "row_too_long"
	CodeEncodingInvalid       = "encoding_invalid"
	CodeJSONInvalid           = "json_invalid"
	CodeXMLItemInvalid        = "xml_item_invalid"
	CodeValueUnreadable       = "value_unreadable"
	CodeIndexRefused          = "index_refused"
	CodeRowUnreadable         = "row_unreadable" // a decoder's rejection without a more specific code
)

// IssueCode documents one code.
type IssueCode struct {
	Code     string
	Severity string
	Meaning  string
}

// IssueCodes lists every code with its severity and meaning, in the order
// the README documents them. Every call builds a fresh slice.
func IssueCodes() []IssueCode {
	e, w := SeverityError, SeverityWarning
	return []IssueCode{
		{CodeMissingID, e, "the row has no id (SKU)"},
		{CodeIDTooLong, e, "the id is longer than 256 bytes"},
		{CodeMissingTitle, e, "the row has no title, or its column is not in the file"},
		{CodeTitleTooLong, e, "the title is longer than 500 characters"},
		{CodeMissingPrice, e, "the row has no price, or its column is not in the file"},
		{CodePriceUnparseable, e, "the price is not an amount (\"abc\", \"-5\", \"1.2.3\")"},
		{CodePriceZero, e, "the price is zero"},
		{CodePriceCurrencyMismatch, e, "the price names another currency than the currency column"},
		{CodeCurrencyUnknown, e, "the currency column is not an ISO 4217 code"},
		{CodeSalePriceUnparseable, w, "the sale price is not an amount; it is dropped"},
		{CodeSalePriceAbovePrice, w, "the sale price is higher than the price; it is dropped"},
		{CodeSalePriceCurrency, w, "the sale price is in another currency than the price; it is dropped"},
		{CodeListPriceUnparseable, w, "the regular (list) price is not an amount; it is dropped"},
		{CodeListPriceCurrency, w, "the regular (list) price is in another currency than the price; it is dropped"},
		{CodeAvailabilityUnknown, w, "the availability is not a known word; the mapping's default (else in stock) is used"},
		{CodeURLInvalid, w, "the product link is not an http(s) URL; it is dropped"},
		{CodeImageURLInvalid, w, "an image link is not an http(s) URL; it is dropped, the others are kept"},
		{CodeGTINLength, w, "the GTIN does not have 8, 12, 13 or 14 digits; it is dropped"},
		{CodeGTINCheckDigit, w, "the GTIN's check digit is wrong; it is dropped"},
		{CodeUpdatedAtUnparseable, w, "the update time is not a date; the upload's time is used"},
		{CodeOperationUnknown, e, "the row's operation (Naver EP class) is not I, U or D"},
		{CodeDuplicateID, w, "a later row of the file has the same id; the last row is used and this one changes nothing"},
		{CodeUnclosedQuote, e, "a quoted field starts on this line and never ends well (a stray quote)"},
		{CodeQuoteMisplaced, e, "a quoted field's closing quote is followed by other text"},
		{CodeFieldCount, e, "the row has another number of fields than the header"},
		{CodeRowTooLong, e, "the row is longer than 1 MiB"},
		{CodeEncodingInvalid, e, "the row is not valid text in the file's encoding"},
		{CodeJSONInvalid, e, "the NDJSON line is not a JSON object"},
		{CodeXMLItemInvalid, e, "the XML item cannot be read as a product"},
		{CodeValueUnreadable, e, "a Parquet value cannot be read as text"},
		{CodeIndexRefused, e, "the search index refused the product for good"},
		{CodeRowUnreadable, e, "the decoder could not read the row"},
	}
}

// Issue is one thing wrong with one source row. Reason is the message a
// person reads; Code and Severity are for machines.
type Issue struct {
	Row      int64  `json:"row"`
	SourceID string `json:"source_id"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
}

// IsError reports whether the issue rejects its row.
func (i Issue) IsError() bool { return i.Severity != SeverityWarning }

// HasError reports whether any of the issues rejects the row.
func HasError(issues []Issue) bool {
	return slices.ContainsFunc(issues, Issue.IsError)
}

// IssueSummaryRows is how many row numbers an issue summary keeps per entry.
const IssueSummaryRows = 5

// IssueCount is one entry of an upload's issue summary: how many issues of
// one code, field and severity it has, and the lowest rows they are on.
type IssueCount struct {
	Code     string  `json:"code"`
	Field    string  `json:"field"`
	Severity string  `json:"severity"`
	Count    int64   `json:"count"`
	Rows     []int64 `json:"first_rows"`
}

// IssueSummary counts issues per (code, field, severity), completely, with
// a few example rows each: its size depends on the kinds of issues, not on
// how many there are.
type IssueSummary []IssueCount

// Add counts one issue.
func (s *IssueSummary) Add(i Issue) {
	s.merge(IssueCount{Code: i.Code, Field: i.Field, Severity: i.Severity, Count: 1, Rows: []int64{i.Row}})
}

// Merge adds every entry of o.
func (s *IssueSummary) Merge(o IssueSummary) {
	for _, c := range o {
		s.merge(c)
	}
}

func (s *IssueSummary) merge(c IssueCount) {
	for k := range *s {
		e := &(*s)[k]
		if e.Code == c.Code && e.Field == c.Field && e.Severity == c.Severity {
			e.Count += c.Count
			e.Rows = lowestRows(e.Rows, c.Rows)
			return
		}
	}
	c.Rows = lowestRows(nil, c.Rows)
	*s = append(*s, c)
}

// lowestRows merges two row lists into the lowest IssueSummaryRows distinct rows.
func lowestRows(a, b []int64) []int64 {
	out := append(append(make([]int64, 0, len(a)+len(b)), a...), b...)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > IssueSummaryRows {
		out = out[:IssueSummaryRows]
	}
	return out
}

// Sorted orders the summary for people: errors first, then the most
// frequent, then by code and field.
func (s IssueSummary) Sorted() IssueSummary {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b IssueCount) int {
		if a.Severity != b.Severity {
			if a.Severity == SeverityError {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Field, b.Field))
	})
	return out
}

// Total counts every issue of the summary.
func (s IssueSummary) Total() int64 {
	var n int64
	for _, c := range s {
		n += c.Count
	}
	return n
}

// IssueBatch is the complete list of the issues found in one batch of an
// upload. It travels on catalog.issues.<partner>.<upload>; Batch and Part
// identify it, so a copy delivered twice is recognised and skipped.
type IssueBatch struct {
	Upload  string  `json:"upload"`
	Partner string  `json:"partner"`
	Batch   int     `json:"batch"`
	Part    int     `json:"part"`
	Issues  []Issue `json:"issues"`
}

// maxQuotedValue bounds how much of a partner's value a reason repeats: a
// 1 MiB price must not make a 1 MiB message.
const maxQuotedValue = 80

// shorten cuts s to at most n bytes on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
