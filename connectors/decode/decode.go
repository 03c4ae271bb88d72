// Package decode turns an uploaded partner file into rows of strings, one row
// at a time, without holding the file in memory. It reads CSV and TSV (and the
// Google Merchant and Naver Shopping EP layouts of TSV), Google Merchant RSS
// and Atom XML, NDJSON and Parquet; unpacks gzip, bzip2 and zip; reads text in
// UTF-8, UTF-16, EUC-KR (CP949) and Windows-1252; and can tell all of them
// apart from the first bytes of a file.
//
// Errors come in two kinds. A *schemas.RowError rejects one row and decoding goes on;
// any other error ends the file. The sentinel errors below classify the fatal
// errors a partner can fix; their wrapped messages say how.
package decode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"feedline/schemas"
)

// Errors a partner can act on. They are wrapped with a message saying what to
// do; test for them with errors.Is.
var (
	ErrEmpty          = errors.New("the file is empty")
	ErrBinary         = errors.New("the file is not text, NDJSON or Parquet")
	ErrEncoding       = errors.New("the file is not UTF-8 text")
	ErrUnsupported    = errors.New("the file format is not supported")
	ErrFormatMismatch = errors.New("the file does not match the format given")
	ErrNoHeader       = errors.New("the file has no header line")
	ErrBadHeader      = errors.New("the header line is not usable")
	ErrCorrupt        = errors.New("the file is damaged or truncated")
	ErrTooLarge       = errors.New("the file is too large")
)

// DefaultMaxRowBytes is the row size limit when DecoderOptions.MaxRowBytes is 0.
const DefaultMaxRowBytes = 1 << 20

// HeadSize is how many leading bytes Detect needs to decide on a format.
const HeadSize = 64 << 10

// A rejected row is a *schemas.RowError. Its Row is the 1-based data row
// number: the header is not counted and neither are blank lines. Its Values
// are a best-effort split of the row, so the caller can still tell which
// product it was about: its fields when the record could be split, else its
// first line cut at every delimiter with quotes as ordinary characters;
// invalid UTF-8 is replaced. They are nil when nothing usable was kept (a
// row over the size limit, an NDJSON line that is not an object).

