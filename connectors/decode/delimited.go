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

// delimited reads delimited text: CSV, TSV and the merchant feed layouts.
//
// With quoting on (RFC 4180, the CSV default) a quote at the start of a
// field opens a quoted field that may hold delimiters, line breaks and
// doubled quotes; with it off (the TSV default) a quote is an ordinary
// character. A record that fits in the read buffer and needs no quote
// handling is split in place; anything else goes through a resumable state
// machine that keeps at most MaxRowBytes of a record and reads past the rest.
//
// A quoted field that runs past the end of its line and then cannot end well
// was most likely opened by a stray quote (an inch mark): only the line it
// started on is rejected, and the lines after it are read again as records.
type delimited struct {
	src      lineSource
	format   string
	comma    byte
	commaStr string
	quoted   bool // a quote at the start of a field opens a quoted field
	max      int
	cols     []string
	row      int64 // data rows returned so far, good or bad
	line     int64 // physical lines consumed so far
	start    int64 // line the current record starts on
	err      error // sticky fatal error

	rec     []byte // unquoted field bytes of the record being read
	ends    []int  // end offset in rec of each field
	nfields int    // fields ended so far, also those not stored past the limit
	first   []byte // raw first line of a record read in several pieces
}

func newDelimited(br *bufio.Reader, format string, comma byte, quoted bool, max int) (*delimited, error) {
	skipBOM(br)
	d := &delimited{src: lineSource{br: br}, format: format, comma: comma, commaStr: string(rune(comma)), quoted: quoted, max: max}
	header, _, reason, err := d.record(0)
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
	fields, code, reason, err := d.record(len(d.cols))
	if err != nil {
		d.err = err
		return schemas.RawRow{}, err
	}
	d.row++
	if reason != "" {
		return schemas.RawRow{}, &schemas.RowError{Row: d.row, Code: code, Reason: reason, Values: fields}
	}
	return schemas.RawRow{Row: d.row, Values: fields}, nil
}

