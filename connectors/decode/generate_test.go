package decode

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"feedline/schemas"
)

// TestGeneratorsAgree decodes the three generated formats of one seed and
// expects the same columns and rows from each.
func TestGeneratorsAgree(t *testing.T) {
	t.Parallel()
	const rows = 3000
	gens := []struct {
		name string
		gen  func(io.Writer, int, int64) error
	}{
		{"csv", GenerateCSV},
		{"ndjson", GenerateNDJSON},
		{"parquet", GenerateParquet},
	}
	var first decoded
	for i, g := range gens {
		var buf bytes.Buffer
		if err := g.gen(&buf, rows, 42); err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		d := openString(t, buf.String(), schemas.DecoderOptions{})
		if d.Format() != g.name {
			t.Fatalf("%s: detected as %s", g.name, d.Format())
		}
		got := decodeAll(t, d)
		if got.err != nil || len(got.rejects) > 0 || len(got.rows) != rows {
			t.Fatalf("%s: %d rows, rejects %v, err %v", g.name, len(got.rows), got.rejects, got.err)
		}
		if !reflect.DeepEqual(got.cols, generatedColumns) {
			t.Fatalf("%s: columns %q", g.name, got.cols)
		}
		if i == 0 {
			first = got
			continue
		}
		want, vals := first.values(), got.values()
		for r := range vals {
			if !reflect.DeepEqual(vals[r], want[r]) {
				t.Fatalf("%s row %d = %q, csv has %q", g.name, r+1, vals[r], want[r])
			}
		}
	}

	// The rows exercise what partner files hold.
	var invalid, quoted, multiline, sale int
	for _, v := range first.values() {
		if v[1] == "" || v[5] == "abc" {
			invalid++
		}
		if strings.ContainsAny(v[1], `,"`) {
			quoted++
		}
		if strings.Contains(v[2], "\n") {
			multiline++
		}
		if v[6] != "" {
			sale++
		}
	}
	if invalid < rows/300 || invalid > rows*3/100 {
		t.Errorf("%d invalid rows of %d, want about 1%%", invalid, rows)
	}
	if quoted == 0 || multiline == 0 || sale == 0 {
		t.Errorf("quoted titles %d, multi-line descriptions %d, sale prices %d: want some of each", quoted, multiline, sale)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	var a, b, c bytes.Buffer
	for _, x := range []struct {
		w    *bytes.Buffer
		seed int64
	}{{&a, 1}, {&b, 1}, {&c, 2}} {
		if err := GenerateCSV(x.w, 200, x.seed); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same seed gave different files")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds gave the same file")
	}
}
