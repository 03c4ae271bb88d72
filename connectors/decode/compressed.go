package decode

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"feedline/schemas"
)

// Limits on what an upload may unpack to, when the options leave them 0.
const (
	DefaultMaxBytes     = 4 << 30 // 4 GiB, unpacked or spooled
	DefaultMaxExpansion = 200     // unpacked bytes per packed byte
	// expansionFloor is how much a file may unpack to before its ratio
	// counts: small files of repeated values compress far beyond any bomb
	// threshold and are harmless.
	expansionFloor = 64 << 20
)

// compressionOf names the compression whose magic bytes start head, or "".
func compressionOf(head []byte) string {
	switch {
	case len(head) >= 3 && head[0] == 0x1F && head[1] == 0x8B && head[2] == 8:
		return schemas.CompressionGzip
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' &&
		(bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) || bytes.Equal(head[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})):
		return schemas.CompressionBzip2
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return schemas.CompressionZip
	}
	return ""
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// unpackLimit fails an unpacked stream that grows past the size limit, or
// past maxExpansion times the packed bytes read so far (a zip bomb), with a
// reason the partner can act on.
type unpackLimit struct {
	r        io.Reader
	packed   func() int64
	n        int64
	max      int64
	ratio    int64
	what     string
	exceeded error
}

func (u *unpackLimit) Read(p []byte) (int, error) {
	if u.exceeded != nil {
		return 0, u.exceeded
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	switch {
	case u.n > u.max:
		u.exceeded = fmt.Errorf("%w: %s unpacks to more than %s, the most feedline reads; split the feed into smaller files", ErrTooLarge, u.what, sizeText(u.max))
	case u.n > expansionFloor && u.n > u.ratio*max(u.packed(), 1):
		u.exceeded = fmt.Errorf("%w: %s unpacks to more than %d times its size (%s from %s), which only a zip bomb does; upload the feed itself",
			ErrTooLarge, u.what, u.ratio, sizeText(u.n), sizeText(u.packed()))
	}
	if u.exceeded != nil {
		return 0, u.exceeded
	}
	return n, err
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// openCompressed opens a gzip or bzip2 stream: its content is unpacked as
// it is read, never whole, and decoded as the file it holds.
func openCompressed(br *bufio.Reader, opt schemas.DecoderOptions, compression string) (schemas.RowDecoder, error) {
	packed := &countingReader{r: br}
	var inner io.Reader
	var closer io.Closer
	switch compression {
	case schemas.CompressionGzip:
		zr, err := gzip.NewReader(packed)
		if err != nil {
			return nil, fmt.Errorf("%w: the gzip header cannot be read (%v); compress the file again", ErrCorrupt, err)
		}
		inner, closer = zr, zr
	case schemas.CompressionBzip2:
		inner = bzip2.NewReader(packed)
	}
	inner = &corruptPacking{r: &unpackLimit{r: inner, packed: func() int64 { return packed.n }, max: opt.MaxBytes, ratio: int64(opt.MaxExpansion), what: "the " + compression + " file"}, what: compression}
	d, err := openPlain(inner, opt, compression)
	if err != nil {
		if closer != nil {
			_ = closer.Close()
		}
		return nil, err
	}
	if closer != nil {
		d.closers = append(d.closers, closer)
	}
	return d, nil
}

// corruptPacking says that a packed stream is damaged, not its content.
type corruptPacking struct {
	r    io.Reader
	what string
}

func (c *corruptPacking) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrTooLarge) {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, new(flate.CorruptInputError)) ||
			strings.Contains(err.Error(), "bzip2 data invalid") {
			err = fmt.Errorf("%w: the %s data is damaged or cut short (%v); compress and upload the file again", ErrCorrupt, c.what, err)
		}
	}
	return n, err
}

// feedEntry reports whether a zip entry is a feed file, not a folder or
// what archivers add (macOS resource forks, hidden files, thumbnails).
func feedEntry(name string, dir bool) bool {
	base := path.Base(name)
	return !dir && !strings.HasSuffix(name, "/") && !strings.HasPrefix(name, "__MACOSX/") && !strings.HasPrefix(base, ".") &&
		!strings.EqualFold(base, "Thumbs.db") && !strings.EqualFold(base, "desktop.ini")
}

