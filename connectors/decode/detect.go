package decode

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"feedline/schemas"
)

// DetectFile names the format of a file from its first bytes (up to
// HeadSize; more are ignored), and tells its compression (the format is
// then that of the file inside) and its charset, which a declared charset
// decides. For delimited text it also gives the delimiter; for Parquet,
// NDJSON and XML the delimiter is 0, and the charset is "" while the head is
// all ASCII (or Parquet). The error wraps ErrEmpty, ErrBinary, ErrEncoding
// or ErrUnsupported and says what the file looks like instead.
func DetectFile(head []byte, charset string) (schemas.FileKind, error) {
	var d schemas.FileKind
	truncated := len(head) >= HeadSize
	if len(head) > HeadSize {
		head = head[:HeadSize]
	}
	if c := compressionOf(head); c != "" {
		inner, more, err := inflateHead(head, c)
		if err != nil {
			return d, err
		}
		d.Compression, head, truncated = c, inner, more
		if len(head) == 0 {
			return d, fmt.Errorf("%w: the %s file holds nothing; upload a file with a header line and at least one row", ErrEmpty, c)
		}
		if n := compressionOf(head); n != "" {
			return d, fmt.Errorf("%w: the %s file holds a %s file; compress the feed once", ErrUnsupported, c, n)
		}
	}
	if bytes.HasPrefix(head, []byte("PAR1")) {
		d.Format = schemas.FormatParquet
		return d, nil
	}
	if err := refuseBinary(head); err != nil {
		return d, err
	}
	text, cs, err := decodeHead(head, charset, truncated)
	if err != nil {
		return d, err
	}
	d.Charset = cs
	s := sniffText(text, truncated)
	if s.err != nil {
		return d, s.err
	}
	d.Format, d.Delimiter = s.format, rune(s.comma)
	return d, nil
}

// DetectFormat is DetectFile reconciled with the format the partner named
// (a schemas.DetectFormat) by fitFormat, as Open reconciles them. It does
// not know the delimiter a mapping may give, so it leaves refusing TSV for
// text that plainly uses another delimiter to Open. Its errors are
// schemas.ErrEmptyFile or schemas.ErrUnreadableFile.
func DetectFormat(head []byte, named, charset string) (schemas.FileKind, error) {
	if named != "" && !slices.Contains(schemas.Formats, named) {
		return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile, fmt.Errorf("format %q is not supported; use one of %v", named, schemas.Formats))
	}
	kind, err := DetectFile(head, charset)
	if err != nil {
		if errors.Is(err, ErrEmpty) {
			return schemas.FileKind{}, schemas.FileError(schemas.ErrEmptyFile, err)
		}
		return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile, err)
	}
	format, ok := fitFormat(named, kind.Format, false)
	if !ok {
		return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile,
			fmt.Errorf("%w: the file looks like %s, not %s; send it with format=%s or leave the format out", ErrFormatMismatch, kind.Format, named, kind.Format))
	}
	kind.Format = format
	return kind, nil
}

// fitFormat is the one rule between the format a partner named and the one
// detected in the file: it answers the format to read the file as, or
// false when the named one does not fit. Named or not, the file's own format
// fits; a Google Merchant feed is TSV or XML, the file tells which; any
// delimited format may be named for delimited text, except TSV for text
// that plainly uses another delimiter when the partner gave none (notTabs).
func fitFormat(named, detected string, notTabs bool) (string, bool) {
	switch {
	case named == "" || named == detected:
		return detected, true
	case named == schemas.FormatGoogleMerchant && detected == schemas.FormatGoogleMerchantXML:
		return detected, true
	case isDelimited(named) && isDelimited(detected):
		return named, named != schemas.FormatTSV || !notTabs
	}
	return "", false
}

// isDelimited reports whether format is one of the delimited text formats,
// which share one decoder: a partner may name any of them for such a file.
func isDelimited(format string) bool {
	switch format {
	case schemas.FormatCSV, schemas.FormatTSV, schemas.FormatGoogleMerchant, schemas.FormatNaverEP:
		return true
	}
	return false
}

// sniffed is what the head of a file looks like.
type sniffed struct {
	format       string
	comma        byte   // delimited text only
	headerFields int    // fields of the header line when split by comma
	looks        string // what the file looks like, for messages
	err          error
}

const utf8BOM = "\ufeff"

