package decode

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/unicode"

	"feedline/schemas"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.UintN(256))
	}
	eucKR, err := korean.EUCKR.NewEncoder().String("id,title,price\n1,나이키 운동화,12900\n2,삼성 무선 이어폰,99000\n3,오뚜기 라면,4500\n")
	if err != nil {
		t.Fatal(err)
	}
	utf16, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String("id,title\n1,shoe\n")
	if err != nil {
		t.Fatal(err)
	}
	longHeader := "id,title,price\n" + strings.Repeat("1,\"Shoe, red; big | tab\tx\",12900\n", 5000)

	tests := []struct {
		name      string
		head      string
		wantFmt   string
		wantDelim rune
		wantErr   error
		wantMsg   string
	}{
		{name: "empty", head: "", wantErr: ErrEmpty},
		{name: "whitespace", head: " \r\n\t\n", wantErr: ErrEmpty},
		{name: "parquet", head: "PAR1\x15\x04\x15\x80", wantFmt: schemas.FormatParquet},
		{name: "ndjson", head: `{"id":"1","title":"a"}` + "\n", wantFmt: schemas.FormatNDJSON},
		{name: "ndjson after bom and blank lines", head: "\ufeff\n  \n" + `{"id":1}`, wantFmt: schemas.FormatNDJSON},
		{name: "json array", head: `[{"id":1}]`, wantErr: ErrUnsupported, wantMsg: "JSON array"},
		{name: "merchant rss", head: `<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>`, wantFmt: schemas.FormatGoogleMerchantXML},
		{name: "merchant atom", head: "\ufeff<?xml version=\"1.0\"?>\n<!-- export -->\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:g=\"http://base.google.com/ns/1.0\">", wantFmt: schemas.FormatGoogleMerchantXML},
		{name: "rss without the merchant namespace", head: `<?xml version="1.0"?><rss version="2.0"><channel><item>`, wantErr: ErrUnsupported, wantMsg: "namespace"},
		{name: "other xml", head: `<?xml version="1.0"?><products><product>`, wantErr: ErrUnsupported, wantMsg: "<products>"},
		{name: "html page", head: "<!DOCTYPE html><html><body>Login", wantErr: ErrUnsupported, wantMsg: "HTML"},
		{name: "random bytes", head: string(random), wantErr: ErrBinary},
		{name: "nul in text", head: "id,title\n1,a\x00b\n", wantErr: ErrBinary, wantMsg: "NUL"},
		{name: "control bytes", head: "id,title\x01\x02\x03\x04\x05\n1,a\x06\x07\x08\n", wantErr: ErrBinary},
		{name: "gzip holding csv", head: string(gzipped("id,title\n1,shoe\n")), wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "gzip holding gzip", head: string(gzipped(string(gzipped("id,title\n1,shoe\n")))), wantErr: ErrUnsupported, wantMsg: "compress the feed once"},
		{name: "bzip2 holding tsv", head: string(bzip2TSV), wantFmt: schemas.FormatTSV, wantDelim: '\t'},
		{name: "zip holding ndjson", head: string(zipped(t, map[string]string{"feed.ndjson": `{"id":"1"}` + "\n"})), wantFmt: schemas.FormatNDJSON},
		{name: "zip with a folder and mac files first", head: string(zipped(t, map[string]string{"a/": "", "__MACOSX/._feed.csv": "junk", "feed.csv": "id,title\n1,shoe\n"})), wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "xlsx", head: string(zipped(t, map[string]string{"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})), wantErr: ErrBinary, wantMsg: "Excel"},
		{name: "xls", head: "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", wantErr: ErrBinary, wantMsg: "Excel"},
		{name: "utf-16 with bom", head: "\xff\xfe" + utf16, wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "utf-16 without bom", head: utf16, wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "euc-kr is decoded", head: eucKR, wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "latin-1 is decoded as windows-1252", head: "id,title\n1,caf\xe9\n2,cr\xe8me br\xfbl\xe9e\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "one bad line in many is not an encoding problem", head: "id,title\n1,a\n2,caf\xe9\n3,b\n4,c\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "csv", head: "id,title,price\n1,Shoe,12900\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "csv with bom", head: "\ufeffid,title\n1,a\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "csv with other delimiters quoted", head: "id,title\n1,\"a;b;c|d\"\n2,\"e;f;g\"\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "csv with newlines in quotes", head: "id,title,description\n1,a,\"x\ny;z;w\"\n2,b,c\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "semicolon csv with decimal commas", head: "id;title;price\n1;Shoe;12,50\n2;Bag, big;3,00\n", wantFmt: schemas.FormatCSV, wantDelim: ';'},
		{name: "pipe", head: "id|title|price\n1|Shoe, red|1\n", wantFmt: schemas.FormatCSV, wantDelim: '|'},
		{name: "tsv", head: "id\ttitle\tprice\n1\tShoe, red\t12900\n", wantFmt: schemas.FormatTSV, wantDelim: '\t'},
		{name: "single column", head: "id\n1\n2\n", wantFmt: schemas.FormatCSV, wantDelim: ','},
		{name: "truncated head", head: longHeader[:HeadSize], wantFmt: schemas.FormatCSV, wantDelim: ','},
		{
			name:    "google merchant",
			head:    "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tbrand\tgtin\n1\tShoe\tRed, light\thttps://x/1\thttps://x/1.jpg\tin stock\t15.00 USD\tNike\t0012345678905\n",
			wantFmt: schemas.FormatGoogleMerchant, wantDelim: '\t',
		},
		{
			name:    "google merchant with spaced names",
			head:    "ID\tTitle\tLink\tPrice\tAvailability\tImage Link\n1\tShoe\thttps://x/1\t15.00 USD\tin stock\thttps://x/1.jpg\n",
			wantFmt: schemas.FormatGoogleMerchant, wantDelim: '\t',
		},
		{
			name:    "google merchant columns with commas stay csv",
			head:    "id,title,link,price,availability\n1,Shoe,https://x/1,15.00 USD,in stock\n",
			wantFmt: schemas.FormatCSV, wantDelim: ',',
		},
		{
			name:    "naver ep",
			head:    "id\ttitle\tprice_pc\tprice_mobile\tnormal_price\tlink\timage_link\tcategory_name1\n1\t나이키 운동화\t12900\t12900\t15000\thttps://x/1\thttps://x/1.jpg\t패션\n",
			wantFmt: schemas.FormatNaverEP, wantDelim: '\t',
		},
		{
			name:    "naver ep recognised by its columns",
			head:    "상품ID\ttitle\tnormal_price\tmobile_link\tadd_image_link\tcategory_name1\tcategory_name2\tnaver_category\n1\t운동화\t1\thttps://x\thttps://y\t패션\t신발\t50000001\n",
			wantFmt: schemas.FormatNaverEP, wantDelim: '\t',
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := DetectFile([]byte(tt.head), "")
			format, delim := kind.Format, kind.Delimiter
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Detect error = %v (format %q), want %v", err, format, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Detect error %q does not mention %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if format != tt.wantFmt || delim != tt.wantDelim {
				t.Fatalf("Detect = %q, %q; want %q, %q", format, delim, tt.wantFmt, tt.wantDelim)
			}
		})
	}
}

// TestDetectIgnoresBytesPastHead checks that only the head decides.
func TestDetectIgnoresBytesPastHead(t *testing.T) {
	t.Parallel()
	head := bytes.Repeat([]byte("id,title\n"), HeadSize/9+1)
	file := append(bytes.Clone(head[:HeadSize]), 0, 0, 0, 0)
	kind, err := DetectFile(file, "")
	format := kind.Format
	if err != nil || format != schemas.FormatCSV {
		t.Fatalf("Detect = %q, %v; want csv", format, err)
	}
}

// TestDetectFormatReconcilesTheNamedFormat: a named format is kept where
// the file allows it and refused, with the error a partner is answered,
// where it does not.
func TestDetectFormatReconcilesTheNamedFormat(t *testing.T) {
	t.Parallel()
	const csvHead, ndjsonHead = "id,title\n1,kettle\n", `{"id":"1","title":"kettle"}` + "\n"
	xmlHead := `<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>1</g:id></item></channel></rss>`
	for _, tc := range []struct {
		name, head, named string
		want              schemas.FileKind
		wantErr           []error
		wantMsg           string
	}{
		{name: "detected", head: csvHead, want: schemas.FileKind{Format: schemas.FormatCSV, Delimiter: ','}},
		{name: "named as detected", head: ndjsonHead, named: schemas.FormatNDJSON, want: schemas.FileKind{Format: schemas.FormatNDJSON}},
		{name: "another delimited format named", head: csvHead, named: schemas.FormatTSV, want: schemas.FileKind{Format: schemas.FormatTSV, Delimiter: ','}},
		{name: "a Google Merchant feed in XML", head: xmlHead, named: schemas.FormatGoogleMerchant, want: schemas.FileKind{Format: schemas.FormatGoogleMerchantXML}},
		{name: "a format that does not exist", head: csvHead, named: "xlsx", wantErr: []error{schemas.ErrUnreadableFile}, wantMsg: `format "xlsx" is not supported`},
		{name: "an empty file", head: "", named: schemas.FormatCSV, wantErr: []error{schemas.ErrEmptyFile, ErrEmpty}},
		{name: "a binary file", head: "\x00\x01\x02\x03 not text", wantErr: []error{schemas.ErrUnreadableFile, ErrBinary}},
		{name: "NDJSON named for CSV", head: csvHead, named: schemas.FormatNDJSON, wantErr: []error{schemas.ErrUnreadableFile, ErrFormatMismatch},
			wantMsg: "the file looks like csv, not ndjson; send it with format=csv or leave the format out"},
		{name: "CSV named for NDJSON", head: ndjsonHead, named: schemas.FormatCSV, wantErr: []error{schemas.ErrUnreadableFile, ErrFormatMismatch}, wantMsg: "looks like ndjson, not csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DetectFormat([]byte(tc.head), tc.named, "")
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v, want one that is %v", err, want)
				}
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("DetectFormat: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			if got != tc.want {
				t.Errorf("DetectFormat = %+v, want %+v", got, tc.want)
			}
		})
	}
}
