package decode

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"feedline/schemas"
)

// inchTitle is a Korean monitor title that starts with an inch mark, the
// stray quote Naver EP feeds are full of.
const inchTitle = `"27인치 모니터`

// naverEP writes a Naver EP TSV of n products; titles[row] replaces the
// title of that 1-based row.
func naverEP(n int, titles map[int]string) string {
	var b strings.Builder
	b.WriteString("id\ttitle\tprice_pc\tlink\tcategory_name1\n")
	for i := 1; i <= n; i++ {
		title, ok := titles[i]
		if !ok {
			title = fmt.Sprintf("상품 %d", i)
		}
		fmt.Fprintf(&b, "P%03d\t%s\t%d\thttps://shop.example/%d\t가전\n", i, title, i*100, i)
	}
	return b.String()
}

// naverRow is what the decoder should return for row i of naverEP.
func naverRow(i int, title string) []string {
	return []string{fmt.Sprintf("P%03d", i), title, fmt.Sprint(i * 100), fmt.Sprintf("https://shop.example/%d", i), "가전"}
}

func TestStrayQuoteInTSVIsAnOrdinaryCharacter(t *testing.T) {
	t.Parallel()
	const n, stray = 100, 37
	file := naverEP(n, map[int]string{stray: inchTitle, 60: `32" 커브드 "게이밍" 모니터`})
	for _, opt := range []schemas.DecoderOptions{{}, {Format: schemas.FormatNaverEP}, {Format: schemas.FormatTSV}, {Quoted: quoting(false)}} {
		t.Run(fmt.Sprintf("format %q", opt.Format), func(t *testing.T) {
			d := openString(t, file, opt)
			if want := opt.Format; want != "" && d.Format() != want || want == "" && d.Format() != schemas.FormatNaverEP {
				t.Fatalf("format %s", d.Format())
			}
			got := decodeAll(t, d)
			if got.err != nil || len(got.rejects) > 0 {
				t.Fatalf("err %v, rejects %v", got.err, got.rejects)
			}
			if len(got.rows) != n {
				t.Fatalf("%d rows, want %d", len(got.rows), n)
			}
			if want := naverRow(stray, inchTitle); !reflect.DeepEqual(got.rows[stray-1].Values, want) {
				t.Errorf("row %d = %q, want %q", stray, got.rows[stray-1].Values, want)
			}
			if v := got.rows[59].Values[1]; v != `32" 커브드 "게이밍" 모니터` {
				t.Errorf("row 60 title %q", v)
			}
			if nums := got.rowNumbers(); nums[n-1] != n {
				t.Errorf("last row number %d, want %d", nums[n-1], n)
			}
		})
	}
}

func TestStrayQuoteInQuotedTSVRejectsOnlyItsRow(t *testing.T) {
	t.Parallel()
	const n, stray = 100, 37
	file := naverEP(n, map[int]string{stray: inchTitle})
	got := decodeAll(t, openString(t, file, schemas.DecoderOptions{Format: schemas.FormatNaverEP, Quoted: quoting(true)}))
	if got.err != nil {
		t.Fatal(got.err)
	}
	if len(got.rejects) != 1 || !strings.Contains(got.rejects[stray], fmt.Sprintf("line %d: a quoted field starts here", stray+1)) {
		t.Fatalf("rejects %v, want only row %d", got.rejects, stray)
	}
	if want := naverRow(stray, inchTitle); !reflect.DeepEqual(got.rejectedValues[stray], want) {
		t.Errorf("rejected values %q, want %q", got.rejectedValues[stray], want)
	}
	if len(got.rows) != n-1 {
		t.Fatalf("%d rows, want %d", len(got.rows), n-1)
	}
	for _, r := range got.rows {
		if want := naverRow(int(r.Row), fmt.Sprintf("상품 %d", r.Row)); !reflect.DeepEqual(r.Values, want) {
			t.Fatalf("row %d = %q, want %q", r.Row, r.Values, want)
		}
	}
}

// csvFeed is a product CSV of n rows. strays are rows whose title is a
// stray inch mark; multiline rows have a legitimate quoted description
// spanning two lines.
type csvFeed struct {
	n         int
	strays    []int
	multiline []int
	noFinalNL bool
}

func (f csvFeed) title(i int) string {
	for _, s := range f.strays {
		if s == i {
			return inchTitle
		}
	}
	return fmt.Sprintf("Product %d", i)
}

