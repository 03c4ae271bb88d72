package decode

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"

	"feedline/schemas"
)

// Detect names the format of a file from its first bytes (up to HeadSize;
// more are ignored). For delimited text it also returns the delimiter; for
// Parquet and NDJSON the delimiter is 0. The error wraps ErrEmpty, ErrBinary,
// ErrEncoding or ErrUnsupported and says what the file looks like instead.
func Detect(head []byte) (format string, delimiter rune, err error) {
	s := sniff(head)
	if s.err != nil {
		return "", 0, s.err
	}
	return s.format, rune(s.comma), nil
}

// sniffed is what the head of a file looks like.
type sniffed struct {
	format       string
	comma        byte   // delimited text only
	headerFields int    // fields of the header line when split by comma
	looks        string // what the file looks like, for messages
	eucKR        bool   // the text is EUC-KR (CP949) and is decoded to UTF-8 on the fly
	err          error
}

const utf8BOM = "\ufeff"

func sniff(head []byte) sniffed {
	truncated := len(head) >= HeadSize
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
		if s.eucKR {
			// Korean shops often export EUC-KR (Naver EP files especially):
			// look at the head as the decoder will see it.
			utf, _ := korean.EUCKR.NewDecoder().Bytes(text)
			s = sniff(utf)
			s.eucKR = true
		}
		return s
	}
	switch text[0] {
	case '{':
		return sniffed{format: schemas.FormatNDJSON, looks: "NDJSON (one JSON object per line)"}
	case '[':
		return sniffed{looks: "a JSON array", err: fmt.Errorf("%w: the file is a JSON array; send NDJSON instead, one JSON object per line", ErrUnsupported)}
	case '<':
		return sniffed{looks: "XML or HTML", err: fmt.Errorf("%w: the file looks like XML or HTML; export the feed as TSV, CSV, NDJSON or Parquet", ErrUnsupported)}
	}
	return sniffDelimited(text, truncated)
}

// sniffMagic recognises containers partners upload by mistake.
func sniffMagic(head []byte) (sniffed, bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0x1F, 0x8B}):
		return sniffed{looks: "gzip-compressed data", err: fmt.Errorf("%w: it is gzip-compressed; upload the uncompressed file", ErrBinary)}, true
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return sniffed{looks: "a ZIP archive or Excel workbook", err: fmt.Errorf("%w: it is a ZIP archive or an Excel workbook; export the sheet as CSV (UTF-8) and upload that", ErrBinary)}, true
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return sniffed{looks: "UTF-16 text", err: fmt.Errorf("%w: it is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")", ErrEncoding)}, true
	}
	return sniffed{}, false
}

// sniffBinary rejects data that is not text, and text that is not UTF-8.
func sniffBinary(text []byte, truncated bool) (sniffed, bool) {
	if truncated {
		// The head may end inside a multi-byte character.
		for i := 1; i <= utf8.UTFMax && i <= len(text); i++ {
			if utf8.RuneStart(text[len(text)-i]) {
				if !utf8.FullRune(text[len(text)-i:]) {
					text = text[:len(text)-i]
				}
				break
			}
		}
	}
	control := 0
	for _, c := range text {
		if c == 0 {
			if looksUTF16(text) {
				return sniffed{looks: "UTF-16 text", err: fmt.Errorf("%w: it is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")", ErrEncoding)}, true
			}
			return sniffed{looks: "binary data", err: fmt.Errorf("%w: it holds NUL bytes; upload CSV, TSV, NDJSON or Parquet", ErrBinary)}, true
		}
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7F {
			control++
		}
	}
	if control > 2 && control*50 > len(text) {
		return sniffed{looks: "binary data", err: fmt.Errorf("%w: it is mostly unprintable bytes; upload CSV, TSV, NDJSON or Parquet", ErrBinary)}, true
	}
	if utf8.Valid(text) {
		return sniffed{}, false
	}
	// A few bad rows are rejected one by one; a file whose lines are mostly
	// not UTF-8 is in another encoding and every row would fail.
	lines, bad := 0, 0
	for line := range bytes.Lines(text) {
		lines++
		if !utf8.Valid(line) {
			bad++
		}
	}
	if bad*2 <= lines {
		return sniffed{}, false
	}
	if looksCP949(text) {
		return sniffed{looks: "EUC-KR (CP949) text", eucKR: true}, true
	}
	return sniffed{looks: "text in a legacy encoding", err: fmt.Errorf("%w: it looks like a legacy encoding such as Windows-1252; save it as UTF-8 and upload again", ErrEncoding)}, true
}

// looksUTF16 reports whether NULs sit mostly at every other byte, as in
// UTF-16 text of Latin characters.
func looksUTF16(b []byte) bool {
	var even, odd int
	for i, c := range b {
		if c == 0 {
			if i%2 == 0 {
				even++
			} else {
				odd++
			}
		}
	}
	pairs := len(b) / 2
	return pairs > 0 && (even*10 > pairs*7 || odd*10 > pairs*7) && (even == 0 || odd == 0 || even*10 < odd || odd*10 < even)
}

// looksCP949 reports whether the non-ASCII bytes pair up as CP949 (a superset
// of EUC-KR), the legacy encoding of Korean shopping feeds.
func looksCP949(b []byte) bool {
	pairs, strays := 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			continue
		}
		if c >= 0x81 && c <= 0xFE && i+1 < len(b) {
			t := b[i+1]
			if (t >= 0x41 && t <= 0x5A) || (t >= 0x61 && t <= 0x7A) || (t >= 0x81 && t <= 0xFE) {
				pairs++
				i++
				continue
			}
		}
		strays++
	}
	return pairs > 0 && strays*20 <= pairs
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