// excelEntry reports whether a zip entry shows the archive is an Office
// document (an Excel workbook is a zip of XML parts).
func excelEntry(name string) bool {
	return name == "[Content_Types].xml" || strings.HasPrefix(name, "xl/") || strings.HasPrefix(name, "docProps/")
}

var errExcel = fmt.Errorf("%w: it is an Excel workbook; export the sheet as CSV (UTF-8) and upload that", ErrBinary)

// openZip spools a zip archive to a temporary file (the central directory
// is at its end), checks what it declares against the limits, and decodes
// its feed files one after the other as one file: the same layout in each,
// rows numbered on across them.
func openZip(br *bufio.Reader, opt schemas.DecoderOptions) (_ schemas.RowDecoder, err error) {
	spool, err := os.CreateTemp(opt.TempDir, "feedline-upload-*.zip")
	if err != nil {
		return nil, fmt.Errorf("spooling the zip archive: %w", err)
	}
	defer func() {
		if err != nil {
			_ = spool.Close()
			_ = os.Remove(spool.Name())
		}
	}()
	size, err := io.Copy(spool, io.LimitReader(br, opt.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("spooling the zip archive: %w", err)
	}
	if size > opt.MaxBytes {
		return nil, fmt.Errorf("%w: the zip archive is larger than %s, the most feedline reads; split the feed into smaller files", ErrTooLarge, sizeText(opt.MaxBytes))
	}
	zr, err := zip.NewReader(spool, size)
	if err != nil {
		return nil, fmt.Errorf("%w: the zip archive cannot be read (%v); check that the upload is complete, or create the archive again", ErrCorrupt, err)
	}
	var entries []*zip.File
	var declared uint64
	for _, f := range zr.File {
		if excelEntry(f.Name) {
			return nil, errExcel
		}
		if !feedEntry(f.Name, f.FileInfo().IsDir()) {
			continue
		}
		if f.Method != zip.Store && f.Method != zip.Deflate {
			return nil, fmt.Errorf("%w: %s in the zip archive is compressed with method %d; use deflate (what every archiver writes by default)", ErrUnsupported, f.Name, f.Method)
		}
		declared += f.UncompressedSize64
		if declared > uint64(opt.MaxBytes) {
			return nil, fmt.Errorf("%w: the zip archive says it unpacks to more than %s, the most feedline reads; split the feed into smaller files", ErrTooLarge, sizeText(opt.MaxBytes))
		}
		if f.UncompressedSize64 > expansionFloor && f.UncompressedSize64 > uint64(opt.MaxExpansion)*max(f.CompressedSize64, 1) {
			return nil, fmt.Errorf("%w: %s in the zip archive unpacks to more than %d times its size, which only a zip bomb does; upload the feed itself",
				ErrTooLarge, f.Name, opt.MaxExpansion)
		}
		entries = append(entries, f)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: the zip archive holds no file; put the feed file in it", ErrEmpty)
	}
	z := &zipFeed{spool: spool, entries: entries, opt: opt}
	if err := z.openEntry(0); err != nil {
		return nil, err
	}
	return &fileDecoder{RowDecoder: z, compression: schemas.CompressionZip, charset: z.charset}, nil
}

// zipFeed decodes the feed files of an archive as one: the first file's
// format and columns rule, every later file must have the same (NDJSON and
// XML columns, found as rows are read, are joined), and row numbers go on
// from file to file.
type zipFeed struct {
	spool   *os.File
	entries []*zip.File
	opt     schemas.DecoderOptions
	at      int // the entry being read
	cur     *fileDecoder
	rc      io.ReadCloser
	format  string
	cols    []string
	index   []int // position in cols of each column of the current entry
	offset  int64 // rows of the entries before the current one
	last    int64 // the last row number returned
	err     error
}

func (z *zipFeed) openEntry(i int) error {
	f := z.entries[i]
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%w: %s in the zip archive cannot be read (%v); create the archive again", ErrCorrupt, f.Name, err)
	}
	limited := &corruptPacking{r: &unpackLimit{r: rc, packed: func() int64 { return int64(f.CompressedSize64) }, max: z.opt.MaxBytes, ratio: int64(z.opt.MaxExpansion), what: f.Name + " in the zip archive"}, what: "zip"}
	opt := z.opt
	if i > 0 {
		opt.Format = z.format
	}
	d, err := openPlain(limited, opt, schemas.CompressionZip)
	if err != nil {
		_ = rc.Close()
		if i > 0 && errors.Is(err, ErrFormatMismatch) {
			return fmt.Errorf("%w: %s in the zip archive is not %s like %s; put one feed layout in an archive", ErrFormatMismatch, f.Name, z.format, z.entries[0].Name)
		}
		return fmt.Errorf("%s in the zip archive: %w", f.Name, err)
	}
	if i == 0 {
		z.format = d.Format()
	} else if !schemas.ColumnsGrow(z.format) && !sameColumns(d.Columns(), z.cols) {
		_ = d.Close()
		_ = rc.Close()
		return fmt.Errorf("%w: %s in the zip archive has other columns than %s (%s instead of %s); put files of one layout in an archive",
			ErrBadHeader, f.Name, z.entries[0].Name, truncate(strings.Join(d.Columns(), ", "), 120), truncate(strings.Join(z.cols, ", "), 120))
	}
	z.at, z.cur, z.rc = i, d, rc
	z.index = z.index[:0]
	z.join()
	return nil
}

