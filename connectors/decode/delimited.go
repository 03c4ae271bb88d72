package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"feedline/schemas"
)

// delimited reads RFC 4180 text (CSV, TSV and the merchant feed layouts).
//
// A record that fits in the bufio buffer and holds no quote is split in
// place; anything else goes through a resumable state machine that keeps at
// most MaxRowBytes of a record and reads past the rest.
type delimited struct {
	br       *bufio.Reader
	format   string
	comma    byte
	commaStr string
	max      int
	cols     []string
	row      int64 // data rows returned so far, good or bad
	line     int64 // physical lines consumed so far
	start    int64 // line the current record starts on
	err      error // sticky fatal error

	rec  []byte // unquoted field bytes of the record being read
	ends []int  // end offset in rec of each field
}

func newDelimited(br *bufio.Reader, format string, comma byte, max int) (*delimited, error) {
	skipBOM(br)
	d := &delimited{br: br, format: format, comma: comma, commaStr: string(rune(comma)), max: max}
	header, reason, err := d.record()
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("%w: upload a file with a header line and at least one row", ErrEmpty)
	case err != nil:
		return nil, err
	case reason != "":
		return nil, fmt.Errorf("%w: %s", ErrBadHeader, reason)
	}
	cols, err := checkHeader(header)
	if err != nil {
		return nil, err
	}
	d.cols = cols
	return d, nil
}

// checkHeader trims the column names and rejects headers no mapping could
// address: empty or repeated names, or a first line that is plainly data.
func checkHeader(names []string) ([]string, error) {
	seen := make(map[string]int, len(names))
	looksLikeData := 0
	for i, n := range names {
		n = strings.TrimSpace(n)
		names[i] = n
		if n == "" {
			return nil, fmt.Errorf("%w: column %d of the header has no name; name it or remove the column (check for a trailing delimiter)",
				ErrBadHeader, i+1)
		}
		if j, ok := seen[n]; ok {
			return nil, fmt.Errorf("%w: column name %q appears twice in the header (columns %d and %d); give each column its own name",
				ErrBadHeader, n, j+1, i+1)
		}
		seen[n] = i
		if isDataLike(n) {
			looksLikeData++
		}
	}
	if looksLikeData*2 > len(names) {
		return nil, fmt.Errorf("%w: the first line (%s) looks like a product row, not column names; add a header line naming the columns",
			ErrNoHeader, truncate(strings.Join(names, ", "), 80))
	}
	return names, nil
}

// isDataLike reports whether a header name looks like a value: a number or
// a URL.
func isDataLike(s string) bool {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return true
	}
	_, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (d *delimited) Format() string    { return d.format }
func (d *delimited) Columns() []string { return d.cols[:len(d.cols):len(d.cols)] }
func (d *delimited) Close() error {
	if d.err == nil {
		d.err = errClosed
	}
	return nil
}

func (d *delimited) Next() (schemas.RawRow, error) {
	if d.err != nil {
		return schemas.RawRow{}, d.err
	}
	fields, reason, err := d.record()
	if err != nil {
		d.err = err
		return schemas.RawRow{}, err
	}
	d.row++
	if reason != "" {
		return schemas.RawRow{}, &RowError{Row: d.row, Reason: reason}
	}
	if len(fields) != len(d.cols) {
		return schemas.RawRow{}, &RowError{Row: d.row,
			Reason: fmt.Sprintf("row has %d fields, the header has %d (line %d)", len(fields), len(d.cols), d.start)}
	}
	return schemas.RawRow{Row: d.row, Values: fields}, nil
}