// sniffText tells the format of a file's head, already decoded to UTF-8
// text (Parquet and packed files are told before). truncated says the file
// goes on past the head.
func sniffText(head []byte, truncated bool) sniffed {
	if len(head) > HeadSize {
		head = head[:HeadSize]
	}
	if len(head) == 0 {
		return sniffed{looks: "an empty file", err: fmt.Errorf("%w: upload a file with a header line and at least one row", ErrEmpty)}
	}
	if bytes.HasPrefix(head, []byte("PAR1")) {
		return sniffed{format: schemas.FormatParquet, looks: "Parquet"}
	}
	if s, ok := sniffMagic(head); ok {
		return s
	}
	text := bytes.TrimPrefix(head, []byte(utf8BOM))
	text = bytes.TrimLeft(text, " \t\r\n")
	if len(text) == 0 {
		return sniffed{looks: "an empty file", err: fmt.Errorf("%w: it holds only blank lines; upload a file with a header line and at least one row", ErrEmpty)}
	}
	if s, ok := sniffBinary(text, truncated); ok {
		return s
	}
	switch text[0] {
	case '{':
		return sniffed{format: schemas.FormatNDJSON, looks: "NDJSON (one JSON object per line)"}
	case '[':
		return sniffed{looks: "a JSON array", err: fmt.Errorf("%w: the file is a JSON array; send NDJSON instead, one JSON object per line", ErrUnsupported)}
	case '<':
		return sniffXML(text)
	}
	return sniffDelimited(text, truncated)
}

// sniffMagic recognises what partners upload by mistake, and packed files
// inside packed files.
func sniffMagic(head []byte) (sniffed, bool) {
	switch {
	case compressionOf(head) != "":
		c := compressionOf(head)
		return sniffed{looks: c + "-compressed data inside compressed data", err: fmt.Errorf("%w: it is %s-compressed inside another compression; compress the feed once", ErrUnsupported, c)}, true
	}
	return sniffed{}, false
}

// refuseBinary recognises, before any charset decodes it, a binary file
// partners upload by mistake: an Excel 97-2003 workbook.
func refuseBinary(head []byte) error {
	if bytes.HasPrefix(head, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}) {
		return fmt.Errorf("%w: it is an Excel workbook; export the sheet as CSV (UTF-8) and upload that", ErrBinary)
	}
	return nil
}

// sniffBinary rejects data that is not text.
func sniffBinary(text []byte, truncated bool) (sniffed, bool) {
	control := 0
	for _, c := range text {
		if c == 0 {
			return sniffed{looks: "binary data", err: fmt.Errorf("%w: it holds NUL bytes; upload CSV, TSV, NDJSON, XML or Parquet", ErrBinary)}, true
		}
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7F {
			control++
		}
	}
	if control > 2 && control*50 > len(text) {
		return sniffed{looks: "binary data", err: fmt.Errorf("%w: it is mostly unprintable bytes; upload CSV, TSV, NDJSON, XML or Parquet", ErrBinary)}, true
	}
	// Text decoded as UTF-8 that is still mostly invalid was not text.
	if !utf8.Valid(text) {
		lines, bad := 0, 0
		for line := range bytes.Lines(text) {
			lines++
			if !utf8.Valid(line) {
				bad++
			}
		}
		if truncated && lines > 1 {
			lines-- // the last line may be cut inside a character
		}
		if bad*2 > lines && bad > 1 {
			return sniffed{looks: "binary data", err: fmt.Errorf("%w: it is not text in any encoding feedline reads (UTF-8, UTF-16, EUC-KR, Windows-1252); upload CSV, TSV, NDJSON, XML or Parquet", ErrEncoding)}, true
		}
	}
	return sniffed{}, false
}

// merchantNS is the Google Merchant namespace of product elements.
const merchantNS = "http://base.google.com/ns/1.0"

// sniffXML tells a Google Merchant RSS or Atom feed from other XML.
func sniffXML(text []byte) sniffed {
	root := xmlRoot(text)
	switch {
	case (root == "rss" || root == "feed") && bytes.Contains(text, []byte(merchantNS)):
		kind := "RSS 2.0"
		if root == "feed" {
			kind = "Atom 1.0"
		}
		return sniffed{format: schemas.FormatGoogleMerchantXML, looks: "a Google Merchant " + kind + " feed"}
	case root == "rss" || root == "feed":
		return sniffed{looks: "an RSS or Atom feed without Google Merchant attributes", err: fmt.Errorf(
			"%w: the XML feed does not use the Google Merchant namespace (xmlns:g=%q); export it as a Google Merchant feed, or as TSV, CSV, NDJSON or Parquet", ErrUnsupported, merchantNS)}
	case root == "html" || root == "!doctype":
		return sniffed{looks: "an HTML page", err: fmt.Errorf("%w: the file is an HTML page, not a feed; check the export's download link", ErrUnsupported)}
	}
	return sniffed{looks: "XML", err: fmt.Errorf("%w: the XML file is not a Google Merchant RSS or Atom feed (its root is <%s>); export the feed as Google Merchant XML, TSV, CSV, NDJSON or Parquet", ErrUnsupported, root)}
}

