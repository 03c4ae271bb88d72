package decode

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
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
		sameAsEncodingCSV(t, data)
		checkRows(t, data, Options{Format: "csv", MaxRowBytes: 64})
		if n, ok := checkRows(t, data, Options{Format: "csv", Delimiter: ',', Quoted: quoting(false), MaxRowBytes: 64}); ok && utf8.Valid(data) {
			if want := nonBlankLines(data, ',') - 1; n != int64(want) {
				t.Fatalf("input %q without quoting: %d rows, want one per non-blank line after the header (%d)", data, n, want)
			}
		}
	})
}

// checkRows decodes data and checks what every decoder promises. It returns
// how many rows (good or bad) it read, and whether it read to io.EOF.
func checkRows(t *testing.T, data []byte, opt Options) (int64, bool) {
	d, err := Open(bytes.NewReader(data), opt)
	if err != nil {
		return 0, false
	}
	defer d.Close()
	cols := len(d.Columns())
	last := int64(0)
	for range len(data) + 2 {
		row, err := d.Next()
		var re *RowError
		switch {
		case err == nil:
			if len(row.Values) != cols {
				t.Fatalf("row %d has %d values, header %d", row.Row, len(row.Values), cols)
			}
			if row.Row != last+1 {
				t.Fatalf("row %d after row %d", row.Row, last)
			}
			last = row.Row
		case errors.As(err, &re):
			if re.Row != last+1 {
				t.Fatalf("rejected row %d after row %d", re.Row, last)
			}
			if re.Values == nil && !strings.HasPrefix(re.Reason, "row is ") {
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
	d, err := Open(bytes.NewReader(data), Options{Format: "csv", Delimiter: ','})
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
