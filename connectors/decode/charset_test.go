package decode

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/unicode"

	"feedline/schemas"
)

func encode(t testing.TB, e encoding.Encoding, s string) []byte {
	t.Helper()
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The whole file is read in the charset its first non-ASCII text decides,
// however late that text comes and however little of it there is.
func TestCharsetOfTheWholeFile(t *testing.T) {
	t.Parallel()
	asciiRows := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "A%d\tPlain item %d\t1000\n", i, i)
		}
		return b.String()
	}
	var thirds strings.Builder
	thirds.WriteString("id\ttitle\tprice\n")
	for i := range 3000 {
		title := fmt.Sprintf("Plain item %d", i)
		if i%3 == 2 {
			title = fmt.Sprintf("무선 청소기 %d", i)
		}
		fmt.Fprintf(&thirds, "K%d\t%s\t1000\n", i, title)
	}
	cases := []struct {
		name    string
		file    []byte
		opt     schemas.DecoderOptions
		charset string
		row     int    // a row to look at
		want    string // its title
		rows    int
	}{
		{"one-row EUC-KR file", encode(t, korean.EUCKR, "id\ttitle\tprice\n1\t나이키 운동화\t12900\n"), schemas.DecoderOptions{}, schemas.CharsetEUCKR, 1, "나이키 운동화", 1},
		{"EUC-KR in every third row", encode(t, korean.EUCKR, thirds.String()), schemas.DecoderOptions{}, schemas.CharsetEUCKR, 3, "무선 청소기 2", 3000},
		{"EUC-KR only past the head", encode(t, korean.EUCKR, "id\ttitle\tprice\n"+asciiRows(5000)+"K1\t오뚜기 라면 한 봉지\t4500\n"), schemas.DecoderOptions{}, schemas.CharsetEUCKR, 5001, "오뚜기 라면 한 봉지", 5001},
		{"Windows-1252 only past the head", encode(t, charmap.Windows1252, "id\ttitle\tprice\n"+asciiRows(5000)+"W1\tCrème brûlée “spécial”\t450\n"), schemas.DecoderOptions{}, schemas.CharsetWindows1252, 5001, "Crème brûlée “spécial”", 5001},
		{"Windows-1252 German", encode(t, charmap.Windows1252, "id;titel;preis\n1;Größe Müller Öl;12,50\n"), schemas.DecoderOptions{}, schemas.CharsetWindows1252, 1, "Größe Müller Öl", 1},
		{"UTF-8 past the head", []byte("id\ttitle\tprice\n" + asciiRows(5000) + "U1\t무선 청소기\t1\n"), schemas.DecoderOptions{}, schemas.CharsetUTF8, 5001, "무선 청소기", 5001},
		{"UTF-16LE with a BOM", append([]byte{0xFF, 0xFE}, encode(t, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "id,title\n1,나이키 운동화\n2,Café\n")...), schemas.DecoderOptions{}, schemas.CharsetUTF16LE, 1, "나이키 운동화", 2},
		{"UTF-16BE with a BOM", append([]byte{0xFE, 0xFF}, encode(t, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "id,title\n1,나이키 운동화\n")...), schemas.DecoderOptions{}, schemas.CharsetUTF16BE, 1, "나이키 운동화", 1},
		{"UTF-16LE without a BOM", encode(t, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "id,title\n1,Shoe\n2,Bag\n"), schemas.DecoderOptions{}, schemas.CharsetUTF16LE, 2, "Bag", 2},
		// The partner's declaration wins over what the bytes suggest.
		{"declared windows-1252 over Korean-looking bytes", encode(t, charmap.Windows1252, "id\ttitle\n1\tÀÌ¸§\n"), schemas.DecoderOptions{Charset: "latin1"}, schemas.CharsetWindows1252, 1, "ÀÌ¸§", 1},
		{"declared euc-kr", encode(t, korean.EUCKR, "id\ttitle\n1\t가\n"), schemas.DecoderOptions{Charset: "CP949"}, schemas.CharsetEUCKR, 1, "가", 1},
		{"declared utf-16", append([]byte{0xFE, 0xFF}, encode(t, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "id,title\n1,x\n")...), schemas.DecoderOptions{Charset: "utf-16"}, schemas.CharsetUTF16BE, 1, "x", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Open(bytes.NewReader(c.file), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := decodeAll(t, d)
			if got.err != nil || len(got.rejects) > 0 || len(got.rows) != c.rows {
				t.Fatalf("%d rows, rejects %v, err %v; want %d rows", len(got.rows), got.rejects, got.err, c.rows)
			}
			if v := got.rows[c.row-1].Values[1]; v != c.want {
				t.Errorf("row %d title %q, want %q", c.row, v, c.want)
			}
			if cs := d.(*fileDecoder).Charset(); cs != c.charset {
				t.Errorf("charset %q, want %q", cs, c.charset)
			}
		})
	}
}

// The API decides the charset of what the head shows, as the decoder will.
func TestDetectFileTellsCharsetAndCompression(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		head     []byte
		declared string
		want     schemas.FileKind
	}{
		{encode(t, korean.EUCKR, "id\ttitle\tprice_pc\n1\t나이키\t1\n"), "", schemas.FileKind{Format: schemas.FormatNaverEP, Delimiter: '\t', Charset: schemas.CharsetEUCKR}},
		{[]byte("id,title\n1,shoe\n"), "", schemas.FileKind{Format: schemas.FormatCSV, Delimiter: ','}},
		{[]byte("id,title\n1,shoe\n"), "euc-kr", schemas.FileKind{Format: schemas.FormatCSV, Delimiter: ',', Charset: schemas.CharsetEUCKR}},
		{gzipped("id\ttitle\n1\tCafé\n"), "", schemas.FileKind{Format: schemas.FormatTSV, Delimiter: '\t', Compression: schemas.CompressionGzip, Charset: schemas.CharsetUTF8}},
		{[]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><rss xmlns:g="http://base.google.com/ns/1.0">`), "", schemas.FileKind{Format: schemas.FormatGoogleMerchantXML, Charset: schemas.CharsetWindows1252}},
	} {
		got, err := DetectFile(c.head, c.declared)
		if err != nil || got != c.want {
			t.Errorf("DetectFile(%.30q, %q) = %+v, %v; want %+v", c.head, c.declared, got, err, c.want)
		}
	}
	if _, err := DetectFile([]byte("id\n1\n"), "klingon"); err == nil {
		t.Error("an unknown declared charset passes")
	}
}

// Accented Latin text in Windows-1252 is not taken for Korean, though its
// bytes fall in CP949's range.
func TestLatinTextIsNotKorean(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"Größe Müller Öl", "Men’s “Crème” façade déjà vu", "ÄÖÜ äöü ß é è à ç ñ", "Ångström Ørsted Æble"} {
		if got := decideCharset(encode(t, charmap.Windows1252, s), false); got != schemas.CharsetWindows1252 {
			t.Errorf("%q decided as %s", s, got)
		}
	}
	for _, s := range []string{"나이키 운동화", "삼성 무선 이어폰 (블랙)", "똠방각하 햏"} {
		if got := decideCharset(encode(t, korean.EUCKR, s), false); got != schemas.CharsetEUCKR {
			t.Errorf("%q decided as %s", s, got)
		}
	}
}
