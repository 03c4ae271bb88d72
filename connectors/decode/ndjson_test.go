package decode

import (
	"reflect"
	"strings"
	"testing"

	"feedline/schemas"
)

func TestNDJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		input       string
		opt         schemas.DecoderOptions
		wantCols    []string
		wantRows    [][]string // padded to the final columns
		wantLens    []int      // len(Values) of each row; nil = not checked
		wantNumbers []int64    // nil = 1..n
		wantRejects map[int64]string
	}{
		{
			name:     "nested objects become dotted keys",
			input:    `{"id":"1","offer":{"price":12.50,"currency":"KRW","ship":{"free":true}},"title":"운동화"}` + "\n",
			wantCols: []string{"id", "offer.price", "offer.currency", "offer.ship.free", "title"},
			wantRows: [][]string{{"1", "12.50", "KRW", "true", "운동화"}},
		},
		{
			name:     "scalars render as written",
			input:    `{"a":1e3,"b":-0,"c":12345678901234567890123,"d":0.10,"e":false,"f":null,"g":"","h":1.5E-7}` + "\n",
			wantCols: []string{"a", "b", "c", "d", "e", "f", "g", "h"},
			wantRows: [][]string{{"1e3", "-0", "12345678901234567890123", "0.10", "false", "", "", "1.5E-7"}},
		},
		{
			name:     "arrays of scalars join with newlines",
			input:    `{"images":["https://x/1.jpg", "https://x/2.jpg",null,"https://x/3.jpg"],"sizes":[250, 260],"empty":[]}` + "\n",
			wantCols: []string{"images", "sizes", "empty"},
			wantRows: [][]string{{"https://x/1.jpg\nhttps://x/2.jpg\nhttps://x/3.jpg", "250\n260", ""}},
		},
		{
			name:     "arrays holding objects stay compact JSON",
			input:    `{"variants": [ {"sku": "a b", "size": 250}, {"sku":"c"} ],"grid":[[1,2],[3]]}` + "\n",
			wantCols: []string{"variants", "grid"},
			wantRows: [][]string{{`[{"sku":"a b","size":250},{"sku":"c"}]`, `[[1,2],[3]]`}},
		},
		{
			name:     "escapes",
			input:    `{"t":"say \"hi\"\\ \/ \u00e9 \ud83d\ude00 \ud800 tab\there\nnext","k\u0065y":1}` + "\n",
			wantCols: []string{"t", "key"},
			wantRows: [][]string{{"say \"hi\"\\ / é 😀 \uFFFD tab\there\nnext", "1"}},
		},
		{
			name:     "columns grow and never reorder",
			input:    `{"id":"1","title":"a"}` + "\n" + `{"price":3,"id":"2"}` + "\n" + `{"id":"3"}` + "\n",
			wantCols: []string{"id", "title", "price"},
			wantRows: [][]string{{"1", "a", ""}, {"2", "", "3"}, {"3", "", ""}},
			wantLens: []int{2, 3, 3},
		},
		{
			name:     "last duplicate key wins",
			input:    `{"a":1,"a":2,"b":{"c":1},"b.c":5}` + "\n",
			wantCols: []string{"a", "b.c"},
			wantRows: [][]string{{"2", "5"}},
		},
		{
			name:     "empty objects add no column",
			input:    `{"id":"1","meta":{}}` + "\n" + `{}` + "\n",
			wantCols: []string{"id"},
			wantRows: [][]string{{"1"}, {""}},
		},
		{
			name:        "bad lines are rejected, decoding goes on",
			input:       `{"id":"1"}` + "\nnot json\n[1,2]\n\"text\"\n" + `{"id":` + "\n" + `{"id":"6"}` + "\n",
			wantCols:    []string{"id"},
			wantRows:    [][]string{{"1"}, {"6"}},
			wantNumbers: []int64{1, 6},
			wantRejects: map[int64]string{
				2: "not valid JSON: invalid character 'o' in literal null",
				3: "JSON array, not an object",
				4: "JSON string, not an object",
				5: "not valid JSON: unexpected end of JSON input",
			},
		},
		{
			name:        "blank lines take no row number; bom and crlf",
			input:       "\ufeff" + `{"id":"1"}` + "\r\n\r\n   \n" + `{"id":"2"}` + "\r\n",
			wantCols:    []string{"id"},
			wantRows:    [][]string{{"1"}, {"2"}},
			wantNumbers: []int64{1, 2},
		},
		{
			name:        "invalid utf-8 in a utf-8 file rejects the line",
			input:       "{\"id\":\"caf\xe9\"}\n{\"id\":\"2\", \"title\": \"나이키 운동화\"}\n",
			wantCols:    []string{"id", "title"},
			wantRows:    [][]string{{"2", "나이키 운동화"}},
			wantNumbers: []int64{2},
			wantRejects: map[int64]string{1: "not valid UTF-8"},
		},
		{
			name:        "lines over the limit are rejected",
			opt:         schemas.DecoderOptions{MaxRowBytes: 20},
			input:       `{"id":"12345678901"}` + "\n" + `{"id":"123456789012"}` + "\r\n" + `{"id":"3"}`,
			wantCols:    []string{"id"},
			wantRows:    [][]string{{"12345678901"}, {"3"}},
			wantNumbers: []int64{1, 3},
			wantRejects: map[int64]string{2: "row is 21 bytes, the limit is 20"},
		},
		{
			name:     "lines longer than the read buffer",
			input:    `{"d":"` + strings.Repeat("설명", 40_000) + `","n":1}` + "\n",
			wantCols: []string{"d", "n"},
			wantRows: [][]string{{strings.Repeat("설명", 40_000), "1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openString(t, tt.input, tt.opt)
			if d.Format() != "ndjson" {
				t.Fatalf("Format() = %q", d.Format())
			}
			got := decodeAll(t, d)
			if got.err != nil {
				t.Fatalf("fatal error: %v", got.err)
			}
			if !reflect.DeepEqual(got.cols, tt.wantCols) {
				t.Errorf("columns = %q, want %q", got.cols, tt.wantCols)
			}
			if vals := got.values(); !reflect.DeepEqual(vals, tt.wantRows) {
				t.Errorf("rows = %q, want %q", vals, tt.wantRows)
			}
			if tt.wantLens != nil {
				var lens []int
				for _, r := range got.rows {
					lens = append(lens, len(r.Values))
				}
				if !reflect.DeepEqual(lens, tt.wantLens) {
					t.Errorf("value counts = %v, want %v", lens, tt.wantLens)
				}
			}
			want := tt.wantNumbers
			if want == nil {
				for i := range tt.wantRows {
					want = append(want, int64(i+1))
				}
			}
			if nums := got.rowNumbers(); !reflect.DeepEqual(nums, want) {
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