// Open detects or validates the format of r and returns a decoder positioned
// at the first row (a schemas.OpenDecoder). A gzip, bzip2 or zip file (told
// by its first bytes) is unpacked and the file inside decoded; text is read
// as UTF-8 whatever its charset. It reads at most a few head buffers before
// returning, except for Parquet and zip, which are first copied whole to a
// temporary file (in opt.TempDir, "" = os.TempDir(), removed on Close). Zero
// limits in opt are DefaultMaxRowBytes, DefaultMaxBytes and
// DefaultMaxExpansion.
//
// The decoder's Columns are the header. For NDJSON they grow as new keys
// appear and never reorder, so a row's Values may be shorter than Columns;
// missing trailing values are empty. The slice returned must not be
// modified. Next returns io.EOF after the last row, a *schemas.RowError for
// one bad row (call Next again to go on), or any other error when the file
// cannot be read further; that error is returned again by every later call.
// Each row's Values belong to the caller. The decoder also reports the
// Charset decided so far ("" while all text was ASCII, and for Parquet).
// Close releases what the decoder holds; it does not close r.
func Open(r io.Reader, opt schemas.DecoderOptions) (schemas.RowDecoder, error) {
	if opt.MaxRowBytes <= 0 {
		opt.MaxRowBytes = DefaultMaxRowBytes
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxExpansion <= 0 {
		opt.MaxExpansion = DefaultMaxExpansion
	}
	if opt.Format != "" && !slices.Contains(schemas.Formats, opt.Format) {
		return nil, fmt.Errorf("%w: unknown format %q; use one of %s, or leave the format out to detect it",
			ErrUnsupported, opt.Format, strings.Join(schemas.Formats, ", "))
	}
	if opt.Delimiter != 0 {
		if opt.Delimiter < 0 || opt.Delimiter >= 0x80 || opt.Delimiter == '"' || opt.Delimiter == '\n' || opt.Delimiter == '\r' {
			return nil, fmt.Errorf("%w: delimiter %q cannot separate fields; use a single ASCII character such as ',', '\\t', ';' or '|'",
				ErrUnsupported, opt.Delimiter)
		}
	}
	br := bufio.NewReaderSize(r, HeadSize)
	head, err := br.Peek(HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	switch c := compressionOf(head); c {
	case schemas.CompressionGzip, schemas.CompressionBzip2:
		return openCompressed(br, opt, c)
	case schemas.CompressionZip:
		return openZip(br, opt)
	}
	return openPlain(br, opt, "")
}

// openPlain opens a file that is not (or no longer) packed.
func openPlain(r io.Reader, opt schemas.DecoderOptions, compression string) (*fileDecoder, error) {
	raw := bufio.NewReaderSize(r, HeadSize)
	head, err := raw.Peek(HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	if c := compressionOf(head); c != "" && compression != "" {
		return nil, fmt.Errorf("%w: the %s file holds a %s file; compress the feed once", ErrUnsupported, compression, c)
	}
	if len(head) >= 4 && string(head[:4]) == "PAR1" {
		if _, err := chooseFormat(sniffed{format: schemas.FormatParquet, looks: "Parquet"}, opt.Format, 0); err != nil {
			return nil, err
		}
		p, err := openParquet(raw, opt)
		if err != nil {
			return nil, err
		}
		return &fileDecoder{RowDecoder: p, compression: compression, charset: func() string { return "" }}, nil
	}
	if err := refuseBinary(head); err != nil {
		return nil, err
	}
	d, err := chooseDecoding(head, opt.Charset)
	if err != nil {
		return nil, err
	}
	text := newTextReader(raw, d)
	br := bufio.NewReaderSize(text, HeadSize)
	th, err := br.Peek(HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	s := sniffText(th, len(th) >= HeadSize)
	var comma byte
	if opt.Delimiter != 0 {
		comma = byte(opt.Delimiter)
	}
	format, err := chooseFormat(s, opt.Format, comma)
	if err != nil {
		return nil, err
	}
	var dec schemas.RowDecoder
	switch format {
	case schemas.FormatParquet:
		return nil, fmt.Errorf("%w: the file is not Parquet", ErrFormatMismatch)
	case schemas.FormatNDJSON:
		dec = newNDJSON(br, opt.MaxRowBytes)
	case schemas.FormatGoogleMerchantXML:
		dec, err = newMerchantXML(br, opt.MaxRowBytes)
	default:
		if comma == 0 {
			comma = s.comma
			if format == schemas.FormatTSV {
				comma = '\t'
			}
		}
		quoted := quotesFields(format)
		if opt.Quoted != nil {
			quoted = *opt.Quoted
		}
		dec, err = newDelimited(br, format, comma, quoted, opt.MaxRowBytes)
	}
	if err != nil {
		return nil, err
	}
	return &fileDecoder{RowDecoder: dec, compression: compression, charset: text.Charset}, nil
}

// fileDecoder is a decoder with what it took to read its file: the
// compression unpacked, the charset decided so far, and what to close.
type fileDecoder struct {
	schemas.RowDecoder
	compression string
	charset     func() string
	closers     []io.Closer
}

// Compression is what the file was unpacked from, or "".
func (f *fileDecoder) Compression() string { return f.compression }

// Charset is the text encoding decided so far: "" while all text was
// ASCII, and for Parquet.
func (f *fileDecoder) Charset() string { return f.charset() }

func (f *fileDecoder) Close() error {
	err := f.RowDecoder.Close()
	for _, c := range f.closers {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// quotesFields reports whether a delimited format quotes fields unless the
// partner says otherwise: CSV does (RFC 4180); in TSV and its merchant
// layouts a quote is an ordinary character, such as an inch mark in a title.
func quotesFields(format string) bool { return format == schemas.FormatCSV }

// skipBOM drops a UTF-8 byte order mark at the start of br.
func skipBOM(br *bufio.Reader) {
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("decode: decoder is closed")

// chooseFormat checks a format the partner named against what the head looks
// like (fitFormat), or picks the detected one.
func chooseFormat(s sniffed, named string, comma byte) (string, error) {
	if s.err != nil && (named != schemas.FormatParquet || errors.Is(s.err, ErrEmpty)) {
		return "", s.err
	}
	// A TSV must have tabs; a file that plainly uses another delimiter was
	// most likely named wrong.
	format, ok := fitFormat(named, s.format, comma == 0 && s.comma != '\t' && s.headerFields > 1)
	if !ok {
		return "", fmt.Errorf("%w: the format given is %s but the file looks like %s; name the right format or leave it out to detect it",
			ErrFormatMismatch, named, s.looks)
	}
	return format, nil
}
