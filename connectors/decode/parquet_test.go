package decode

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"feedline/schemas"
)

type testOffer struct {
	Currency string `parquet:"currency"`
	Amount   int64  `parquet:"amount,decimal(2:18)"`
}

type testShipping struct {
	Fee int32 `parquet:"fee"`
}

type testProduct struct {
	ID        string        `parquet:"id"`
	Price     int64         `parquet:"price"`
	Rating    float64       `parquet:"rating"`
	Weight    float32       `parquet:"weight"`
	InStock   bool          `parquet:"in_stock"`
	Stock     uint32        `parquet:"stock"`
	Sale      *int32        `parquet:"sale,optional"`
	Note      *string       `parquet:"note,optional"`
	Offer     testOffer     `parquet:"offer"`
	Shipping  *testShipping `parquet:"shipping,optional"`
	Tags      []string      `parquet:"tags,list"`
	Images    []string      `parquet:"images"`
	Updated   time.Time     `parquet:"updated,timestamp(millisecond)"`
	UpdatedUS int64         `parquet:"updated_us,timestamp(microsecond)"`
	Day       int32         `parquet:"day,date"` // days since 1970; parquet-go v0.32 writes time.Time dates wrongly
	Raw       []byte        `parquet:"raw"`
}

func writeParquet[T any](t testing.TB, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquet(t *testing.T) {
	t.Parallel()
	sale, note := int32(9900), "한정판"
	updated := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	file := writeParquet(t, []testProduct{
		{
			ID: "SKU-1", Price: 12900, Rating: 4.5, Weight: 0.25, InStock: true, Stock: 4_000_000_000,
			Sale: &sale, Note: &note,
			Offer:    testOffer{Currency: "KRW", Amount: 1290050},
			Shipping: &testShipping{Fee: 3000},
			Tags:     []string{"신발", "running"}, Images: []string{"https://x/1.jpg", "https://x/2.jpg"},
			Updated: updated, UpdatedUS: updated.UnixMicro() + 7, Day: 20161,
			Raw: []byte("plain bytes"),
		},
		{
			ID: "SKU-2", Price: -5, Rating: 1e-9, Weight: 3, Offer: testOffer{Currency: "USD", Amount: -7},
			Updated: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedUS: -1, Day: -1,
		},
	})
	dir := t.TempDir()
	d, err := Open(bytes.NewReader(file), schemas.DecoderOptions{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format() != schemas.FormatParquet {
		t.Fatalf("Format() = %q", d.Format())
	}
	if spooled, _ := os.ReadDir(dir); len(spooled) != 1 {
		t.Fatalf("%d files in the temp dir while decoding, want the one spool file", len(spooled))
	}
	got := decodeAll(t, d)
	if got.err != nil || len(got.rejects) > 0 {
		t.Fatalf("err %v, rejects %v", got.err, got.rejects)
	}
	wantCols := []string{"id", "price", "rating", "weight", "in_stock", "stock", "sale", "note",
		"offer.currency", "offer.amount", "shipping.fee", "tags", "images", "updated", "updated_us", "day", "raw"}
	if !reflect.DeepEqual(got.cols, wantCols) {
		t.Fatalf("columns = %q, want %q", got.cols, wantCols)
	}
	want := [][]string{
		{"SKU-1", "12900", "4.5", "0.25", "true", "4000000000", "9900", "한정판",
			"KRW", "12900.50", "3000", "신발\nrunning", "https://x/1.jpg\nhttps://x/2.jpg",
			"2025-03-14T15:09:26.535Z", "2025-03-14T15:09:26.535007Z", "2025-03-14", "plain bytes"},
		{"SKU-2", "-5", "1e-09", "3", "false", "0", "", "",
			"USD", "-0.07", "", "", "",
			"1960-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1969-12-31", ""},
	}
	if vals := got.values(); !reflect.DeepEqual(vals, want) {
		for i := range vals {
			for j := range vals[i] {
				if vals[i][j] != want[i][j] {
					t.Errorf("row %d %s = %q, want %q", i+1, wantCols[j], vals[i][j], want[i][j])
				}
			}
		}
	}
	if nums := got.rowNumbers(); !reflect.DeepEqual(nums, []int64{1, 2}) {
		t.Errorf("row numbers %v", nums)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("Close left %d files in the temp dir", len(left))
	}
}

func TestParquetRowLimit(t *testing.T) {
	t.Parallel()
	type row struct {
		ID    string `parquet:"id"`
		Title string `parquet:"title"`
	}
	file := writeParquet(t, []row{{"1", "short"}, {"2", strings.Repeat("x", 100)}, {"3", "fine"}})
	got := decodeAll(t, openString(t, string(file), schemas.DecoderOptions{MaxRowBytes: 50}))
	if got.err != nil {
		t.Fatal(got.err)
	}
	if nums := got.rowNumbers(); !reflect.DeepEqual(nums, []int64{1, 3}) {
		t.Fatalf("good rows %v, want 1 and 3", nums)
	}
	if got.rejects[2] != "row is 101 bytes, the limit is 50" {
		t.Fatalf("row 2 rejected for %q", got.rejects[2])
	}
}

func TestParquetInvalidUTF8(t *testing.T) {
	t.Parallel()
	type row struct {
		ID string `parquet:"id"`
	}
	file := writeParquet(t, []row{{"ok"}, {"caf\xe9"}, {"fine"}})
	got := decodeAll(t, openString(t, string(file), schemas.DecoderOptions{}))
	if got.err != nil || len(got.rows) != 2 || !strings.Contains(got.rejects[2], `column "id" is not valid UTF-8`) {
		t.Fatalf("err %v, rows %d, rejects %v", got.err, len(got.rows), got.rejects)
	}
}

func TestParquetDamaged(t *testing.T) {
	t.Parallel()
	var good bytes.Buffer
	if err := GenerateParquet(&good, 2000, 3); err != nil {
		t.Fatal(err)
	}
	file := good.Bytes()
	tests := []struct {
		name  string
		input []byte
	}{
		{"truncated", file[:len(file)/2]},
		{"magic only", []byte("PAR1")},
		{"garbage after magic", append([]byte("PAR1"), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000)...)},
		{"footer length past the start", append(append([]byte("PAR1"), make([]byte, 16)...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(bytes.NewReader(tt.input), schemas.DecoderOptions{TempDir: dir})
			if err == nil {
				got := decodeAll(t, d)
				_ = d.Close()
				err = got.err
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error = %v, want ErrCorrupt", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("%d spool files left behind", len(left))
			}
		})
	}
}

// TestParquetScrambledPages damages column data but not the footer: reading
// must end in rows or a fatal error, never a panic.
func TestParquetScrambledPages(t *testing.T) {
	t.Parallel()
	var good bytes.Buffer
	if err := GenerateParquet(&good, 500, 5); err != nil {
		t.Fatal(err)
	}
	for step := 7; step < 200; step += 37 {
		file := bytes.Clone(good.Bytes())
		for i := 4; i < len(file)/2; i += step {
			file[i] ^= 0x5a
		}
		d, err := Open(bytes.NewReader(file), schemas.DecoderOptions{TempDir: t.TempDir()})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("step %d: Open error %v, want ErrCorrupt", step, err)
			}
			continue
		}
		got := decodeAll(t, d)
		_ = d.Close()
		if got.err != nil && !errors.Is(got.err, ErrCorrupt) {
			t.Fatalf("step %d: error %v, want ErrCorrupt", step, got.err)
		}
	}
}

func TestAppendDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		digits string
		scale  int
		want   string
	}{
		{"1290050", 2, "12900.50"},
		{"-7", 2, "-0.07"},
		{"5", 3, "0.005"},
		{"0", 2, "0.00"},
		{"12", 0, "12"},
		{"12", -2, "1200"},
	}
	for _, tt := range tests {
		if got := string(appendDecimal(nil, tt.digits, tt.scale)); got != tt.want {
			t.Errorf("appendDecimal(%s, %d) = %s, want %s", tt.digits, tt.scale, got, tt.want)
		}
	}
	if got := bigEndianInt([]byte{0xff, 0x38}).String(); got != "-200" {
		t.Errorf("bigEndianInt(ff38) = %s, want -200", got)
	}
}
