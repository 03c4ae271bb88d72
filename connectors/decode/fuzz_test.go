package decode

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"feedline/schemas"
)

// FuzzCSV feeds arbitrary bytes to the CSV decoder, with quoting on and off:
// it must not panic, Next must end in io.EOF or a fatal error after at most
// one call per byte, rows are numbered without gaps, every rejected row but
// one over the size limit carries values, and without quoting every
// non-blank line is exactly one row.
func FuzzCSV(f *testing.F) {
	for _, seed := range []string{
		"id,title\n1,a\n",
		"\ufeffid,title\r\n1,\"a,b\"\r\n2,\"x\ny\"\r\n",
		"id,title\n1,\"a\"\"b\"\n2,\"never closed\n",
		"id,title\n1,\"a\"b\n2,c,d\n",
		"id;title\n1;a\n\n\n2;b",
		"a\tb\n\"\t\"\t\"\r",
		"id\n\"\"\"\"\"\n\xff\n",
		"id,title,price\n1,\"27인치 모니터,100\n2,\"Bag\",200\n3,x\",300\n",
		"id,title\n1,a\",b,\"\n2,a\",b,\"\n3,\"c\nd\"\n",
		"id,title\n1,\"a\n\n2,b\n3,\"\"\"\n4,\"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The charset is declared: these invariants are the CSV reader's
		// (FuzzCharset covers detecting it).
		sameAsEncodingCSV(t, data)
		checkRows(t, data, schemas.DecoderOptions{Format: "csv", MaxRowBytes: 64, Charset: "utf-8"})
		if n, ok := checkRows(t, data, schemas.DecoderOptions{Format: "csv", Delimiter: ',', Quoted: quoting(false), MaxRowBytes: 64, Charset: "utf-8"}); ok && utf8.Valid(data) {
			if want := nonBlankLines(data, ',') - 1; n != int64(want) {
				t.Fatalf("input %q without quoting: %d rows, want one per non-blank line after the header (%d)", data, n, want)
			}
		}
	})
}

// checkRows decodes data and checks what every decoder promises. It returns
// how many rows (good or bad) it read, and whether it read to io.EOF.
func checkRows(t *testing.T, data []byte, opt schemas.DecoderOptions) (int64, bool) {
	d, err := Open(bytes.NewReader(data), opt)
	if err != nil {
		return 0, false
	}
	defer d.Close()
	cols := len(d.Columns())
	last := int64(0)
	for range len(data) + 2 {
		row, err := d.Next()
		var re *schemas.RowError
		switch {
		case err == nil:
			if growing := schemas.ColumnsGrow(d.Format()); growing {
				cols = len(d.Columns())
			}
			if len(row.Values) > cols || (!schemas.ColumnsGrow(d.Format()) && len(row.Values) != cols) {
				t.Fatalf("row %d has %d values, header %d", row.Row, len(row.Values), cols)
			}
			for _, v := range row.Values {
				if !utf8.ValidString(v) {
					t.Fatalf("row %d carries invalid UTF-8 %q", row.Row, v)
				}
			}
			if row.Row != last+1 {
				t.Fatalf("row %d after row %d", row.Row, last)
			}
			last = row.Row
		case errors.As(err, &re):
			if re.Row != last+1 {
				t.Fatalf("rejected row %d after row %d", re.Row, last)
			}
			if re.Code == "" {
				t.Fatalf("rejected row %d (%s) has no issue code", re.Row, re.Reason)
			}
			if re.Values == nil && !strings.HasPrefix(re.Reason, "row is ") && !schemas.ColumnsGrow(d.Format()) && d.Format() != schemas.FormatParquet {
				t.Fatalf("rejected row %d (%s) carries no values", re.Row, re.Reason)
			}
			for _, v := range re.Values {
				if !utf8.ValidString(v) {
					t.Fatalf("rejected row %d carries invalid UTF-8 %q", re.Row, v)
				}
			}
			last = re.Row
		default:
			if err != io.EOF && errors.Is(err, io.EOF) {
				t.Fatalf("wrapped EOF: %v", err)
			}
			return last, err == io.EOF
		}
	}
	t.Fatalf("Next did not end after %d calls on %d bytes", len(data)+2, len(data))
	return 0, false
}