func (f csvFeed) description(i int) (raw, value string) {
	for _, m := range f.multiline {
		if m == i {
			return "\"line one, " + fmt.Sprint(i) + "\nline \"\"two\"\"\"", "line one, " + fmt.Sprint(i) + "\nline \"two\""
		}
	}
	return fmt.Sprintf("desc %d", i), fmt.Sprintf("desc %d", i)
}

func (f csvFeed) String() string {
	var b strings.Builder
	b.WriteString("id,title,description,price\n")
	for i := 1; i <= f.n; i++ {
		desc, _ := f.description(i)
		fmt.Fprintf(&b, "P%03d,%s,%s,%d\n", i, f.title(i), desc, i*100)
	}
	s := b.String()
	if f.noFinalNL {
		s = strings.TrimSuffix(s, "\n")
	}
	return s
}

// line is the physical line row i starts on (the header is line 1).
func (f csvFeed) line(i int) int {
	l := i + 1
	for _, m := range f.multiline {
		if m < i {
			l++
		}
	}
	return l
}

func TestStrayQuoteInCSVRejectsOnlyItsRow(t *testing.T) {
	t.Parallel()
	const n = 40
	for _, f := range []csvFeed{
		{n: n, strays: []int{1}},
		{n: n, strays: []int{20}},
		{n: n, strays: []int{n}},
		{n: n, strays: []int{n}, noFinalNL: true},
		{n: n, strays: []int{20}, multiline: []int{5, 35}},
		{n: n, strays: []int{20}, multiline: []int{19}},
		{n: n, strays: []int{20}, multiline: []int{21}},
		{n: n, strays: []int{1, 2, 3, 20, 21, n}, multiline: []int{4, 22}},
		{n: n, strays: []int{n}, multiline: []int{n - 1}},
	} {
		t.Run(fmt.Sprintf("strays %v multiline %v final newline %v", f.strays, f.multiline, !f.noFinalNL), func(t *testing.T) {
			got := decodeAll(t, openString(t, f.String(), schemas.DecoderOptions{}))
			if got.err != nil {
				t.Fatal(got.err)
			}
			if len(got.rejects) != len(f.strays) {
				t.Errorf("rejects %v, want rows %v", got.rejects, f.strays)
			}
			for _, s := range f.strays {
				want := fmt.Sprintf("line %d: a quoted field starts here", f.line(s))
				if !strings.Contains(got.rejects[int64(s)], want) {
					t.Errorf("row %d rejected for %q, want %q", s, got.rejects[int64(s)], want)
				}
				wantValues := []string{fmt.Sprintf("P%03d", s), inchTitle, fmt.Sprintf("desc %d", s), fmt.Sprint(s * 100)}
				if !reflect.DeepEqual(got.rejectedValues[int64(s)], wantValues) {
					t.Errorf("row %d rejected with values %q, want %q", s, got.rejectedValues[int64(s)], wantValues)
				}
			}
			if len(got.rows)+len(got.rejects) != n {
				t.Errorf("%d rows and %d rejects, want %d in all", len(got.rows), len(got.rejects), n)
			}
			for _, r := range got.rows {
				i := int(r.Row)
				_, desc := f.description(i)
				if want := []string{fmt.Sprintf("P%03d", i), f.title(i), desc, fmt.Sprint(i * 100)}; !reflect.DeepEqual(r.Values, want) {
					t.Errorf("row %d = %q, want %q", i, r.Values, want)
				}
			}
		})
	}
}

