package parquetsink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"feedline/schemas"
)

// day1 and day2 are consecutive UTC days. lateDay1 is 23:30 on day 1 in
// New York, which is already day 2 in UTC: it must land in day 2.
var (
	newYork  = time.FixedZone("EST", -5*3600)
	day1     = time.Date(2025, 3, 1, 10, 15, 30, 123_456_789, time.UTC)
	day2     = time.Date(2025, 3, 2, 8, 0, 0, 987_654_321, time.UTC)
	lateDay1 = time.Date(2025, 3, 1, 23, 30, 0, 555_000_001, newYork)
)

func productChanges(n int, at ...time.Time) []schemas.ProductChangeRow {
	rows := make([]schemas.ProductChangeRow, n)
	for i := range rows {
		rows[i] = schemas.ProductChangeRow{
			EventID:      fmt.Sprintf("evt-%06d", i),
			ProductID:    fmt.Sprintf("acme:sku-%d", i),
			Partner:      "acme",
			SKU:          fmt.Sprintf("sku-%d", i),
			UploadID:     "01JNUPLOAD",
			Kind:         string(schemas.ChangeUpsert),
			Version:      1<<63 + uint64(i), // above MaxInt64: must stay unsigned
			Title:        fmt.Sprintf("Wanderschuh Größe %d – leicht", 38+i%10),
			Brand:        "Acme",
			Category:     "Schuhe > Wandern",
			Price:        int64(4999 + i),
			SalePrice:    int64(i % 2 * 3999),
			Currency:     "EUR",
			Availability: "in_stock",
			ChangedAt:    at[i%len(at)].Add(time.Duration(i) * time.Millisecond),
		}
	}
	return rows
}

func sampleBatch() schemas.AnalyticsBatch {
	return schemas.AnalyticsBatch{
		ProductChanges: productChanges(5, day1, day2, lateDay1),
		PriceHistory: []schemas.PriceHistoryRow{
			{EventID: "p1", ProductID: "acme:1", Partner: "acme", UploadID: "u1", Currency: "EUR", OldPrice: 5000, NewPrice: 4500, Version: 7, ChangedAt: day2},
			{EventID: "p2", ProductID: "acme:2", Partner: "acme", UploadID: "u1", Currency: "KRW", OldPrice: 19000, NewPrice: 21000, Version: 8, ChangedAt: day1},
			{EventID: "p3", ProductID: "acme:3", Partner: "acme", UploadID: "u1", Currency: "EUR", OldPrice: 100, NewPrice: 0, Version: 9, ChangedAt: lateDay1},
		},
		UploadRuns: []schemas.UploadRunRow{
			{UploadID: "u1", Partner: "acme", Mode: schemas.ModeFull, Format: schemas.FormatCSV, MappingVersion: 3,
				ReceivedAt: day1.Add(-time.Hour), FinishedAt: day1, RowsRead: 1000, Accepted: 990, Unchanged: 5, Rejected: 5, Deleted: 12},
			{UploadID: "u2", Partner: "bolt", Mode: schemas.ModeDelta, Format: schemas.FormatNaverEP, MappingVersion: -1,
				ReceivedAt: day1, FinishedAt: lateDay1, RowsRead: 10, Accepted: 0, Unchanged: 0, Rejected: 10, Deleted: 0},
		},
		SearchQueries: []schemas.SearchQueryRow{
			{EventID: "q1", Query: "wanderschuh", Filters: `{"brand":["Acme"]}`, Sort: "price_asc", Results: 42, TookMs: 3.25, At: day1},
			{EventID: "q2", Query: "운동화", Filters: "", Sort: "", Results: 0, TookMs: 0.5, At: day2},
		},
		FeedEvents: []schemas.FeedEventRow{
			{EventID: "f1", Kind: schemas.FeedEventFollow, UserID: "u7", TargetKind: "shop", TargetID: "acme", At: day2},
			{EventID: "f2", Kind: schemas.FeedEventFeedRead, UserID: "u7", Items: 20, At: day1},
		},
	}
}