// nonBlankLines counts the lines the decoder does not skip as blank.
func nonBlankLines(data []byte, comma byte) int {
	n := 0
	for line := range bytes.Lines(bytes.TrimPrefix(data, []byte(utf8BOM))) {
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > 0 && (bytes.IndexByte(line, comma) >= 0 || len(bytes.TrimSpace(line)) > 0) {
			n++
		}
	}
	return n
}

// sameAsEncodingCSV compares the decoder with encoding/csv on input both
// should read alike: strict RFC 4180 comma-separated UTF-8 with equal field
// counts, no BOM and no whitespace-only lines (the decoder skips those).
func sameAsEncodingCSV(t *testing.T, data []byte) {
	if !utf8.Valid(data) || bytes.HasPrefix(data, []byte(utf8BOM)) {
		return
	}
	for line := range bytes.Lines(data) {
		if len(bytes.TrimSpace(line)) == 0 && len(bytes.TrimRight(line, "\r\n")) > 0 {
			return
		}
	}
	want, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(want) == 0 {
		return
	}
	d, err := Open(bytes.NewReader(data), schemas.DecoderOptions{Format: "csv", Delimiter: ',', Charset: "utf-8"})
	if err != nil {
		return // binary, or a header the decoder refuses
	}
	defer d.Close()
	got := decodeAll(t, d)
	if got.err != nil || len(got.rejects) > 0 {
		t.Fatalf("encoding/csv reads %q, the decoder fails: %v %v", data, got.err, got.rejects)
	}
	for i := range want[0] {
		want[0][i] = strings.TrimSpace(want[0][i])
	}
	if !reflect.DeepEqual(got.cols, want[0]) {
		t.Fatalf("input %q: columns %q, encoding/csv %q", data, got.cols, want[0])
	}
	if vals := got.values(); len(vals)+1 != len(want) || (len(vals) > 0 && !reflect.DeepEqual(vals, want[1:])) {
		t.Fatalf("input %q: rows %q, encoding/csv %q", data, vals, want[1:])
	}
}

// FuzzNDJSONLine checks the one-pass NDJSON reader against encoding/json: a
// line is a row exactly when it is UTF-8 and a valid JSON object.
func FuzzNDJSONLine(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","offer":{"price":12.50},"images":["a","b"],"v":[{"x":1}]}`,
		`{"a":-0.5e+10,"b":true,"c":null,"d":"\u00e9\ud83d\ude00\"\\"}`,
		`{"a":01}`, `{"a":1.}`, `{"a":"\x"}`, `{"a" 1}`, `{"a":1,}`, `{}`, `[]`, `{"a":[1,]}`,
		"{\"a\":\"tab\there\"}", `{"a":{"b":{"c":[[[]]]}}}`, `{"a":tru}`, `{"a":1}x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || bytes.ContainsAny(line, "\n\r") {
			return
		}
		n := &ndjson{index: map[string]int{}}
		reason := n.flatten(line)
		valid := utf8.Valid(line) && json.Valid(line) && line[0] == '{'
		if deep := bytes.Count(line, []byte("[")) + bytes.Count(line, []byte("{")); valid && deep > maxJSONDepth {
			return // may exceed the depth limit, which encoding/json allows
		}
		if (reason == "") != valid {
			t.Fatalf("line %q: reason %q, but encoding/json says valid=%v", line, reason, valid)
		}
		if reason == "" {
			if vals := n.values(); len(vals) != len(n.Columns()) {
				t.Fatalf("%d values for %d columns", len(vals), len(n.Columns()))
			}
		}
	})
}

// FuzzMerchantXML feeds arbitrary item markup to the Google Merchant XML
// decoder: it must not panic, must end, numbers items without gaps, and
// every value is UTF-8 under a column it names.
func FuzzMerchantXML(f *testing.F) {
	for _, seed := range []string{
		"<item><g:id>1</g:id><title>a</title></item>",
		"<item><g:id>1</g:id><g:shipping><g:price>1 USD</g:price></g:shipping><g:shipping><g:price>2 USD</g:price></g:shipping></item>",
		"<item><g:title>&nbsp;&amp;&#8211;&bogus;</g:title><description><![CDATA[<b>x</b>]]></description></item><item>",
		"<entry><link href=\"https://x\"/><g:id>2</g:id></entry>",
		"<item><a><b><c>deep</c></b></a></item><item><g:id>3</g:id></item></channel></rss>",
		"<item><g:id>1</g:id></itm><item><g:id>",
		"<item>\xff\xfe<g:id>\x00</g:id></item>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, items []byte) {
		for _, root := range []string{
			`<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>`,
			`<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">`,
		} {
			data := append([]byte(root), items...)
			checkRows(t, data, schemas.DecoderOptions{Format: schemas.FormatGoogleMerchantXML, MaxRowBytes: 256})
		}
	})
}