// record reads the next non-blank record; want is the header's field count
// (0 while reading the header). It returns the record's fields; or the issue
// code and reason the record is unusable, with a best-effort split of it
// (nil when none was kept) in fields; or io.EOF at the end; or a read error.
func (d *delimited) record(want int) (fields []string, code, reason string, err error) {
	for {
		line, err := d.src.next()
		d.start = d.line + 1
		switch {
		case err == nil:
			d.line++
		case err == io.EOF:
			if len(line) == 0 {
				return nil, "", "", io.EOF
			}
		case errors.Is(err, bufio.ErrBufferFull):
			return d.slowRecord(line, err, want)
		default:
			return nil, "", "", fmt.Errorf("reading line %d: %w", d.line+1, err)
		}
		if d.quoted && bytes.IndexByte(line, '"') >= 0 {
			return d.slowRecord(line, err, want)
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
			return nil, schemas.CodeRowTooLong, tooLong(n, d.max), nil
		}
		if !utf8.Valid(line[:n]) {
			return d.naive(line[:n]), schemas.CodeEncodingInvalid, notUTF8(d.start), nil
		}
		fields := d.split(string(line[:n]))
		if want > 0 && len(fields) != want {
			return fields, schemas.CodeFieldCount, d.ragged(len(fields), want), nil
		}
		return fields, "", "", nil
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

// naive is the best-effort split of a rejected row: its raw line cut at
// every delimiter, quotes and all, with invalid UTF-8 replaced.
func (d *delimited) naive(line []byte) []string {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return d.split(strings.ToValidUTF8(string(line), "\uFFFD"))
}

func (d *delimited) ragged(n, want int) string {
	return fmt.Sprintf("row has %d fields, the header has %d (line %d)", n, want, d.start)
}

func tooLong(n, max int) string {
	return fmt.Sprintf("row is %d bytes, the limit is %d", n, max)
}

func notUTF8(line int64) string {
	return fmt.Sprintf("line %d is not valid UTF-8; save the file as UTF-8", line)
}

// strayQuote explains a quoted field that starts on line and cannot end
// well, and how to fix the file.
func strayQuote(line int64, what string) string {
	return fmt.Sprintf(`line %d: a quoted field starts here and %s; look for a stray quote (") on line %d: `+
		`inside a quoted field a quote is written twice (""), and if the file never quotes fields, set "quoted": false in the mapping`,
		line, what, line)
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
// chunk is its first piece and err the error the line source returned with it.
//
// A record whose quoted field runs past its first line is read on only while
// it can still end well: once it cannot (the field is never closed, its
// closing quote is followed by something else than a delimiter or a line
// end, it grows past the row limit, or the record's field count is not the
// header's), the first line alone is rejected and the line source goes back
// to the line after it.
func (d *delimited) slowRecord(chunk []byte, err error, want int) ([]string, string, string, error) {
	d.rec, d.ends, d.nfields, d.first = d.rec[:0], d.ends[:0], 0, d.first[:0]
	firstLine, firstChunk := d.start, chunk
	var (
		st      = stFieldStart
		size    int    // raw bytes of the record, terminator included
		keep    = true // whether field bytes are still stored
		reason  string
		code    string  // reason's issue code
		lastTwo [2]byte // final raw bytes, to size the terminator
		pieces  bool    // the first line came in several pieces, kept in d.first
		lost    bool    // a piece of the first line was not kept: it held no quote yet, or was past the limit
		quote   bool    // a quoted field was opened
		onFirst = true  // the first line is not read to its end yet
		mark    = -1    // where the second line starts in d.src, once the record spans lines
		stray   string  // why a record spanning lines is undone
	)
	// firstValues is the best-effort split of the first line.
	firstValues := func() []string {
		switch {
		case !pieces:
			return d.naive(firstChunk)
		case lost:
			return nil
		}
		return d.naive(d.first)
	}
	for {
		size += len(chunk)
		if keep && size > d.max+2 {
			keep = false // past the limit: read on, store nothing
			d.rec = d.rec[:0]
		}
		for i := 0; i < len(chunk) && stray == ""; {
			switch st {
			case stFieldStart:
				if d.quoted && chunk[i] == '"' {
					st, quote = stQuoted, true
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
					if mark >= 0 {
						stray = strayQuote(firstLine, fmt.Sprintf("ends on line %d, where its closing quote is followed by %q instead of a delimiter or the end of the line", d.lineOf(chunk), c))
					} else if reason == "" {
						reason = fmt.Sprintf("line %d: a quoted field is followed by %q; a quote inside a quoted field must be doubled (\"\")", d.lineOf(chunk), c)
						code = schemas.CodeQuoteMisplaced
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
					if mark >= 0 {
						stray = strayQuote(firstLine, fmt.Sprintf("ends on line %d, where its closing quote is followed by a carriage return inside the line", d.lineOf(chunk)))
					} else if reason == "" {
						reason = fmt.Sprintf("line %d: a quoted field is followed by a carriage return inside the line", d.lineOf(chunk))
						code = schemas.CodeQuoteMisplaced
					}
					st = stUnquoted
				}
			case stRecordEnd:
				panic("decode: record continues after its end") // every chunk ends at a newline
			}
		}
		if n := len(chunk); n >= 2 {
			lastTwo = [2]byte{chunk[n-2], chunk[n-1]}
		} else if n == 1 {
			lastTwo = [2]byte{lastTwo[1], chunk[0]}
		}
		if stray != "" || st == stRecordEnd {
			break
		}
		if err == io.EOF {
			switch {
			case st != stQuoted:
				d.field(nil, keep)
			case mark >= 0:
				stray = strayQuote(firstLine, "is never closed")
			case reason == "":
				reason = strayQuote(firstLine, "is never closed")
				code = schemas.CodeUnclosedQuote
			}
			break
		}
		// The record goes on. The next read may overwrite chunk: keep what
		// is still needed of the first line.
		if onFirst {
			// Only a line with quotes can need its values split naively;
			// a long line without any is read past without a copy.
			if !keep || (!pieces && !quote) {
				lost = true
			} else if !lost {
				d.first = append(growBounded(d.first, len(chunk), d.max+2), chunk...)
			}
			pieces = true
			if chunk[len(chunk)-1] == '\n' {
				onFirst = false
				// A quoted field runs past the first line. A line already
				// rejected needs no look further.
				switch {
				case size-terminatorLen(lastTwo) > d.max:
					return nil, schemas.CodeRowTooLong, tooLong(size-terminatorLen(lastTwo), d.max), nil
				case reason != "":
					return firstValues(), code, reason, nil
				case want > 0 && d.nfields >= want:
					return firstValues(), schemas.CodeUnclosedQuote, strayQuote(firstLine, fmt.Sprintf("is not closed on this line, which already has more than the header's %d fields", want)), nil
				case want > 0 && !d.src.mayGoBack(d.max):
					return firstValues(), schemas.CodeUnclosedQuote, strayQuote(firstLine, "is not closed on this line; the file has too many unbalanced quotes "+
						"for a field spanning lines to be told from a stray quote"), nil
				}
				mark = d.src.mark()
			}
		} else if mark >= 0 {
			switch {
			case size > d.max+2:
				stray = strayQuote(firstLine, fmt.Sprintf("is still open on line %d, past the row limit of %d bytes", d.lineOf(chunk), d.max))
			case want > 0 && d.nfields >= want:
				stray = strayQuote(firstLine, fmt.Sprintf("runs on to line %d, making a row of more than the header's %d fields", d.lineOf(chunk), want))
			}
			if stray != "" {
				break
			}
		}
		chunk, err = d.src.next()
		switch {
		case err == nil:
			d.line++
		case err == io.EOF, errors.Is(err, bufio.ErrBufferFull):
		default:
			return nil, "", "", fmt.Errorf("reading line %d: %w", d.line+1, err)
		}
	}
	size -= terminatorLen(lastTwo)
	if mark >= 0 && stray == "" {
		switch {
		case size > d.max:
			stray = strayQuote(firstLine, fmt.Sprintf("runs on to line %d, past the row limit of %d bytes", d.lineOf(chunk), d.max))
		case want > 0 && d.nfields != want:
			stray = strayQuote(firstLine, fmt.Sprintf("runs on to line %d, making a row of %d fields where the header has %d", d.lineOf(chunk), d.nfields, want))
		}
	}
	if stray != "" {
		d.src.rewind(mark)
		d.line = firstLine
		return firstValues(), schemas.CodeUnclosedQuote, stray, nil
	}
	if mark >= 0 {
		d.src.release()
	}
	if size > d.max {
		return nil, schemas.CodeRowTooLong, tooLong(size, d.max), nil
	}
	if reason != "" {
		if pieces && !lost {
			d.first = append(d.first, chunk...) // the last piece of a first line that ended the record
		}
		return firstValues(), code, reason, nil
	}
	s := string(d.rec)
	fields := make([]string, len(d.ends))
	start := 0
	for i, end := range d.ends {
		fields[i] = s[start:end]
		start = end
	}
	if !utf8.ValidString(s) {
		for i, f := range fields {
			fields[i] = strings.ToValidUTF8(f, "\uFFFD")
		}
		return fields, schemas.CodeEncodingInvalid, notUTF8(firstLine), nil
	}
	if want > 0 && len(fields) != want {
		return fields, schemas.CodeFieldCount, d.ragged(len(fields), want), nil
	}
	return fields, "", "", nil
}

// terminatorLen is how many of a record's final bytes end its line.
func terminatorLen(lastTwo [2]byte) int {
	switch {
	case lastTwo[1] != '\n':
		return 0
	case lastTwo[0] == '\r':
		return 2
	}
	return 1
}

// lineOf is the line number of chunk, the piece the line source returned
// last: d.line already counts it when it ends with a newline.
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
	d.nfields++
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

// lineSource hands out a file line by line as bufio.Reader.ReadSlice does:
// a line longer than the buffer comes in pieces that end in
// bufio.ErrBufferFull. After mark it keeps what it hands out, so that
// rewind can hand it out again: that is how a record spanning lines that
// turns out to be a stray quote is undone. Only what one record reads past
// its first line is kept (the decoder stops such a record at MaxRowBytes),
// so going back needs no second reader and at most that much memory.
type lineSource struct {
	br      *bufio.Reader
	kept    []byte
	pos     int  // kept[pos:] is handed out again before anything new
	keeping bool // since mark
	eof     bool // br returned io.EOF

	fresh, again int64 // bytes handed out from br, and again from kept
}

func (s *lineSource) next() ([]byte, error) {
	if s.pos < len(s.kept) {
		rest := s.kept[s.pos:]
		var err error
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[:i+1]
		} else if s.eof {
			err = io.EOF
		} else {
			err = bufio.ErrBufferFull // the line goes on in br
		}
		s.pos += len(rest)
		s.again += int64(len(rest))
		return rest, err
	}
	if !s.keeping {
		s.kept, s.pos = s.kept[:0], 0
	}
	chunk, err := s.br.ReadSlice('\n')
	if err == io.EOF {
		s.eof = true
	}
	s.fresh += int64(len(chunk))
	if s.keeping && len(chunk) > 0 {
		s.kept = append(s.kept, chunk...)
		s.pos = len(s.kept)
		chunk = s.kept[len(s.kept)-len(chunk):]
	}
	return chunk, err
}

// mark starts keeping what is handed out from now on and returns where that
// is, for rewind. It invalidates pieces handed out before.
func (s *lineSource) mark() int {
	switch {
	case s.pos == len(s.kept):
		s.kept, s.pos = s.kept[:0], 0
	case s.pos > len(s.kept)/2:
		// Moving the bytes still to hand out costs less than those handed
		// out since the last move, so going back stays linear overall.
		n := copy(s.kept, s.kept[s.pos:])
		s.kept, s.pos = s.kept[:n], 0
	}
	s.keeping = true
	return s.pos
}

// rewind hands out again what was handed out since mark.
func (s *lineSource) rewind(mark int) { s.pos, s.keeping = mark, false }

// release ends keeping without going back.
func (s *lineSource) release() { s.keeping = false }

// mayGoBack reports whether reading a record on past its first line, which
// may be read again, keeps the total work within a few times the file: a
// file built so that every line starts a long quoted field is read in
// linear time, its lines rejected one by one instead.
func (s *lineSource) mayGoBack(max int) bool {
	return s.again <= 4*s.fresh+4*int64(max)
}
