package schemas

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRawBatchRoundTrip(t *testing.T) {
	in := &RawBatch{
		Upload: "u1", Partner: "acme", Mode: ModeFull, MappingVersion: 3, UploadSeq: 42, Batch: 7,
		ReceivedAt: time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC), Columns: []string{"id", "title", "price"},
		Rows: []RawRow{
			{Row: 1, Values: []string{"A1", "삼성 무선 이어폰", "12,900원"}},
			{Row: 2, Values: []string{"A2", "", ""}},
			{Row: 300000, Values: []string{"A3"}},
			{Row: 4, Values: []string{}},
			{Row: 5, Values: []string{"quote \" and\nnewline", strings.Repeat("x", 70000)}},
		},
		Rejections: []Issue{
			{Row: 3, Reason: "row has 4 fields, the header has 3"},
			{Row: 6, Reason: "line 7: a quoted field starts here and is never closed"},
		},
		RejectedRows: []RawRow{
			{Row: 3, Values: []string{"A3", "Kettle", "15000", "extra"}},
			{Row: 6, Values: []string{"A6", `"27인치 모니터`, "\uFFFD", ""}},
		},
	}
	data, err := MarshalRawBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	var out RawBatch
	if err := UnmarshalRawBatch(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip changed the batch:\n in %+v\nout %+v", in, &out)
	}
	// Rejected rows travel in the JSON header, apart from the binary rows.
	if header := rawHeader(t, data); !strings.Contains(header, `"rejected_rows":[{"r":3,`) {
		t.Errorf("header does not carry the rejected rows: %s", header)
	}
	end := &RawBatch{Upload: "u1", End: &IngestTotal{Rows: 10, Batches: 1}}
	data, _ = MarshalRawBatch(end)
	out = RawBatch{}
	if err := UnmarshalRawBatch(data, &out); err != nil || out.End == nil || out.End.Rows != 10 || len(out.Rows) != 0 {
		t.Errorf("end marker: %+v %v", out, err)
	}
}

// rawHeader returns the JSON header of an encoded raw batch.
func rawHeader(t *testing.T, data []byte) string {
	t.Helper()
	n, k := binary.Uvarint(data[2:])
	if k <= 0 || int(n) > len(data)-2-k {
		t.Fatalf("no header length in %q", data[:min(len(data), 16)])
	}
	return string(data[2+k : 2+k+int(n)])
}

func TestRawBatchRejectsDamage(t *testing.T) {
	data, _ := MarshalRawBatch(&RawBatch{Upload: "u1", Rows: []RawRow{{Row: 1, Values: []string{"abc", "def"}}}})
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"json":      []byte(`{"upload":"u1"}`),
		"truncated": data[:len(data)-2],
		"trailing":  append(append([]byte{}, data...), 0),
		"version":   append([]byte{'R', 9}, data[2:]...),
	} {
		var b RawBatch
		if err := UnmarshalRawBatch(bad, &b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func BenchmarkRawBatchDecode(b *testing.B) {
	rb := &RawBatch{Upload: "u1", Columns: make([]string, 12)}
	for i := 0; i < 1000; i++ {
		vals := make([]string, 12)
		for j := range vals {
			vals[j] = strings.Repeat("v", 25)
		}
		rb.Rows = append(rb.Rows, RawRow{Row: int64(i + 1), Values: vals})
	}
	data, _ := MarshalRawBatch(rb)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out RawBatch
		if err := UnmarshalRawBatch(data, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}