// FuzzPacked packs arbitrary text with gzip and zip: the decoder must read
// the packed file exactly as the plain one, and never panic on the damaged
// archive made by flipping a byte.
func FuzzPacked(f *testing.F) {
	for _, seed := range []string{"id,title\n1,a\n", "{\"id\":1}\n", "id\ttitle\n1\t무선\n", "", "\x1f\x8b"} {
		f.Add([]byte(seed), uint16(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, flip uint16) {
		plain := rowsOf(t, data, schemas.DecoderOptions{MaxRowBytes: 256})
		for _, packed := range [][]byte{gzipped(string(data)), zippedInOrder(t, zipEntry{"feed.txt", string(data)})} {
			if got := rowsOf(t, packed, schemas.DecoderOptions{MaxRowBytes: 256, TempDir: t.TempDir()}); !reflect.DeepEqual(got, plain) {
				t.Fatalf("input %q: packed %v, plain %v", data, got, plain)
			}
			if len(packed) > 0 {
				damaged := bytes.Clone(packed)
				damaged[int(flip)%len(damaged)] ^= 0x5A
				checkRows(t, damaged, schemas.DecoderOptions{MaxRowBytes: 256, TempDir: t.TempDir()})
			}
		}
	})
}

// rowsOf decodes data and summarises what came out, for comparing two reads.
func rowsOf(t *testing.T, data []byte, opt schemas.DecoderOptions) []string {
	d, err := Open(bytes.NewReader(data), opt)
	if err != nil {
		return []string{"open: " + errKind(err)}
	}
	defer d.Close()
	got := decodeAll(t, d)
	var out []string
	for _, r := range got.rows {
		out = append(out, fmt.Sprint(r.Row, r.Values))
	}
	for row, reason := range got.rejects {
		out = append(out, fmt.Sprint("rejected ", row, reason))
	}
	sort.Strings(out)
	if got.err != nil {
		out = append(out, "error: "+errKind(got.err))
	}
	return append(out, fmt.Sprint(d.Format(), got.cols))
}

// errKind names which of the decoder's sentinel errors err is.
func errKind(err error) string {
	for _, k := range []error{ErrEmpty, ErrBinary, ErrEncoding, ErrUnsupported, ErrFormatMismatch, ErrNoHeader, ErrBadHeader, ErrCorrupt, ErrTooLarge} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return err.Error()
}

// FuzzCharset feeds arbitrary bytes in every charset the decoder detects or
// is told: it must not panic, must end, and every value is UTF-8.
func FuzzCharset(f *testing.F) {
	for _, seed := range []string{
		"id,title\n1,caf\xe9\n", "id\ttitle\n1\t\xb3\xaa\xc0\xcc\xc5\xb0\n", "\xff\xfei\x00d\x00,\x00t\x00\n\x00",
		"\xfe\xff\x00i\x00d\x00\n", "id\n" + strings.Repeat("a\n", 100) + "\xe9\x80\n", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss xmlns:g=\"http://base.google.com/ns/1.0\"><item><g:id>\xe9</g:id></item></rss>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cs := range []string{"", "euc-kr", "windows-1252", "utf-16", "utf-16be"} {
			checkRows(t, data, schemas.DecoderOptions{Charset: cs, MaxRowBytes: 256})
		}
		if _, err := DetectFile(data, ""); err != nil && errKind(err) == err.Error() {
			t.Fatalf("DetectFile(%q) fails without a kind a partner is told: %v", data, err)
		}
	})
}