func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.TrimSpace(a[i]) != strings.TrimSpace(b[i]) {
			return false
		}
	}
	return true
}

// join adds the current entry's new columns to the archive's.
func (z *zipFeed) join() {
	cols := z.cur.Columns()
	for j := len(z.index); j < len(cols); j++ {
		k := -1
		for i, c := range z.cols {
			if c == cols[j] {
				k = i
				break
			}
		}
		if k < 0 {
			k = len(z.cols)
			z.cols = append(z.cols, cols[j])
		}
		z.index = append(z.index, k)
	}
}

func (z *zipFeed) charset() string {
	if z.cur == nil {
		return ""
	}
	return z.cur.charset()
}

func (z *zipFeed) Format() string    { return z.format }
func (z *zipFeed) Columns() []string { return z.cols[:len(z.cols):len(z.cols)] }

func (z *zipFeed) Next() (schemas.RawRow, error) {
	for z.err == nil {
		row, err := z.cur.Next()
		var re *schemas.RowError
		switch {
		case err == io.EOF:
			z.offset = z.last
			_ = z.cur.Close()
			_ = z.rc.Close()
			if z.at+1 == len(z.entries) {
				z.err = io.EOF
				return schemas.RawRow{}, io.EOF
			}
			if err := z.openEntry(z.at + 1); err != nil {
				z.err = err
			}
			continue
		case errors.As(err, &re):
			z.join()
			z.last = z.offset + re.Row
			return schemas.RawRow{}, &schemas.RowError{Row: z.last, Code: re.Code, Reason: re.Reason, Values: z.align(re.Values)}
		case err != nil:
			z.err = err
			return schemas.RawRow{}, err
		}
		z.join()
		z.last = z.offset + row.Row
		return schemas.RawRow{Row: z.last, Values: z.align(row.Values)}, nil
	}
	return schemas.RawRow{}, z.err
}

// align puts the current entry's values at the archive's column positions.
func (z *zipFeed) align(values []string) []string {
	if values == nil || z.at == 0 && len(z.cols) == len(z.index) {
		return values // the first file's columns are the archive's
	}
	out := make([]string, len(z.cols))
	for j, v := range values {
		if j < len(z.index) {
			out[z.index[j]] = v
		}
	}
	return out
}

func (z *zipFeed) Close() error {
	if z.err == nil {
		z.err = errClosed
		_ = z.cur.Close()
		_ = z.rc.Close()
	}
	name := z.spool.Name()
	_ = z.spool.Close()
	return os.Remove(name)
}

