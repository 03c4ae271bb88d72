package decode

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"feedline/schemas"
)

// decoded is everything a decoder yielded.
type decoded struct {
	cols           []string
	rows           []schemas.RawRow
	rejects        map[int64]string   // row -> reason
	rejectedValues map[int64][]string // row -> the rejected row's best-effort values
	err            error              // the fatal error, nil at a clean io.EOF
}

// decodeAll reads d to the end. It fails the test if d does not stop.
func decodeAll(t testing.TB, d schemas.RowDecoder) decoded {
	t.Helper()
	out := decoded{rejects: map[int64]string{}, rejectedValues: map[int64][]string{}}
	for range 1_000_000 {
		row, err := d.Next()
		var re *schemas.RowError
		switch {
		case err == nil:
			out.rows = append(out.rows, row)
		case errors.As(err, &re):
			if _, dup := out.rejects[re.Row]; dup {
				t.Fatalf("row %d rejected twice", re.Row)
			}
			out.rejects[re.Row] = re.Reason
			if re.Values != nil {
				out.rejectedValues[re.Row] = re.Values
			}
		case err == io.EOF:
			out.cols = d.Columns()
			return out
		default:
			out.cols = d.Columns()
			out.err = err
			if _, again := d.Next(); again != err {
				t.Fatalf("Next after fatal error %v returned %v", err, again)
			}
			return out
		}
	}
	t.Fatal("decoder never ended")
	return out
}

func openString(t testing.TB, input string, opt schemas.DecoderOptions) schemas.RowDecoder {
	t.Helper()
	d, err := Open(strings.NewReader(input), opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// values lists the rows' values, padded to the final column count.
func (d decoded) values() [][]string {
	out := make([][]string, 0, len(d.rows))
	for _, r := range d.rows {
		v := append([]string(nil), r.Values...)
		for len(v) < len(d.cols) {
			v = append(v, "")
		}
		out = append(out, v)
	}
	return out
}

func (d decoded) rowNumbers() []int64 {
	out := make([]int64, 0, len(d.rows))
	for _, r := range d.rows {
		out = append(out, r.Row)
	}
	return out
}

func TestRowErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&schemas.RowError{Row: 42, Reason: "row has 3 fields, the header has 4"})
	if got, want := err.Error(), "row 42: row has 3 fields, the header has 4"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestOpenFormat(t *testing.T) {
	t.Parallel()
	csvFile := "id,title,price\n1,Shoe,12900\n"
	tsvFile := "id\ttitle\tprice\n1\tShoe\t12900\n"
	googleFile := "id\ttitle\tdescription\tlink\tprice\tavailability\n1\tShoe\tRed\thttps://x/1\t15.00 USD\tin_stock\n"
	naverFile := "id\ttitle\tprice_pc\tlink\timage_link\tcategory_name1\n1\t운동화\t12900\thttps://x/1\thttps://x/1.jpg\t패션\n"
	ndjsonFile := `{"id":"1"}` + "\n"
	var parquetFile bytes.Buffer
	if err := GenerateParquet(&parquetFile, 3, 1); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		input      string
		opt        schemas.DecoderOptions
		wantFormat string
		wantErr    error
		wantMsg    string // part of the error message
	}{
		{name: "detect csv", input: csvFile, wantFormat: schemas.FormatCSV},
		{name: "detect tsv", input: tsvFile, wantFormat: schemas.FormatTSV},
		{name: "detect google merchant", input: googleFile, wantFormat: schemas.FormatGoogleMerchant},
		{name: "detect naver ep", input: naverFile, wantFormat: schemas.FormatNaverEP},
		{name: "detect ndjson", input: ndjsonFile, wantFormat: schemas.FormatNDJSON},
		{name: "detect parquet", input: parquetFile.String(), wantFormat: schemas.FormatParquet},
		{name: "named csv", input: csvFile, opt: schemas.DecoderOptions{Format: schemas.FormatCSV}, wantFormat: schemas.FormatCSV},
		{name: "named tsv", input: tsvFile, opt: schemas.DecoderOptions{Format: schemas.FormatTSV}, wantFormat: schemas.FormatTSV},
		{name: "named google merchant over plain tsv", input: tsvFile, opt: schemas.DecoderOptions{Format: schemas.FormatGoogleMerchant}, wantFormat: schemas.FormatGoogleMerchant},
		{name: "named naver ep", input: naverFile, opt: schemas.DecoderOptions{Format: schemas.FormatNaverEP}, wantFormat: schemas.FormatNaverEP},
		{name: "named csv with given delimiter", input: "a;b\n1;2\n", opt: schemas.DecoderOptions{Format: schemas.FormatCSV, Delimiter: ';'}, wantFormat: schemas.FormatCSV},
		{name: "named parquet", input: parquetFile.String(), opt: schemas.DecoderOptions{Format: schemas.FormatParquet}, wantFormat: schemas.FormatParquet},

		{name: "parquet given, csv sent", input: csvFile, opt: schemas.DecoderOptions{Format: schemas.FormatParquet},
			wantErr: ErrFormatMismatch, wantMsg: "comma-separated"},
		{name: "parquet given, gzipped csv sent", input: string(gzipped(csvFile)), opt: schemas.DecoderOptions{Format: schemas.FormatParquet},
			wantErr: ErrFormatMismatch, wantMsg: "comma-separated"},
		{name: "ndjson given, csv sent", input: csvFile, opt: schemas.DecoderOptions{Format: schemas.FormatNDJSON},
			wantErr: ErrFormatMismatch, wantMsg: "comma-separated"},
		{name: "ndjson given, parquet sent", input: parquetFile.String(), opt: schemas.DecoderOptions{Format: schemas.FormatNDJSON},
			wantErr: ErrFormatMismatch, wantMsg: "Parquet"},
		{name: "csv given, parquet sent", input: parquetFile.String(), opt: schemas.DecoderOptions{Format: schemas.FormatCSV},
			wantErr: ErrFormatMismatch, wantMsg: "Parquet"},
		{name: "csv given, ndjson sent", input: ndjsonFile, opt: schemas.DecoderOptions{Format: schemas.FormatCSV},
			wantErr: ErrFormatMismatch, wantMsg: "NDJSON"},
		{name: "tsv given, csv sent", input: csvFile, opt: schemas.DecoderOptions{Format: schemas.FormatTSV},
			wantErr: ErrFormatMismatch, wantMsg: "comma-separated"},
		{name: "unknown format", input: csvFile, opt: schemas.DecoderOptions{Format: "xlsx"}, wantErr: ErrUnsupported, wantMsg: "xlsx"},
		{name: "bad delimiter", input: csvFile, opt: schemas.DecoderOptions{Delimiter: '"'}, wantErr: ErrUnsupported},
		{name: "empty", input: "", wantErr: ErrEmpty},
		{name: "empty, format given", input: "", opt: schemas.DecoderOptions{Format: schemas.FormatParquet}, wantErr: ErrEmpty},
		{name: "blank lines only", input: "\n \r\n\t\n", wantErr: ErrEmpty},
		{name: "bom only", input: "\ufeff", opt: schemas.DecoderOptions{Format: schemas.FormatCSV}, wantErr: ErrEmpty},
		{name: "binary", input: "id,title\n\x00\x01\x02\x03", wantErr: ErrBinary},
		{name: "binary, csv given", input: "\x00\x01\x02\x03\x04", opt: schemas.DecoderOptions{Format: schemas.FormatCSV}, wantErr: ErrBinary},
		{name: "json array", input: `[{"id":1}]`, wantErr: ErrUnsupported, wantMsg: "NDJSON"},
		{name: "duplicate header", input: "id,title,id\n1,a,2\n", wantErr: ErrBadHeader, wantMsg: `"id" appears twice`},
		{name: "empty header name", input: "id,,price\n1,a,2\n", wantErr: ErrBadHeader, wantMsg: "column 2"},
		{name: "trailing delimiter in header", input: "id,title,\n1,a,\n", wantErr: ErrBadHeader, wantMsg: "column 3"},
		{name: "data instead of header", input: "12345,19900,https://shop.example.com/p/1\n", wantErr: ErrNoHeader},
		{name: "header never closes its quote", input: "id,\"title\n1,a\n", wantErr: ErrBadHeader, wantMsg: "never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(strings.NewReader(tt.input), tt.opt)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Open error %q does not mention %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer d.Close()
			if got := d.Format(); got != tt.wantFormat {
				t.Fatalf("Format() = %q, want %q", got, tt.wantFormat)
			}
			if got := decodeAll(t, d); got.err != nil || len(got.rows) == 0 || len(got.rejects) > 0 {
				t.Fatalf("decoding: rows %d, rejects %v, err %v", len(got.rows), got.rejects, got.err)
			}
		})
	}
}

