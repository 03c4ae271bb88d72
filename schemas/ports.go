package schemas

import (
	"context"
	"fmt"
	"io"
)

// RowDecoder yields the rows of one uploaded file. Columns may grow (NDJSON
// keys appear as they are met) but never reorder.
type RowDecoder interface {
	Format() string
	Columns() []string
	// Next returns io.EOF at the end, a *RowError for one unreadable row
	// (decoding goes on), or any other error when the file cannot be read.
	Next() (RawRow, error)
	Close() error
}

// RowError is one source row a decoder could not read. Values is a
// best-effort split of it (nil when nothing usable was kept), so a later
// stage can still tell which product the row was about.
type RowError struct {
	Row    int64
	Code   string // the issue code, CodeRowUnreadable when empty
	Reason string
	Values []string
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %s", e.Row, e.Reason) }

// DecoderOptions select and tune a decoder.
type DecoderOptions struct {
	Format    string // "" = detect
	Delimiter rune   // 0 = detect
	// Quoted says whether a quote at the start of a field opens a quoted
	// field (RFC 4180); nil = the format's default: CSV quotes, TSV does not.
	Quoted *bool
	// Charset is the text encoding the partner declared (see Charsets);
	// "" detects it.
	Charset string
	TempDir string // where a Parquet or zip stream is spooled for random access
	// MaxBytes bounds what a file may unpack to (and be spooled as);
	// MaxExpansion its unpacked bytes per packed byte (past its first 64
	// MiB); MaxRowBytes a row, longer ones are rejected (a RowError) and
	// decoding goes on. 0 = the decoder's default.
	MaxBytes     int64
	MaxExpansion int
	MaxRowBytes  int
}

// ColumnsGrow reports whether a format's columns appear as rows are read
// (NDJSON keys, XML elements) rather than all in a header.
func ColumnsGrow(format string) bool {
	return format == FormatNDJSON || format == FormatGoogleMerchantXML
}

// OpenDecoder opens a decoder over a stream.
type OpenDecoder func(r io.Reader, opt DecoderOptions) (RowDecoder, error)

// DetectFormat inspects the head of a file (and the format the partner
// named, if any) and answers the format and delimiter to decode it with, or
// an error a partner can act on (empty, binary, mismatching format).
// A charset the partner's mapping declares decides how text is read.
type DetectFormat func(head []byte, format, charset string) (FileKind, error)

// FileKind is what the head of an uploaded file says it is.
type FileKind struct {
	Format      string
	Delimiter   rune   // delimited text only
	Compression string // gzip, zip or bzip2 when the file is packed; Format is then its content's
	Charset     string // the text encoding, when the head tells it
}

// FileStore keeps uploaded files as streams; nothing is held in memory.
type FileStore interface {
	// Put stores r whole or not at all: when r fails, nothing is kept.
	Put(ctx context.Context, name string, r io.Reader) (size int64, err error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	Delete(ctx context.Context, name string) error // a missing file is no error
}

// File errors DetectFormat reports; the API answers 422 for an empty file
// and 415 for one it cannot decode.
var (
	ErrEmptyFile      = errorString("the file is empty")
	ErrUnreadableFile = errorString("the file cannot be decoded")
)

// FileError wraps err (whose message is kept) so errors.Is also finds kind.
func FileError(kind, err error) error { return fileError{kind, err} }

type fileError struct{ kind, err error }

func (e fileError) Error() string   { return e.err.Error() }
func (e fileError) Unwrap() []error { return []error{e.kind, e.err} }

// IssueLog reads the complete issue lists of uploads.
type IssueLog interface {
	// Stored reports whether any issue of the upload is kept.
	Stored(ctx context.Context, partner, upload string) (bool, error)
	// Each calls fn with every issue of the upload, streaming, until fn
	// returns an error, which it returns.
	Each(ctx context.Context, partner, upload string, fn func(Issue) error) error
}