// inflateHead unpacks as much of a compressed head as it holds, up to
// HeadSize, so the format of the file inside can be told from the first
// bytes of an upload. more reports whether the content goes on past what
// was unpacked.
func inflateHead(head []byte, compression string) (inner []byte, more bool, err error) {
	var r io.Reader
	switch compression {
	case schemas.CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return nil, false, fmt.Errorf("%w: the gzip header cannot be read (%v); compress the file again", ErrCorrupt, err)
		}
		r = zr
	case schemas.CompressionBzip2:
		r = bzip2.NewReader(bytes.NewReader(head))
	case schemas.CompressionZip:
		return zipHead(head)
	}
	return readHead(r)
}

// readHead reads up to HeadSize of an unpacking stream whose packed bytes
// may stop short.
func readHead(r io.Reader) ([]byte, bool, error) {
	buf := make([]byte, HeadSize)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return buf, true, nil
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:n], false, nil
	case n > 0:
		return buf[:n], true, nil // the packed head ends here; the file goes on
	}
	return nil, false, fmt.Errorf("%w: the compressed data cannot be read (%v); compress the file again", ErrCorrupt, err)
}

// zipHead finds the first feed file in the local headers at the start of
// an archive and unpacks the beginning of it.
func zipHead(head []byte) ([]byte, bool, error) {
	p := 0
	for {
		if len(head)-p < 30 || string(head[p:p+4]) != "PK\x03\x04" {
			if p+4 <= len(head) && string(head[p:p+4]) == "PK\x05\x06" || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
				return nil, false, fmt.Errorf("%w: the zip archive holds no file; put the feed file in it", ErrEmpty)
			}
			return nil, false, fmt.Errorf("%w: the first feed file in the zip archive starts past the first %d KiB of the upload; put the feed file first in the archive, or upload it alone",
				ErrUnsupported, HeadSize>>10)
		}
		flags := binary.LittleEndian.Uint16(head[p+6:])
		method := binary.LittleEndian.Uint16(head[p+8:])
		csize := int(binary.LittleEndian.Uint32(head[p+18:]))
		nameLen := int(binary.LittleEndian.Uint16(head[p+26:]))
		extraLen := int(binary.LittleEndian.Uint16(head[p+28:]))
		data := p + 30 + nameLen + extraLen
		if data > len(head) {
			return nil, false, fmt.Errorf("%w: the first feed file in the zip archive starts past the first %d KiB of the upload; put the feed file first in the archive, or upload it alone",
				ErrUnsupported, HeadSize>>10)
		}
		name := string(head[p+30 : p+30+nameLen])
		if excelEntry(name) {
			return nil, false, errExcel
		}
		var content io.Reader
		rest := bytes.NewReader(head[data:])
		switch method {
		case zip.Store:
			if flags&8 == 0 {
				content = io.LimitReader(rest, int64(csize))
			} else {
				content = rest
			}
		case zip.Deflate:
			content = flate.NewReader(rest)
		default:
			return nil, false, fmt.Errorf("%w: %s in the zip archive is compressed with method %d; use deflate (what every archiver writes by default)", ErrUnsupported, name, method)
		}
		if feedEntry(name, false) {
			return readHead(content)
		}
		// Read past an entry that is not a feed file to the next header.
		switch {
		case flags&8 == 0:
			p = data + csize
		case method == zip.Deflate:
			if _, err := io.Copy(io.Discard, content); err != nil {
				return nil, false, fmt.Errorf("%w: the first feed file in the zip archive starts past the first %d KiB of the upload; put the feed file first in the archive, or upload it alone",
					ErrUnsupported, HeadSize>>10)
			}
			p = len(head) - rest.Len()
			if p+4 <= len(head) && string(head[p:p+4]) == "PK\x07\x08" {
				p += 4
			}
			p += 12 // crc-32 and the two sizes
		default:
			return nil, false, fmt.Errorf("%w: the first feed file in the zip archive cannot be found in the upload's first bytes; put the feed file first in the archive", ErrUnsupported)
		}
	}
}
