package decode

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/text/encoding/korean"

	"feedline/schemas"
)

// Naver EP files are often exported in EUC-KR; they decode to UTF-8 rows.
func TestEUCKRNaverEPDecodesToUTF8(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	src.WriteString("id\ttitle\tprice_pc\tlink\timage_link\tcategory_name1\tcategory_name2\tbrand\n")
	for i := 0; i < 3000; i++ { // well past the sniffed head
		src.WriteString("NV-" + strings.Repeat("9", i%5) + "\t무선 청소기 2024\t199000\thttps://shop.example/nv\thttps://img.example/nv.jpg\t가전\t청소기\tLG전자\n")
	}
	enc, err := korean.EUCKR.NewEncoder().String(src.String())
	if err != nil {
		t.Fatal(err)
	}
	if kind, err := DetectFile([]byte(enc)[:HeadSize], ""); err != nil || kind.Format != schemas.FormatNaverEP {
		t.Fatalf("Detect = %q, %v; want naver_ep", kind.Format, err)
	}
	d, err := Open(bytes.NewReader([]byte(enc)), schemas.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Format() != schemas.FormatNaverEP || d.Columns()[1] != "title" {
		t.Fatalf("format %s, columns %v", d.Format(), d.Columns())
	}
	rows := 0
	for {
		row, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("row %d: %v", rows+1, err)
		}
		rows++
		if row.Values[1] != "무선 청소기 2024" || row.Values[7] != "LG전자" {
			t.Fatalf("row %d decoded as %q", row.Row, row.Values)
		}
	}
	if rows != 3000 {
		t.Errorf("decoded %d rows, want 3000", rows)
	}
}