// record reads the next non-blank record. It returns its fields, or a reason
// when the record is unusable (its bytes are consumed either way), or io.EOF
// at the end, or a read error.
func (d *delimited) record() (fields []string, reason string, err error) {
	for {
		line, err := d.br.ReadSlice('\n')
		d.start = d.line + 1
		switch {
		case err == nil:
			d.line++
		case err == io.EOF:
			if len(line) == 0 {
				return nil, "", io.EOF
			}
		case errors.Is(err, bufio.ErrBufferFull):
			return d.slowRecord(line, err)
		default:
			return nil, "", fmt.Errorf("reading line %d: %w", d.line+1, err)
		}
		if bytes.IndexByte(line, '"') >= 0 {
			return d.slowRecord(line, err)
		}
		n := len(line)
		if n > 0 && line[n-1] == '\n' {
			n--
		}
		if n > 0 && line[n-1] == '\r' {
			n--
		}
		if n == 0 || (bytes.IndexByte(line[:n], d.comma) < 0 && len(bytes.TrimSpace(line[:n])) == 0) {
			continue // blank lines are not rows
		}
		if n > d.max {
			return nil, tooLong(n, d.max), nil
		}
		if !utf8.Valid(line[:n]) {
			return nil, notUTF8(d.start), nil
		}
		line = line[:n]
		return d.split(string(line)), "", nil
	}
}

// split cuts a record without quotes at each delimiter.
func (d *delimited) split(s string) []string {
	fields := make([]string, 1+strings.Count(s, d.commaStr))
	for i := range len(fields) - 1 {
		j := strings.IndexByte(s, d.comma)
		fields[i], s = s[:j], s[j+1:]
	}
	fields[len(fields)-1] = s
	return fields
}

func tooLong(n, max int) string {
	return fmt.Sprintf("row is %d bytes, the limit is %d", n, max)
}

func notUTF8(line int64) string {
	return fmt.Sprintf("line %d is not valid UTF-8; save the file as UTF-8", line)
}

// States of the record state machine.
const (
	stFieldStart = iota // at the first byte of a field
	stUnquoted          // inside a field that did not start with a quote
	stQuoted            // inside a quoted field
	stQuote             // just after a quote inside a quoted field
	stQuoteCR           // just after a closing quote and a carriage return
	stRecordEnd
)