func openSink(t testing.TB, dir string) *Sink {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dayOf is the partition a row belongs in.
func dayOf(t time.Time) string { return t.UTC().Format(dayLayout) }

// inFileOrder is what ReadTable returns after one Write of rows: days
// ascending, the batch's order within a day.
func inFileOrder[T any](rows []T, at func(T) time.Time) []T {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b T) int { return strings.Compare(dayOf(at(a)), dayOf(at(b))) })
	return out
}

// sameRows compares rows field by field; times must be equal at millisecond
// precision and come back in UTC.
func sameRows[T any](t *testing.T, table string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: read %d rows, want %d", table, len(got), len(want))
	}
	for i := range want {
		g, w := reflect.ValueOf(got[i]), reflect.ValueOf(want[i])
		for f := range w.NumField() {
			name := w.Type().Field(f).Name
			gf, wf := g.Field(f).Interface(), w.Field(f).Interface()
			if wt, ok := wf.(time.Time); ok {
				gt := gf.(time.Time)
				if !gt.Equal(wt.Truncate(time.Millisecond)) || gt.Location() != time.UTC {
					t.Errorf("%s row %d %s = %v, want %v in UTC", table, i, name, gt, wt.Truncate(time.Millisecond).UTC())
				}
				continue
			}
			if !reflect.DeepEqual(gf, wf) {
				t.Errorf("%s row %d %s = %#v, want %#v", table, i, name, gf, wf)
			}
		}
	}
}

// filesByDay maps each day directory of a table to its complete files.
func filesByDay(t *testing.T, dir, table string) map[string][]string {
	t.Helper()
	paths, err := tableFiles(dir, table)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string)
	for _, p := range paths {
		day := strings.TrimPrefix(filepath.Base(filepath.Dir(p)), partitionPrefix)
		out[day] = append(out[day], p)
	}
	return out
}

// allFiles lists every regular file under dir, relative to it.
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestWriteReadBackEveryTableAcrossTwoDays(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	b := sampleBatch()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}

	pc, err := ReadTable[schemas.ProductChangeRow](dir, schemas.TableProductChanges)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableProductChanges, pc, inFileOrder(b.ProductChanges, func(r schemas.ProductChangeRow) time.Time { return r.ChangedAt }))

	ph, err := ReadTable[schemas.PriceHistoryRow](dir, schemas.TablePriceHistory)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TablePriceHistory, ph, inFileOrder(b.PriceHistory, func(r schemas.PriceHistoryRow) time.Time { return r.ChangedAt }))

	ur, err := ReadTable[schemas.UploadRunRow](dir, schemas.TableUploadRuns)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableUploadRuns, ur, inFileOrder(b.UploadRuns, func(r schemas.UploadRunRow) time.Time { return r.FinishedAt }))

	sq, err := ReadTable[schemas.SearchQueryRow](dir, schemas.TableSearchQueries)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableSearchQueries, sq, inFileOrder(b.SearchQueries, func(r schemas.SearchQueryRow) time.Time { return r.At }))

	fe, err := ReadTable[schemas.FeedEventRow](dir, schemas.TableFeedEvents)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableFeedEvents, fe, inFileOrder(b.FeedEvents, func(r schemas.FeedEventRow) time.Time { return r.At }))
}

