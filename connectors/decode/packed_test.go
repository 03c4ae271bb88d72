package decode

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"feedline/schemas"
)

// gzipped packs s with gzip.
func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// zipEntry is one file of a test archive, in order.
type zipEntry struct{ name, body string }

// zipped packs files into a zip archive; map order is sorted by name, so
// use zippedInOrder when the order matters.
func zipped(t testing.TB, files map[string]string) []byte {
	var entries []zipEntry
	for _, name := range []string{"a/", "__MACOSX/._feed.csv", "[Content_Types].xml", "xl/workbook.xml"} {
		if body, ok := files[name]; ok {
			entries = append(entries, zipEntry{name, body})
			delete(files, name)
		}
	}
	for name, body := range files {
		entries = append(entries, zipEntry{name, body})
	}
	return zippedInOrder(t, entries...)
}

func zippedInOrder(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bzip2TSV is "id\ttitle\n1\tshoe\n" packed with bzip2 (the standard
// library reads bzip2 but cannot write it).
var bzip2TSV, _ = hex.DecodeString("425a6839314159265359d2dec805000004c9800030200006648c00200021a0d034201a69a2248379bc5048678bb9229c2848696f640280")

func TestPackedFilesAreUnpackedAsTheyAreRead(t *testing.T) {
	t.Parallel()
	csv := "id,title,price\n1,Shoe,100\n2,Bag,200\n"
	for _, c := range []struct {
		name, compression string
		file              []byte
	}{
		{"gzip", schemas.CompressionGzip, gzipped(csv)},
		{"gzip of two members", schemas.CompressionGzip, append(gzipped("id,title,price\n1,Shoe,100\n"), gzipped("2,Bag,200\n")...)},
		{"bzip2", schemas.CompressionBzip2, bzip2TSV},
		{"zip", schemas.CompressionZip, zipped(t, map[string]string{"feed.csv": csv})},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(bytes.NewReader(c.file), schemas.DecoderOptions{TempDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAll(t, d)
			if got.err != nil || len(got.rows) == 0 || len(got.rejects) > 0 {
				t.Fatalf("rows %v, rejects %v, err %v", got.rows, got.rejects, got.err)
			}
			if d.(*fileDecoder).Compression() != c.compression {
				t.Errorf("compression %q", d.(*fileDecoder).Compression())
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// Several feed files of one layout in an archive are one feed, numbered on;
// what archivers add is skipped; another layout is refused with the names.
func TestZipOfSeveralFiles(t *testing.T) {
	t.Parallel()
	archive := zippedInOrder(t,
		zipEntry{"export/", ""},
		zipEntry{"export/part-1.csv", "id,title,price\n1,Shoe,100\n2,Bag,200\n"},
		zipEntry{"__MACOSX/export/._part-1.csv", "\x00\x05\x16\x07junk"},
		zipEntry{"export/.DS_Store", "junk"},
		zipEntry{"export/part-2.csv", "id,title,price\n3,Hat,300\n4,\"Cap,50\n"},
	)
	d, err := Open(bytes.NewReader(archive), schemas.DecoderOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := decodeAll(t, d)
	if got.err != nil || len(got.rows) != 3 || got.rows[2].Row != 3 || got.rows[2].Values[1] != "Hat" || got.rejects[4] == "" {
		t.Fatalf("rows %v, rejects %v, err %v", got.rows, got.rejects, got.err)
	}

	nd := zippedInOrder(t, zipEntry{"a.ndjson", `{"id":"1","title":"x"}` + "\n"}, zipEntry{"b.ndjson", `{"id":"2","price":5}` + "\n"})
	d, err = Open(bytes.NewReader(nd), schemas.DecoderOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got = decodeAll(t, d)
	d.Close()
	if got.err != nil || strings.Join(got.cols, ",") != "id,title,price" || got.rows[1].Row != 2 || got.rows[1].Values[0] != "2" || got.rows[1].Values[2] != "5" {
		t.Fatalf("NDJSON parts: cols %v rows %v err %v", got.cols, got.rows, got.err)
	}

	for name, archive := range map[string][]byte{
		"other columns": zippedInOrder(t, zipEntry{"a.csv", "id,title\n1,x\n"}, zipEntry{"b.csv", "sku,name\n2,y\n"}),
		"other format":  zippedInOrder(t, zipEntry{"a.csv", "id,title\n1,x\n"}, zipEntry{"b.ndjson", `{"id":"2"}` + "\n"}),
	} {
		d, err := Open(bytes.NewReader(archive), schemas.DecoderOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		got := decodeAll(t, d)
		d.Close()
		if got.err == nil || !strings.Contains(got.err.Error(), "b.") || !strings.Contains(got.err.Error(), "a.csv") {
			t.Errorf("%s: err %v, want one naming both files", name, got.err)
		}
	}
	if _, err := Open(bytes.NewReader(zippedInOrder(t, zipEntry{"empty/", ""})), schemas.DecoderOptions{TempDir: t.TempDir()}); !errors.Is(err, ErrEmpty) {
		t.Errorf("archive without files: %v", err)
	}
	if _, err := Open(bytes.NewReader(zipped(t, map[string]string{"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<w/>"})), schemas.DecoderOptions{TempDir: t.TempDir()}); !errors.Is(err, ErrBinary) ||
		!strings.Contains(err.Error(), "Excel") {
		t.Errorf("an Excel workbook: %v", err)
	}
}

// A bomb, an archive or a stream past the limits is refused with the
// reason; a damaged stream fails as damaged.
func TestPackedFilesPastTheLimits(t *testing.T) {
	t.Parallel()
	var big bytes.Buffer
	big.WriteString("id,title\n")
	line := "1," + strings.Repeat("a", 4000) + "\n"
	for big.Len() < 100<<20 {
		big.WriteString(line)
	}
	bomb := gzipped(big.String()) // 100 MiB of one repeated line: a ratio of about a thousand
	d, err := Open(bytes.NewReader(bomb), schemas.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeAll(t, d)
	d.Close()
	if !errors.Is(got.err, ErrTooLarge) || !strings.Contains(got.err.Error(), "zip bomb") {
		t.Errorf("gzip bomb: %v after %d rows", got.err, len(got.rows))
	}
	zbomb := zipped(t, map[string]string{"feed.csv": big.String()})
	if _, err := Open(bytes.NewReader(zbomb), schemas.DecoderOptions{TempDir: t.TempDir()}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "feed.csv") {
		t.Errorf("zip bomb: %v", err)
	}
	small := schemas.DecoderOptions{TempDir: t.TempDir(), MaxBytes: 1 << 20}
	if _, err := Open(bytes.NewReader(zbomb), small); !errors.Is(err, ErrTooLarge) {
		t.Errorf("zip over the size limit: %v", err)
	}
	d, err = Open(bytes.NewReader(gzipped(big.String()[:4<<20])), schemas.DecoderOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got = decodeAll(t, d)
	d.Close()
	if !errors.Is(got.err, ErrTooLarge) || !strings.Contains(got.err.Error(), "1.0 MiB") {
		t.Errorf("gzip over the size limit: %v", got.err)
	}
	var long bytes.Buffer
	long.WriteString("id,title\n")
	for i := range 200_000 {
		fmt.Fprintf(&long, "%d,item %d\n", i, i*7919)
	}
	cut := gzipped(long.String())
	d, err = Open(bytes.NewReader(cut[:len(cut)/2]), schemas.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got = decodeAll(t, d)
	d.Close()
	if !errors.Is(got.err, ErrCorrupt) || len(got.rows) == 0 {
		t.Errorf("gzip cut short: %v after %d rows", got.err, len(got.rows))
	}
	if _, err := Open(bytes.NewReader(cut[:40]), schemas.DecoderOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("gzip cut inside its head: %v", err)
	}
}
