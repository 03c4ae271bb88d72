package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"feedline/schemas"
)

// ndjson reads one JSON object per line and flattens it into columns:
// nested objects become dotted keys ("offer.price"), arrays of scalars are
// joined with "\n", arrays holding objects or arrays are kept as compact
// JSON, numbers keep their source text, booleans are "true"/"false" and null
// is "". A key seen twice in one object keeps its last value, and so does a
// dotted key that a nested object spells out as well.
//
// Blank lines are skipped and do not take a row number.
type ndjson struct {
	br    *bufio.Reader
	max   int
	cols  []string
	index map[string]int
	row   int64
	err   error

	long  []byte // a line longer than the bufio buffer
	key   []byte // dotted key of the value being read
	keys  []byte // the row's dotted keys, concatenated
	vals  []byte // the row's rendered values, concatenated
	pairs []ndjsonValue

	lastCols []int // columns of the previous row's keys, in order
}

// ndjsonValue places one key and rendered value of the row being read.
type ndjsonValue struct{ keyStart, keyEnd, start, end int }

func newNDJSON(br *bufio.Reader, max int) *ndjson {
	skipBOM(br)
	return &ndjson{br: br, max: max, index: make(map[string]int)}
}

func (n *ndjson) Format() string    { return schemas.FormatNDJSON }
func (n *ndjson) Columns() []string { return n.cols[:len(n.cols):len(n.cols)] }
func (n *ndjson) Close() error {
	if n.err == nil {
		n.err = errClosed
	}
	return nil
}

func (n *ndjson) Next() (schemas.RawRow, error) {
	if n.err != nil {
		return schemas.RawRow{}, n.err
	}
	for {
		line, size, err := n.readLine()
		if err != nil {
			n.err = err
			return schemas.RawRow{}, err
		}
		if size <= n.max {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
		}
		n.row++
		if size > n.max {
			return schemas.RawRow{}, &schemas.RowError{Row: n.row, Code: schemas.CodeRowTooLong, Reason: tooLong(size, n.max)}
		}
		if reason := n.flatten(line); reason != "" {
			return schemas.RawRow{}, &schemas.RowError{Row: n.row, Code: schemas.CodeJSONInvalid, Reason: reason}
		}
		return schemas.RawRow{Row: n.row, Values: n.values()}, nil
	}
}

// readLine returns the next line without its terminator and the line's size.
// A line over the limit is read past and returned as nil.
func (n *ndjson) readLine() ([]byte, int, error) {
	chunk, err := n.br.ReadSlice('\n')
	if err == nil || (err == io.EOF && len(chunk) > 0) {
		line := trimEOL(chunk)
		return line, len(line), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("reading line %d: %w", n.row+1, err)
	}
	n.long = append(growBounded(n.long[:0], len(chunk), n.max+2), chunk...)
	size, keep := len(chunk), true
	for errors.Is(err, bufio.ErrBufferFull) {
		chunk, err = n.br.ReadSlice('\n')
		size += len(chunk)
		if keep && size > n.max+2 {
			keep, n.long = false, n.long[:0]
		}
		if keep {
			n.long = append(growBounded(n.long, len(chunk), n.max+2), chunk...)
		}
	}
	if err != nil && err != io.EOF {
		return nil, 0, fmt.Errorf("reading line %d: %w", n.row+1, err)
	}
	if !keep {
		return nil, size - (len(chunk) - len(trimEOL(chunk))), nil
	}
	line := trimEOL(n.long)
	return line, len(line), nil
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// maxJSONDepth bounds the nesting of a line, and so the recursion.
const maxJSONDepth = 1000

// flatten renders line into n.keys, n.vals and n.pairs in one pass that
// also validates it. It returns why the line is not a row, or "".
func (n *ndjson) flatten(line []byte) string {
	if !utf8.Valid(line) {
		return "the line is not valid UTF-8; save the file as UTF-8"
	}
	n.key, n.keys, n.vals, n.pairs = n.key[:0], n.keys[:0], n.vals[:0], n.pairs[:0]
	if line[0] == '{' {
		if end := n.object(line, 0, 1); end >= 0 && skipSpace(line, end) == len(line) {
			return ""
		}
	}
	// The slow path: let encoding/json explain what is wrong.
	err := json.Unmarshal(line, new(json.RawMessage))
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("the line is not valid JSON: %v (at byte %d)", syn, syn.Offset)
	case err != nil:
		return fmt.Sprintf("the line is not valid JSON: %v", err)
	case line[0] != '{':
		return fmt.Sprintf("the line is a JSON %s, not an object; write one JSON object per line", jsonKind(line[0]))
	default:
		return fmt.Sprintf("the line nests objects or arrays more than %d deep", maxJSONDepth)
	}
}