func TestFilesLandInTheirDayPartition(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	if err := s.Write(context.Background(), sampleBatch()); err != nil {
		t.Fatal(err)
	}
	want := []string{"2025-03-01", "2025-03-02"}
	// Each table's file for a day holds exactly the rows of that UTC day.
	checkDays := func(table string, times func(path string) []time.Time) {
		t.Helper()
		byDay := filesByDay(t, dir, table)
		days := slices.Sorted(func(yield func(string) bool) {
			for d := range byDay {
				if !yield(d) {
					return
				}
			}
		})
		if !slices.Equal(days, want) {
			t.Fatalf("%s: partitions %v, want %v", table, days, want)
		}
		for day, paths := range byDay {
			if len(paths) != 1 {
				t.Errorf("%s %s: %d files after one Write, want 1", table, day, len(paths))
			}
			for _, p := range paths {
				if !strings.HasPrefix(filepath.Base(p), filePrefix) {
					t.Errorf("%s: file name %s", table, p)
				}
				for _, at := range times(p) {
					if dayOf(at) != day {
						t.Errorf("%s: row at %v is in partition %s", table, at, day)
					}
				}
			}
		}
	}
	checkDays(schemas.TableProductChanges, func(p string) (ts []time.Time) {
		for _, r := range readFile[schemas.ProductChangeRow](t, p) {
			ts = append(ts, r.ChangedAt)
		}
		return ts
	})
	checkDays(schemas.TablePriceHistory, func(p string) (ts []time.Time) {
		for _, r := range readFile[schemas.PriceHistoryRow](t, p) {
			ts = append(ts, r.ChangedAt)
		}
		return ts
	})
	checkDays(schemas.TableUploadRuns, func(p string) (ts []time.Time) {
		for _, r := range readFile[schemas.UploadRunRow](t, p) {
			ts = append(ts, r.FinishedAt)
		}
		return ts
	})
	checkDays(schemas.TableSearchQueries, func(p string) (ts []time.Time) {
		for _, r := range readFile[schemas.SearchQueryRow](t, p) {
			ts = append(ts, r.At)
		}
		return ts
	})

	for _, f := range allFiles(t, dir) {
		if !strings.HasSuffix(f, fileSuffix) || strings.HasPrefix(filepath.Base(f), ".") {
			t.Errorf("unexpected file %s left after Write", f)
		}
	}
}

func readFile[T any](t *testing.T, path string) []T {
	t.Helper()
	rows, err := appendFile[T](nil, path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestEachWriteAddsOneFilePerTableDay(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	rows := productChanges(3000, day1) // one day, several thousand rows: still one file
	for range 2 {
		if err := s.Write(context.Background(), schemas.AnalyticsBatch{ProductChanges: rows}); err != nil {
			t.Fatal(err)
		}
	}
	byDay := filesByDay(t, dir, schemas.TableProductChanges)
	if len(byDay) != 1 || len(byDay[dayOf(day1)]) != 2 {
		t.Fatalf("files by day = %v, want 2 files in %s", byDay, dayOf(day1))
	}
	if got := allFiles(t, dir); len(got) != 2 {
		t.Errorf("files = %v, want only the 2 product_changes files", got)
	}
}

func TestEmptyBatchWritesNoFiles(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	if err := s.Write(context.Background(), schemas.AnalyticsBatch{ProductChanges: []schemas.ProductChangeRow{}}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("empty batch created %v", entries)
	}
}

func TestCanceledContextStartsNoFile(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, sampleBatch())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with canceled context: %v, want context.Canceled", err)
	}
	if files := allFiles(t, dir); len(files) != 0 {
		t.Errorf("canceled Write left %v", files)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), sampleBatch()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
}

func TestOpenRemovesTempLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	b := schemas.AnalyticsBatch{ProductChanges: productChanges(4, day1)}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// What a crash mid-write leaves: a half-written temp file, here next to a
	// complete file and in a partition of its own.
	partition := filepath.Join(dir, schemas.TableProductChanges, partitionPrefix+dayOf(day1))
	leftovers := []string{
		filepath.Join(partition, tempPrefix+"01JNCRASH-123"+tempSuffix),
		filepath.Join(dir, schemas.TableSearchQueries, partitionPrefix+"2025-03-05", tempPrefix+"01JNCRASH-456"+tempSuffix),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PAR1 truncated"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file that is not ours stays.
	notes := filepath.Join(dir, "README.txt")
	if err := os.WriteFile(notes, []byte("analytics"), 0o644); err != nil {
		t.Fatal(err)
	}

	openSink(t, dir)
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("leftover %s still there after Open (stat: %v)", p, err)
		}
	}
	if _, err := os.Stat(notes); err != nil {
		t.Errorf("Open removed a file it does not own: %v", err)
	}
	rows, err := ReadTable[schemas.ProductChangeRow](dir, schemas.TableProductChanges)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableProductChanges, rows, b.ProductChanges)
}