// xmlRoot is the local name of the first element of an XML head, lower
// case, past its declaration, comments and doctype.
func xmlRoot(text []byte) string {
	for len(text) > 0 {
		text = bytes.TrimLeft(text, " \t\r\n")
		switch {
		case bytes.HasPrefix(text, []byte("<?")):
			i := bytes.Index(text, []byte("?>"))
			if i < 0 {
				return ""
			}
			text = text[i+2:]
		case bytes.HasPrefix(text, []byte("<!--")):
			i := bytes.Index(text, []byte("-->"))
			if i < 0 {
				return ""
			}
			text = text[i+3:]
		case bytes.HasPrefix(bytes.ToLower(text[:min(len(text), 9)]), []byte("<!doctype")):
			if bytes.Contains(bytes.ToLower(text[:min(len(text), 15)]), []byte("html")) {
				return "!doctype"
			}
			i := bytes.IndexByte(text, '>')
			if i < 0 {
				return ""
			}
			text = text[i+1:]
		case bytes.HasPrefix(text, []byte("<")):
			end := bytes.IndexAny(text[1:], " \t\r\n>/")
			if end < 0 {
				return ""
			}
			name := string(bytes.ToLower(text[1 : 1+end]))
			if i := strings.IndexByte(name, ':'); i >= 0 {
				name = name[i+1:]
			}
			return name
		default:
			return ""
		}
	}
	return ""
}

// delimiters are the candidates tried, in order of preference on a tie.
const delimiters = ",\t;|"

// sniffRecords is how many records of the head the delimiter vote uses.
const sniffRecords = 50

func sniffDelimited(text []byte, truncated bool) sniffed {
	counts := delimiterCounts(text, truncated)
	best, bestFrac, bestH := -1, -1.0, 0
	for i := range delimiters {
		h := counts[0][i]
		if h == 0 {
			continue
		}
		frac := 1.0
		if rest := counts[1:]; len(rest) > 0 {
			same := 0
			for _, c := range rest {
				if c[i] == h {
					same++
				}
			}
			frac = float64(same) / float64(len(rest))
		}
		if frac > bestFrac || (frac == bestFrac && h > bestH) {
			best, bestFrac, bestH = i, frac, h
		}
	}
	comma := byte(',')
	if best >= 0 {
		comma = delimiters[best]
	}
	s := sniffed{comma: comma, headerFields: bestH + 1}
	header := headerNames(text, comma)
	switch {
	case isNaverEP(header):
		s.format, s.looks = schemas.FormatNaverEP, "a Naver Shopping EP feed"
	case comma == '\t' && isGoogleMerchant(header):
		s.format, s.looks = schemas.FormatGoogleMerchant, "a Google Merchant TSV feed"
	case comma == '\t':
		s.format, s.looks = schemas.FormatTSV, "tab-separated text (TSV)"
	case comma == ',':
		s.format, s.looks = schemas.FormatCSV, "comma-separated text (CSV)"
	default:
		s.format, s.looks = schemas.FormatCSV, fmt.Sprintf("text separated by %q (CSV)", comma)
	}
	return s
}

// delimiterCounts counts each candidate delimiter outside quotes in the
// first records. A record cut off by the end of a truncated head is dropped.
func delimiterCounts(text []byte, truncated bool) [][len(delimiters)]int {
	var out [][len(delimiters)]int
	var cur [len(delimiters)]int
	inQuote, blank := false, true
	for i, c := range text {
		switch {
		case c == '"':
			inQuote = !inQuote
			blank = false
		case c == '\n' && !inQuote:
			if !blank {
				out = append(out, cur)
				if len(out) == sniffRecords {
					return out
				}
			}
			cur, blank = [len(delimiters)]int{}, true
		case c == '\r' || c == '\n':
		default:
			blank = false
			if !inQuote {
				if j := strings.IndexByte(delimiters, c); j >= 0 {
					cur[j]++
				}
			}
		}
		if i == len(text)-1 && !blank && (!truncated || len(out) == 0) {
			out = append(out, cur)
		}
	}
	return out
}

// headerNames splits the first line of text into normalised column names:
// lower case, spaces as underscores, without a "g:" namespace.
func headerNames(text []byte, comma byte) map[string]bool {
	line := text
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	names := make(map[string]bool)
	for f := range strings.SplitSeq(string(line), string(comma)) {
		f = strings.ToLower(strings.Trim(strings.TrimSpace(f), `"`))
		f = strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(f), " ", "_"), "g:")
		names[f] = true
	}
	return names
}

// naverOnly are Naver Shopping EP columns that other layouts do not use.
var naverOnly = []string{
	"price_pc", "price_mobile", "normal_price", "mobile_link", "add_image_link",
	"category_name1", "category_name2", "category_name3", "category_name4",
	"naver_category", "naver_product_id", "model_number", "maker", "shipping",
	"event_words", "interest_free_event", "manufacture_define_number", "search_tag",
}

func isNaverEP(h map[string]bool) bool {
	if h["id"] && h["title"] && h["price_pc"] {
		return true
	}
	n := 0
	for _, c := range naverOnly {
		if h[c] {
			n++
		}
	}
	return n >= 5
}

func isGoogleMerchant(h map[string]bool) bool {
	return h["id"] && h["title"] && h["link"] && h["price"] && h["availability"]
}