// values resolves the row's keys to columns, adding new ones in the order
// they appear, and returns the row's values.
func (n *ndjson) values() []string {
	cols := make([]int, len(n.pairs))
	for i, p := range n.pairs {
		key := n.keys[p.keyStart:p.keyEnd]
		// Lines mostly repeat the keys of the line before, in order.
		if i < len(n.lastCols) && n.cols[n.lastCols[i]] == string(key) {
			cols[i] = n.lastCols[i]
			continue
		}
		c, ok := n.index[string(key)]
		if !ok {
			c = len(n.cols)
			name := string(key)
			n.index[name] = c
			n.cols = append(n.cols, name)
		}
		cols[i] = c
	}
	n.lastCols = cols
	s := string(n.vals)
	values := make([]string, len(n.cols))
	for i, p := range n.pairs {
		values[cols[i]] = s[p.start:p.end]
	}
	return values
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// The walkers below return the index after what they read, or -1 when the
// text is not valid JSON.

// object reads the object at b[i] under the current key.
func (n *ndjson) object(b []byte, i, depth int) int {
	if depth > maxJSONDepth {
		return -1
	}
	prefix := len(n.key)
	defer func() { n.key = n.key[:prefix] }()
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		n.key = n.key[:prefix]
		if prefix > 0 {
			n.key = append(n.key, '.')
		}
		if n.key, i = appendString(n.key, b, i); i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = n.value(b, skipSpace(b, i+1), depth); i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// value reads the value at b[i] under the current key.
func (n *ndjson) value(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	start := len(n.vals)
	switch b[i] {
	case '{':
		return n.object(b, i, depth+1)
	case '[':
		i = n.array(b, i, depth+1)
	case '"':
		n.vals, i = appendString(n.vals, b, i)
	case 'n':
		i = literalEnd(b, i, "null")
	default: // numbers and booleans keep their text
		j := scalarEnd(b, i)
		if j < 0 {
			return -1
		}
		n.vals = append(n.vals, b[i:j]...)
		i = j
	}
	if i < 0 {
		return -1
	}
	keyStart := len(n.keys)
	n.keys = append(n.keys, n.key...)
	n.pairs = append(n.pairs, ndjsonValue{keyStart: keyStart, keyEnd: len(n.keys), start: start, end: len(n.vals)})
	return i
}

// array renders the array at b[i]: scalars joined with "\n" (nulls left
// out), anything holding an object or array as compact JSON.
func (n *ndjson) array(b []byte, i, depth int) int {
	end, nested := skipValue(b, i, depth)
	if end < 0 {
		return -1
	}
	if nested {
		n.vals = appendCompact(n.vals, b[i:end])
		return end
	}
	first := true
	for i = skipSpace(b, i+1); b[i] != ']'; i = skipSpace(b, i) {
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if b[i] == 'n' {
			i += len("null")
			continue
		}
		if !first {
			n.vals = append(n.vals, '\n')
		}
		first = false
		if b[i] == '"' {
			n.vals, i = appendString(n.vals, b, i)
		} else {
			j := scalarEnd(b, i)
			n.vals = append(n.vals, b[i:j]...)
			i = j
		}
	}
	return end
}

// skipValue validates the value at b[i] and returns the index after it and
// whether it is or holds an object or array inside an array.
func skipValue(b []byte, i, depth int) (end int, nested bool) {
	if i >= len(b) {
		return -1, false
	}
	switch b[i] {
	case '{', '[':
		if depth > maxJSONDepth {
			return -1, false
		}
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, false
		}
		for {
			if closer == '}' {
				if i = stringEnd(b, i); i < 0 {
					return -1, false
				}
				if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
					return -1, false
				}
				i = skipSpace(b, i+1)
			} else if i < len(b) && (b[i] == '{' || b[i] == '[') {
				nested = true
			}
			if i, _ = skipValue(b, i, depth+1); i < 0 {
				return -1, false
			}
			if i = skipSpace(b, i); i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case closer:
				return i + 1, nested
			default:
				return -1, false
			}
		}
	case '"':
		return stringEnd(b, i), false
	case 'n':
		return literalEnd(b, i, "null"), false
	default:
		return scalarEnd(b, i), false
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func literalEnd(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// scalarEnd validates the number, true or false at b[i] and returns the
// index after it.
func scalarEnd(b []byte, i int) int {
	switch b[i] {
	case 't':
		return literalEnd(b, i, "true")
	case 'f':
		return literalEnd(b, i, "false")
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digitsEnd(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digitsEnd(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsEnd(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// stringEnd validates the string at b[i] and returns the index after its
// closing quote.
func stringEnd(b []byte, i int) int {
	end, _ := scanString(b, i)
	return end
}

// scanString is stringEnd that also reports whether the string has escapes.
func scanString(b []byte, i int) (end int, escaped bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex4(b[i+1:i+5]) {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		}
	}
	return -1, false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// appendCompact appends valid JSON text without the spaces between tokens.
func appendCompact(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			j := stringEnd(b, i)
			dst = append(dst, b[i:j]...)
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// appendString validates the string at b[i], appends its unescaped contents
// and returns the index after it, or -1.
func appendString(dst, b []byte, i int) ([]byte, int) {
	end, escaped := scanString(b, i)
	if end < 0 {
		return dst, -1
	}
	if !escaped {
		return append(dst, b[i+1:end-1]...), end
	}
	for i++; i < end-1; i++ {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch b[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(b[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < end && b[i+1] == '\\' && b[i+2] == 'u' {
					r2 = hex4(b[i+3 : i+7])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, b[i])
		}
	}
	return dst, end
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