// column describes one leaf of a file's schema as the footer records it.
type column struct {
	name, physical, logical string
}

func TestFileSchemaTypes(t *testing.T) {
	str := func(name string) column { return column{name, "BYTE_ARRAY", "STRING"} }
	i64 := func(name string) column { return column{name, "INT64", "INT(64,true)"} }
	ts := func(name string) column { return column{name, "INT64", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"} }
	want := map[string][]column{
		schemas.TableProductChanges: {
			str("event_id"), str("product_id"), str("partner"), str("sku"), str("upload_id"), str("kind"),
			{"version", "INT64", "INT(64,false)"},
			str("title"), str("brand"), str("category"), i64("price"), i64("sale_price"), str("currency"), str("availability"),
			ts("changed_at"),
		},
		schemas.TablePriceHistory: {
			str("event_id"), str("product_id"), str("partner"), str("upload_id"), str("currency"),
			i64("old_price"), i64("new_price"), {"version", "INT64", "INT(64,false)"}, ts("changed_at"),
		},
		schemas.TableUploadRuns: {
			str("upload_id"), str("partner"), str("mode"), str("format"), {"mapping_version", "INT32", "INT(32,true)"},
			ts("received_at"), ts("finished_at"), i64("rows_read"), i64("accepted"), i64("unchanged"), i64("rejected"), i64("deleted"),
		},
		schemas.TableSearchQueries: {
			str("event_id"), str("query"), str("filters"), str("sort"), i64("results"), {"took_ms", "DOUBLE", ""}, ts("at"),
		},
	}

	dir := t.TempDir()
	s := openSink(t, dir)
	if err := s.Write(context.Background(), sampleBatch()); err != nil {
		t.Fatal(err)
	}
	for table, cols := range want {
		paths, err := tableFiles(dir, table)
		if err != nil || len(paths) == 0 {
			t.Fatalf("%s: no files (%v)", table, err)
		}
		meta := fileMetadata(t, paths[0])
		if meta.Schema[0].Name != table {
			t.Errorf("%s: schema root named %q", table, meta.Schema[0].Name)
		}
		var got []column
		for _, e := range meta.Schema[1:] {
			got = append(got, column{e.Name, e.Type.V.String(), e.LogicalType.String()})
			if rep, _ := e.RepetitionType.Get(); rep != format.Required {
				t.Errorf("%s.%s: repetition %v, want REQUIRED", table, e.Name, rep)
			}
			// Older readers only look at the converted type.
			if e.LogicalType.String() == "STRING" {
				if ct, ok := e.ConvertedType.Get(); !ok || ct != deprecated.UTF8 {
					t.Errorf("%s.%s: converted type %v, want UTF8", table, e.Name, ct)
				}
			}
		}
		if !slices.Equal(got, cols) {
			t.Errorf("%s schema:\n got %v\nwant %v", table, got, cols)
		}
		for _, rg := range meta.RowGroups {
			for _, c := range rg.Columns {
				if c.MetaData.Codec != format.Zstd {
					t.Errorf("%s.%s: codec %v, want ZSTD", table, c.MetaData.PathInSchema, c.MetaData.Codec)
				}
			}
		}
	}
}

func fileMetadata(t *testing.T, path string) *format.FileMetaData {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	return pf.Metadata()
}

func TestManyWritesReadBackInWriteOrder(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	days := []time.Time{day1, day2, day2.AddDate(0, 0, 1)}
	var want []schemas.SearchQueryRow
	byDay := make(map[string][]schemas.SearchQueryRow)
	for w := range 30 {
		var rows []schemas.SearchQueryRow
		for i := range 7 {
			at := days[(w+i)%len(days)].Add(time.Duration(w*10+i) * time.Second)
			r := schemas.SearchQueryRow{EventID: fmt.Sprintf("q-%d-%d", w, i), Query: "q", Results: int64(i), TookMs: float64(w), At: at}
			rows = append(rows, r)
			byDay[dayOf(at)] = append(byDay[dayOf(at)], r)
		}
		if err := s.Write(context.Background(), schemas.AnalyticsBatch{SearchQueries: rows}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range days {
		want = append(want, byDay[dayOf(d)]...)
	}
	got, err := ReadTable[schemas.SearchQueryRow](dir, schemas.TableSearchQueries)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableSearchQueries, got, want)
	files := filesByDay(t, dir, schemas.TableSearchQueries)
	for _, d := range days {
		if n := len(files[dayOf(d)]); n != 30 {
			t.Errorf("%s: %d files, want 30 (one per Write)", dayOf(d), n)
		}
	}
}

func TestConcurrentWritesKeepEveryRow(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	const writers, writes, perWrite = 4, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for w := range writers {
		wg.Go(func() {
			for n := range writes {
				rows := productChanges(perWrite, day1, day2)
				for i := range rows {
					rows[i].EventID = fmt.Sprintf("w%d-n%d-%d", w, n, i)
				}
				errs <- s.Write(context.Background(), schemas.AnalyticsBatch{ProductChanges: rows})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadTable[schemas.ProductChangeRow](dir, schemas.TableProductChanges)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if seen[r.EventID] {
			t.Fatalf("row %s read twice", r.EventID)
		}
		seen[r.EventID] = true
	}
	if len(seen) != writers*writes*perWrite {
		t.Errorf("read %d distinct rows, want %d", len(seen), writers*writes*perWrite)
	}
}

func TestReadTableRejectsMismatchedRowType(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	if err := s.Write(context.Background(), sampleBatch()); err != nil {
		t.Fatal(err)
	}
	type wrong struct {
		EventID int64 `parquet:"event_id"`
	}
	if _, err := ReadTable[wrong](dir, schemas.TableSearchQueries); err == nil {
		t.Error("reading string event_id into int64: no error")
	}
}

func TestRowGroupLimitSplitsLargeWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithRowGroupRows(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows := productChanges(2500, day1)
	if err := s.Write(context.Background(), schemas.AnalyticsBatch{ProductChanges: rows}); err != nil {
		t.Fatal(err)
	}
	paths, err := tableFiles(dir, schemas.TableProductChanges)
	if err != nil || len(paths) != 1 {
		t.Fatalf("files %v (%v), want 1", paths, err)
	}
	if n := len(fileMetadata(t, paths[0]).RowGroups); n != 3 {
		t.Errorf("%d row groups, want 3 for 2500 rows at 1000 per group", n)
	}
	got, err := ReadTable[schemas.ProductChangeRow](dir, schemas.TableProductChanges)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, schemas.TableProductChanges, got, rows)
}

func TestWriteErrorLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir)
	// A regular file where the day's partition directory should be.
	table := filepath.Join(dir, schemas.TablePriceHistory)
	if err := os.MkdirAll(table, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(table, partitionPrefix+dayOf(day1)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := schemas.AnalyticsBatch{PriceHistory: sampleBatch().PriceHistory[1:2]}
	if err := s.Write(context.Background(), b); err == nil {
		t.Fatal("Write into a blocked partition: no error")
	}
	if files, _ := tableFiles(dir, schemas.TablePriceHistory); len(files) != 0 {
		t.Errorf("failed Write left %v", files)
	}
}
