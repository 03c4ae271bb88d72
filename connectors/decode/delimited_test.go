package decode

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"feedline/schemas"
)

func TestDelimited(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("가나다라", 30_000) // 360 KB: more than the read buffer
	tests := []struct {
		name        string
		input       string
		opt         schemas.DecoderOptions
		wantCols    []string
		wantRows    [][]string
		wantNumbers []int64          // row numbers of wantRows; nil = 1..n
		wantRejects map[int64]string // row -> part of the reason
	}{
		{
			name:     "plain",
			input:    "id,title,price\n1,Shoe,12900\n2,Bag,15.00\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "Shoe", "12900"}, {"2", "Bag", "15.00"}},
		},
		{
			name:     "bom, crlf, no final newline",
			input:    "\ufeffid,title\r\n1,Shoe\r\n2,Bag",
			wantCols: []string{"id", "title"},
			wantRows: [][]string{{"1", "Shoe"}, {"2", "Bag"}},
		},
		{
			name:     "header names trimmed",
			input:    " id , title \n1, Shoe \n",
			wantCols: []string{"id", "title"},
			wantRows: [][]string{{"1", " Shoe "}},
		},
		{
			name:     "quotes: delimiters, newlines, doubled quotes",
			input:    "id,title,description\n1,\"Shoe, red\",\"line one\nline two\"\n2,\"15.6\"\" laptop\",\"\"\n3,\"a\r\nb\",\"\"\"quoted\"\"\"\r\n",
			wantCols: []string{"id", "title", "description"},
			wantRows: [][]string{
				{"1", "Shoe, red", "line one\nline two"},
				{"2", `15.6" laptop`, ""},
				{"3", "a\nb", `"quoted"`},
			},
		},
		{
			name:     "quoted header",
			input:    "\"id\",\"product title\"\n1,Shoe\n",
			wantCols: []string{"id", "product title"},
			wantRows: [][]string{{"1", "Shoe"}},
		},
		{
			name:     "bare quote inside an unquoted field is literal",
			input:    "id,title\n1,15.6\" laptop\n2,Bag\n",
			wantCols: []string{"id", "title"},
			wantRows: [][]string{{"1", `15.6" laptop`}, {"2", "Bag"}},
		},
		{
			name:     "empty fields and trailing delimiter",
			input:    "id,title,price\n1,,\n,,\n\"\",\"\",\"\"\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "", ""}, {"", "", ""}, {"", "", ""}},
		},
		{
			name:        "ragged rows are rejected, decoding goes on",
			input:       "id,title,price\n1,Shoe,100\n2,Bag\n3,Hat,300,extra\n4,Cap,400\n",
			wantCols:    []string{"id", "title", "price"},
			wantRows:    [][]string{{"1", "Shoe", "100"}, {"4", "Cap", "400"}},
			wantNumbers: []int64{1, 4},
			wantRejects: map[int64]string{2: "row has 2 fields, the header has 3", 3: "row has 4 fields, the header has 3"},
		},
		{
			name:        "blank lines take no row number",
			input:       "id,title\n\n1,a\n\r\n   \n2,b\n\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"1", "a"}, {"2", "b"}},
			wantNumbers: []int64{1, 2},
		},
		{
			name:        "invalid utf-8 in a utf-8 file rejects the row",
			input:       "id,title (상품명 제목 이름 표시)\n1,caf\xe9\n2,\"caf\xe9, bar\"\n3,ok\n",
			wantCols:    []string{"id", "title (상품명 제목 이름 표시)"},
			wantRows:    [][]string{{"3", "ok"}},
			wantNumbers: []int64{3},
			wantRejects: map[int64]string{1: "line 2 is not valid UTF-8", 2: "line 3 is not valid UTF-8"},
		},
		{
			name:        "text after a closing quote rejects the row only",
			input:       "id,title\n1,\"Shoe\"s best\n2,Bag\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"2", "Bag"}},
			wantNumbers: []int64{2},
			wantRejects: map[int64]string{1: `line 2: a quoted field is followed by 's'`},
		},
		{
			name:        "a quote never closed rejects only its line",
			input:       "id,title\n1,Shoe\n2,\"Bag\n3,Hat\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"1", "Shoe"}, {"3", "Hat"}},
			wantNumbers: []int64{1, 3},
			wantRejects: map[int64]string{2: "line 3: a quoted field starts here and is never closed"},
		},
		{
			name:        "a quote never closed on the last line",
			input:       "id,title\n1,Shoe\n2,\"Bag",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"1", "Shoe"}},
			wantRejects: map[int64]string{2: "line 3: a quoted field starts here and is never closed"},
		},
		{
			name:        "rows over the limit are rejected, decoding goes on",
			opt:         schemas.DecoderOptions{MaxRowBytes: 16},
			input:       "id,title\n1,0123456789abcd\n2,0123456789abcde\n3,\"0123456789,abcdefghij\"\r\n4,ok\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"1", "0123456789abcd"}, {"4", "ok"}},
			wantNumbers: []int64{1, 4},
			wantRejects: map[int64]string{2: "row is 17 bytes, the limit is 16", 3: "row is 25 bytes, the limit is 16"},
		},
		{
			// Past the limit a field spanning lines is taken for a stray
			// quote: its first line is rejected, the next read again.
			name:        "a field spanning lines past the limit rejects its first line",
			opt:         schemas.DecoderOptions{MaxRowBytes: 16},
			input:       "id,title\n1,ok\n2,\"0123456789\nabcdefghij\"\r\n3,ok\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"1", "ok"}, {"3", "ok"}},
			wantNumbers: []int64{1, 4},
			wantRejects: map[int64]string{
				2: "line 3: a quoted field starts here and runs on to line 4, past the row limit of 16 bytes",
				3: "row has 1 fields, the header has 2 (line 4)",
			},
		},
		{
			name:     "fields longer than the read buffer",
			input:    "id,description,title\n1," + long + ",a\n2,\"" + long + "\n" + long + "\",b\n",
			wantCols: []string{"id", "description", "title"},
			wantRows: [][]string{{"1", long, "a"}, {"2", long + "\n" + long, "b"}},
		},
		{
			name:     "semicolons",
			input:    "id;title;price\n1;Shoe, red;12,50\n2;\"Bag; big\";3,00\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "Shoe, red", "12,50"}, {"2", "Bag; big", "3,00"}},
		},
		{
			name:     "pipes",
			input:    "id|title\n1|Shoe, red\n",
			wantCols: []string{"id", "title"},
			wantRows: [][]string{{"1", "Shoe, red"}},
		},
		{
			name:     "given delimiter wins",
			opt:      schemas.DecoderOptions{Delimiter: '|'},
			input:    "id,x|title\n1,y|Shoe\n",
			wantCols: []string{"id,x", "title"},
			wantRows: [][]string{{"1,y", "Shoe"}},
		},
		{
			name:     "tabs with commas in values, quotes are ordinary",
			input:    "id\ttitle\tprice\n1\tShoe, red\t12900\n2\t\"27\" monitor\t1\n3\t\"Bag\"\t2\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "Shoe, red", "12900"}, {"2", `"27" monitor`, "1"}, {"3", `"Bag"`, "2"}},
		},
		{
			name:     "tabs with quoting on",
			opt:      schemas.DecoderOptions{Quoted: quoting(true)},
			input:    "id\ttitle\tprice\n1\tShoe, red\t12900\n2\t\"Bag\tbig\"\t1\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "Shoe, red", "12900"}, {"2", "Bag\tbig", "1"}},
		},
		{
			name:     "csv with quoting off",
			opt:      schemas.DecoderOptions{Quoted: quoting(false)},
			input:    "id,title\n1,\"Shoe\n2,\"\"\n",
			wantCols: []string{"id", "title"},
			wantRows: [][]string{{"1", `"Shoe`}, {"2", `""`}},
		},
		{
			name:     "header only",
			input:    "id,title\n",
			wantCols: []string{"id", "title"},
		},
		{
			name:     "single column",
			input:    "id\n1\n2\n",
			wantCols: []string{"id"},
			wantRows: [][]string{{"1"}, {"2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAll(t, openString(t, tt.input, tt.opt))
			if got.err != nil {
				t.Fatalf("fatal error: %v", got.err)
			}
			if !reflect.DeepEqual(got.cols, tt.wantCols) {
				t.Errorf("columns = %q, want %q", got.cols, tt.wantCols)
			}
			if vals := got.values(); !reflect.DeepEqual(vals, tt.wantRows) && (len(vals) > 0 || len(tt.wantRows) > 0) {
				t.Errorf("rows = %q, want %q", vals, tt.wantRows)
			}
			want := tt.wantNumbers
			if want == nil {
				for i := range tt.wantRows {
					want = append(want, int64(i+1))
				}
			}
			if nums := got.rowNumbers(); !reflect.DeepEqual(nums, want) && (len(nums) > 0 || len(want) > 0) {
				t.Errorf("row numbers = %v, want %v", nums, want)
			}
			if len(got.rejects) != len(tt.wantRejects) {
				t.Errorf("rejects = %v, want %v", got.rejects, tt.wantRejects)
			}
			for row, reason := range tt.wantRejects {
				if !strings.Contains(got.rejects[row], reason) {
					t.Errorf("row %d rejected for %q, want %q", row, got.rejects[row], reason)
				}
			}
		})
	}
}