// slowRecord reads a record that holds quotes or does not fit in the buffer.
// chunk is its first piece and err the error ReadSlice returned with it.
func (d *delimited) slowRecord(chunk []byte, err error) ([]string, string, error) {
	d.rec, d.ends = d.rec[:0], d.ends[:0]
	firstLine := d.start
	var (
		st      = stFieldStart
		size    int    // raw bytes of the record, terminator included
		keep    = true // whether field bytes are still stored
		reason  string
		lastTwo [2]byte // final raw bytes, to size the terminator
	)
	for {
		size += len(chunk)
		if keep && size > d.max+2 {
			keep = false // past the limit: read on, store nothing
			d.rec = d.rec[:0]
		}
		for i := 0; i < len(chunk); {
			switch st {
			case stFieldStart:
				if chunk[i] == '"' {
					st = stQuoted
					i++
				} else {
					st = stUnquoted
				}
			case stUnquoted:
				rest := chunk[i:]
				if j := bytes.IndexByte(rest, d.comma); j >= 0 {
					d.field(rest[:j], keep)
					i += j + 1
					st = stFieldStart
					continue
				}
				i = len(chunk)
				if rest[len(rest)-1] != '\n' {
					d.appendRec(rest, keep)
					continue
				}
				d.appendRec(rest[:len(rest)-1], keep)
				if start := d.fieldStart(); keep && len(d.rec) > start && d.rec[len(d.rec)-1] == '\r' {
					d.rec = d.rec[:len(d.rec)-1]
				}
				d.field(nil, keep)
				st = stRecordEnd
			case stQuoted:
				rest := chunk[i:]
				j := bytes.IndexByte(rest, '"')
				if j < 0 {
					d.appendRec(rest, keep)
					// A line break inside quotes is kept as "\n", also when
					// the "\r" came in the chunk before.
					if n := len(d.rec); keep && rest[len(rest)-1] == '\n' && n-2 >= d.fieldStart() && d.rec[n-2] == '\r' {
						d.rec = append(d.rec[:n-2], '\n')
					}
					i = len(chunk)
					continue
				}
				d.appendRec(rest[:j], keep)
				i += j + 1
				st = stQuote
			case stQuote:
				switch c := chunk[i]; c {
				case '"':
					d.appendRec(chunk[i:i+1], keep)
					st = stQuoted
				case d.comma:
					d.field(nil, keep)
					st = stFieldStart
				case '\n':
					d.field(nil, keep)
					st = stRecordEnd
				case '\r':
					st = stQuoteCR
				default:
					if reason == "" {
						reason = fmt.Sprintf("line %d: a quoted field is followed by %q; a quote inside a quoted field must be doubled (\"\")", d.lineOf(chunk), c)
					}
					st = stUnquoted
				}
				i++
			case stQuoteCR:
				if chunk[i] == '\n' {
					d.field(nil, keep)
					st = stRecordEnd
					i++
				} else {
					if reason == "" {
						reason = fmt.Sprintf("line %d: a quoted field is followed by a carriage return inside the line", d.lineOf(chunk))
					}
					st = stUnquoted
				}
			case stRecordEnd:
				panic("decode: record continues after its end") // ReadSlice ends every chunk at a newline
			}
		}
		if n := len(chunk); n >= 2 {
			lastTwo = [2]byte{chunk[n-2], chunk[n-1]}
		} else if n == 1 {
			lastTwo = [2]byte{lastTwo[1], chunk[0]}
		}
		if st == stRecordEnd {
			break
		}
		if err == io.EOF {
			switch st {
			case stQuoted:
				if reason == "" {
					reason = fmt.Sprintf("a quoted field opened on line %d is never closed; look for a stray quote (\") there", firstLine)
				}
			default:
				d.field(nil, keep)
			}
			break
		}
		chunk, err = d.br.ReadSlice('\n')
		switch {
		case err == nil:
			d.line++
		case err == io.EOF, errors.Is(err, bufio.ErrBufferFull):
		default:
			return nil, "", fmt.Errorf("reading line %d: %w", d.line+1, err)
		}
	}
	if lastTwo[1] == '\n' {
		size--
		if lastTwo[0] == '\r' {
			size--
		}
	}
	if size > d.max {
		return nil, tooLong(size, d.max), nil
	}
	if reason != "" {
		return nil, reason, nil
	}
	if !utf8.Valid(d.rec) {
		return nil, notUTF8(firstLine), nil
	}
	s := string(d.rec)
	fields := make([]string, len(d.ends))
	start := 0
	for i, end := range d.ends {
		fields[i] = s[start:end]
		start = end
	}
	return fields, "", nil
}

// lineOf is the line number of chunk, the piece ReadSlice returned last:
// d.line already counts it when it ends with a newline.
func (d *delimited) lineOf(chunk []byte) int64 {
	if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
		return d.line
	}
	return d.line + 1
}

func (d *delimited) appendRec(b []byte, keep bool) {
	if keep {
		d.rec = append(growBounded(d.rec, len(b), d.max+2), b...)
	}
}

// field ends the current field after appending b.
func (d *delimited) field(b []byte, keep bool) {
	if keep {
		d.appendRec(b, keep)
		d.ends = append(d.ends, len(d.rec))
	}
}

// growBounded makes room for n more bytes in b, doubling its capacity but
// not past limit unless n needs it. append grows large slices by only a
// quarter, which would allocate several times a long row in total.
func growBounded(b []byte, n, limit int) []byte {
	if len(b)+n <= cap(b) {
		return b
	}
	c := max(2*cap(b), 4096)
	c = max(min(c, limit), len(b)+n)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

func (d *delimited) fieldStart() int {
	if len(d.ends) == 0 {
		return 0
	}
	return d.ends[len(d.ends)-1]
}