// TestStrayQuoteEndings covers each way a field spanning lines is found to
// be a stray quote, and that line and row numbers stay right after it.
func TestStrayQuoteEndings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		input       string
		opt         schemas.DecoderOptions
		wantRows    map[int64][]string
		wantRejects map[int64]string
		wantValues  map[int64][]string
	}{
		{
			name:        "closing quote followed by text",
			input:       "id,title,price\n1,\"27 inch,100\n2,\"Bag\",200\n3,Hat,300\n",
			wantRows:    map[int64][]string{2: {"2", "Bag", "200"}, 3: {"3", "Hat", "300"}},
			wantRejects: map[int64]string{1: `line 2: a quoted field starts here and ends on line 3, where its closing quote is followed by 'B'`},
			wantValues:  map[int64][]string{1: {"1", `"27 inch`, "100"}},
		},
		{
			name:        "closing quote followed by a carriage return",
			input:       "id,title,price\n1,\"27 inch,100\n2,x\"\rx,200\n3,Hat,300\n",
			wantRows:    map[int64][]string{2: {"2", "x\"\rx", "200"}, 3: {"3", "Hat", "300"}},
			wantRejects: map[int64]string{1: "line 2: a quoted field starts here and ends on line 3, where its closing quote is followed by a carriage return"},
		},
		{
			name:        "field count at the end of the record",
			input:       "id,title,price\n1,\"27 inch,100\n2,Monitor 27\",200,extra\n3,Hat,300\n",
			wantRows:    map[int64][]string{3: {"3", "Hat", "300"}},
			wantRejects: map[int64]string{1: "line 2: a quoted field starts here and runs on to line 3, making a row of 4 fields where the header has 3", 2: "row has 4 fields, the header has 3 (line 3)"},
		},
		{
			name:        "too many fields before the record ends",
			input:       "id,title,price\n1,\"27 inch,100\n2,x\",a,b,\"c\nd\"\n3,Hat,300\n",
			wantRows:    map[int64][]string{4: {"3", "Hat", "300"}},
			wantRejects: map[int64]string{1: "line 2: a quoted field starts here and runs on to line 3, making a row of more than the header's 3 fields", 2: "line 3: a quoted field starts here and is not closed on this line, which already has more than the header's 3 fields", 3: "row has 1 fields, the header has 3 (line 4)"},
		},
		{
			name:        "a first line with too many fields needs no look further",
			input:       "id,title,price\n1,a,b,\"27 inch\n2,Bag,200\n",
			wantRows:    map[int64][]string{2: {"2", "Bag", "200"}},
			wantRejects: map[int64]string{1: "line 2: a quoted field starts here and is not closed on this line, which already has more than the header's 3 fields"},
			wantValues:  map[int64][]string{1: {"1", "a", "b", `"27 inch`}},
		},
		{
			name:        "a line already bad needs no look further",
			input:       "id,title,price\n1,\"a\"b,\"27 inch\n2,Bag,200\n",
			wantRows:    map[int64][]string{2: {"2", "Bag", "200"}},
			wantRejects: map[int64]string{1: `line 2: a quoted field is followed by 'b'`},
			wantValues:  map[int64][]string{1: {"1", `"a"b`, `"27 inch`}},
		},
		{
			name:        "a legitimate field spanning lines that ends right",
			input:       "id,title,price\n1,\"27 inch\nmonitor, \"\"curved\"\"\",100\n2,Bag,200\n",
			wantRows:    map[int64][]string{1: {"1", "27 inch\nmonitor, \"curved\"", "100"}, 2: {"2", "Bag", "200"}},
			wantRejects: map[int64]string{},
		},
		{
			name:        "invalid UTF-8 in the first line is replaced in the values",
			input:       "id,title,price\n1,\"caf\xe9,100\n2,Bag 가방 손가방,200\n",
			wantRows:    map[int64][]string{2: {"2", "Bag 가방 손가방", "200"}},
			wantRejects: map[int64]string{1: "line 2: a quoted field starts here and is never closed"},
			wantValues:  map[int64][]string{1: {"1", "\"caf\uFFFD", "100"}},
		},
		{
			name:        "the header's line numbers count blank lines",
			input:       "id,title,price\n\n1,\"27 inch,100\n\n2,Bag,200\n",
			wantRows:    map[int64][]string{2: {"2", "Bag", "200"}},
			wantRejects: map[int64]string{1: "line 3: a quoted field starts here"},
		},
		{
			name:        "rows after a stray quote are numbered on",
			input:       "id,title\n1,\"a\n2,b\n3,\"c\n4,d\n5,\"e\n",
			wantRows:    map[int64][]string{2: {"2", "b"}, 4: {"4", "d"}},
			wantRejects: map[int64]string{1: "line 2: a quoted", 3: "line 4: a quoted", 5: "line 6: a quoted field starts here and is never closed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAll(t, openString(t, tt.input, tt.opt))
			if got.err != nil {
				t.Fatal(got.err)
			}
			rows := map[int64][]string{}
			for _, r := range got.rows {
				rows[r.Row] = r.Values
			}
			if !reflect.DeepEqual(rows, tt.wantRows) {
				t.Errorf("rows %v, want %v", rows, tt.wantRows)
			}
			if len(got.rejects) != len(tt.wantRejects) {
				t.Errorf("rejects %v, want %v", got.rejects, tt.wantRejects)
			}
			for row, reason := range tt.wantRejects {
				if !strings.Contains(got.rejects[row], reason) {
					t.Errorf("row %d rejected for %q, want %q", row, got.rejects[row], reason)
				}
			}
			for row, want := range tt.wantValues {
				if !reflect.DeepEqual(got.rejectedValues[row], want) {
					t.Errorf("row %d rejected with values %q, want %q", row, got.rejectedValues[row], want)
				}
			}
		})
	}
}