// repeatReader yields n copies of b without holding them.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= len(p)
	return len(p), nil
}

// TestHugeLine checks that a 10 MiB line is rejected with its size, that the
// rows after it come out, and that it is read past rather than held.
func TestHugeLine(t *testing.T) {
	const size = 10 << 20
	for _, format := range []string{schemas.FormatCSV, schemas.FormatNDJSON} {
		t.Run(format, func(t *testing.T) {
			var before, after, huge io.Reader
			if format == schemas.FormatCSV {
				before, after = strings.NewReader("id,title\n1,a\n"), strings.NewReader("\n2,b\n")
				huge = &repeatReader{b: 'x', n: size}
			} else {
				before, after = strings.NewReader(`{"id":"1"}`+"\n"+`{"id":"`), strings.NewReader(`"}`+"\n"+`{"id":"2"}`+"\n")
				huge = &repeatReader{b: 'x', n: size - len(`{"id":""}`)}
			}
			d, err := Open(io.MultiReader(before, huge, after), schemas.DecoderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			got := decodeAll(t, d)
			runtime.ReadMemStats(&m1)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if nums := got.rowNumbers(); !reflect.DeepEqual(nums, []int64{1, 3}) {
				t.Fatalf("good rows %v, want 1 and 3", nums)
			}
			if want := "row is 10485760 bytes, the limit is 1048576"; got.rejects[2] != want {
				t.Fatalf("row 2 rejected for %q, want %q", got.rejects[2], want)
			}
			// The limit is 1 MiB; buffering the line would allocate 10 MiB or more.
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("decoding allocated %d bytes", alloc)
			if alloc > 4<<20 {
				t.Fatal("the huge line was buffered")
			}
		})
	}
}

// TestQuoteAcrossBufferEdges moves quotes, delimiters and line ends of a
// row across the edge of the read buffer, which a row longer than the buffer
// meets at its HeadSize-th byte.
func TestQuoteAcrossBufferEdges(t *testing.T) {
	t.Parallel()
	for k := -20; k <= 2; k++ {
		pad := strings.Repeat("p", HeadSize-2+k)
		input := "id,a,b,c\n1," + pad + ",\"x\"\"y\r\nz\",w\r\n2,\"q\",\"\",\r\n"
		got := decodeAll(t, openString(t, input, schemas.DecoderOptions{}))
		if got.err != nil || len(got.rejects) > 0 {
			t.Fatalf("k=%d: err %v, rejects %v", k, got.err, got.rejects)
		}
		want := [][]string{{"1", pad, "x\"y\nz", "w"}, {"2", "q", "", ""}}
		if vals := got.values(); !reflect.DeepEqual(vals, want) {
			t.Fatalf("k=%d: rows differ: %q", k, vals[len(vals)-1])
		}
	}
}

func TestDelimitedMatchesEncodingCSV(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := GenerateCSV(&buf, 3000, 7); err != nil {
		t.Fatal(err)
	}
	got := decodeAll(t, openString(t, buf.String(), schemas.DecoderOptions{}))
	if got.err != nil || len(got.rejects) > 0 {
		t.Fatalf("err %v, rejects %v", got.err, got.rejects)
	}
	want := readAllCSV(t, buf.Bytes())
	if !reflect.DeepEqual(got.cols, want[0]) {
		t.Fatalf("columns %q, want %q", got.cols, want[0])
	}
	if vals := got.values(); !reflect.DeepEqual(vals, want[1:]) {
		for i := range min(len(vals), len(want)-1) {
			if !reflect.DeepEqual(vals[i], want[i+1]) {
				t.Fatalf("row %d = %q, want %q", i+1, vals[i], want[i+1])
			}
		}
		t.Fatalf("%d rows, want %d", len(vals), len(want)-1)
	}
}

func Example() {
	input := "id,title,price\n1,\"Shoe, red\",12900\n2,Bag\n3,Hat,5000\n"
	d, err := Open(strings.NewReader(input), schemas.DecoderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	fmt.Println(d.Format(), d.Columns())
	for {
		row, err := d.Next()
		var re *schemas.RowError
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &re):
			fmt.Println("rejected:", re)
			continue
		case err != nil:
			fmt.Println("failed:", err)
			return
		}
		fmt.Println(row.Row, row.Values)
	}
	// Output:
	// csv [id title price]
	// 1 [1 Shoe, red 12900]
	// rejected: row 2: row has 2 fields, the header has 3 (line 3)
	// 3 [3 Hat 5000]
}

func readAllCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