// failingReader returns data, then an error that is not io.EOF.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadErrorIsFatal(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	var big strings.Builder
	big.WriteString("id,title\n")
	for i := range 10_000 {
		big.WriteString("1,title number ")
		big.WriteString(strings.Repeat("x", i%50))
		big.WriteString("\n")
	}
	for _, format := range []string{schemas.FormatCSV, schemas.FormatNDJSON} {
		t.Run(format, func(t *testing.T) {
			input := big.String()
			if format == schemas.FormatNDJSON {
				input = strings.Repeat(`{"id":"1","title":"a"}`+"\n", 10_000)
			}
			d, err := Open(&failingReader{data: []byte(input), err: boom}, schemas.DecoderOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAll(t, d)
			if !errors.Is(got.err, boom) {
				t.Fatalf("fatal error = %v, want %v", got.err, boom)
			}
			if len(got.rows) == 0 {
				t.Fatal("no rows before the read error")
			}
		})
	}
}

func TestNextAfterClose(t *testing.T) {
	t.Parallel()
	var pq bytes.Buffer
	if err := GenerateParquet(&pq, 5, 1); err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{"id,title\n1,a\n2,b\n", `{"id":"1"}` + "\n" + `{"id":"2"}` + "\n", pq.String()} {
		d := openString(t, input, schemas.DecoderOptions{TempDir: t.TempDir()})
		if _, err := d.Next(); err != nil {
			t.Fatalf("%s: first row: %v", d.Format(), err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("%s: Close: %v", d.Format(), err)
		}
		if _, err := d.Next(); err == nil || err == io.EOF {
			t.Fatalf("%s: Next after Close = %v, want an error", d.Format(), err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("%s: second Close: %v", d.Format(), err)
		}
	}
}

// quoting is a quoting setting for DecoderOptions.Quoted.
func quoting(on bool) *bool { return &on }