// TestStrayQuoteLookBackIsBounded feeds lines each of which opens a quoted
// field that stays open under either reading of the quotes, so every line
// would start a long look ahead: the work stays within a few times the
// file, and every line still becomes one rejected row.
func TestStrayQuoteLookBackIsBounded(t *testing.T) {
	t.Parallel()
	const lines, max = 20_000, 4 << 10
	var b bytes.Buffer
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "c%d", i)
	}
	b.WriteByte('\n')
	for range lines {
		b.WriteString("a\",b,\"\n")
	}
	d, err := Open(bytes.NewReader(b.Bytes()), schemas.DecoderOptions{Format: schemas.FormatCSV, MaxRowBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeAll(t, d)
	if got.err != nil || len(got.rows) != 0 || len(got.rejects) != lines {
		t.Fatalf("err %v, %d rows, %d rejects; want %d rejects", got.err, len(got.rows), len(got.rejects), lines)
	}
	src := &d.(*fileDecoder).RowDecoder.(*delimited).src
	t.Logf("read %d bytes, %d of them again", src.fresh, src.again)
	if limit := 5*src.fresh + 6*max; src.again > limit {
		t.Fatalf("read %d bytes again for a %d-byte file, more than %d", src.again, src.fresh, limit)
	}
}

// inchMarkCSV is a product CSV of rows rows; every every-th row has a
// stray inch mark in its title (0: none).
func inchMarkCSV(rows, every int) []byte {
	var b bytes.Buffer
	b.WriteString("id,title,description,price,link\n")
	for i := 1; i <= rows; i++ {
		title := fmt.Sprintf("모니터 %d", i)
		if every > 0 && i%every == 0 {
			title = inchTitle
		}
		fmt.Fprintf(&b, "P%06d,%s,A fine monitor for work and play,%d,https://shop.example/p/%d\n", i, title, 100*i, i)
	}
	return b.Bytes()
}

// BenchmarkStrayQuotes decodes files full of stray inch marks next to the
// same files without them: the cost per row must stay the same order and
// grow with the file, not with the number of stray quotes times the file.
func BenchmarkStrayQuotes(b *testing.B) {
	for _, bc := range []struct {
		name  string
		rows  int
		every int
		opt   schemas.DecoderOptions
	}{
		{"csv/clean/10k", 10_000, 0, schemas.DecoderOptions{}},
		{"csv/every-row/10k", 10_000, 1, schemas.DecoderOptions{}},
		{"csv/every-row/100k", 100_000, 1, schemas.DecoderOptions{}},
		{"csv/every-100th/10k", 10_000, 100, schemas.DecoderOptions{}},
		{"csv/every-100th/100k", 100_000, 100, schemas.DecoderOptions{}},
		{"tsv/clean/10k", 10_000, 0, schemas.DecoderOptions{Format: schemas.FormatTSV, Delimiter: '\t'}},
		{"tsv/every-row/10k", 10_000, 1, schemas.DecoderOptions{Format: schemas.FormatTSV, Delimiter: '\t'}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			file := inchMarkCSV(bc.rows, bc.every)
			if bc.opt.Delimiter == '\t' {
				file = bytes.ReplaceAll(file, []byte(","), []byte("\t"))
			}
			b.SetBytes(int64(len(file)))
			b.ReportAllocs()
			for b.Loop() {
				d, err := Open(bytes.NewReader(file), bc.opt)
				if err != nil {
					b.Fatal(err)
				}
				rows := 0
				for {
					_, err := d.Next()
					if err == io.EOF {
						break
					}
					if _, ok := err.(*schemas.RowError); err != nil && !ok {
						b.Fatal(err)
					}
					rows++
				}
				if rows != bc.rows {
					b.Fatalf("%d rows, want %d", rows, bc.rows)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.rows), "ns/row")
		})
	}
}
