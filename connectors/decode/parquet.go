package decode

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"feedline/schemas"
)

// parquetBatch is how many rows are read from the file at a time.
const parquetBatch = 256

// parquetFile reads a Parquet file spooled to disk. Leaf columns are named
// by their dotted path, with the wrapper groups of LIST and MAP left out
// ("tags", not "tags.list.element"); repeated values are joined with "\n".
type parquetFile struct {
	spool  *os.File
	reader *parquet.GenericReader[any]
	leaves []parquetLeaf
	cols   []string
	max    int
	row    int64
	err    error

	batch   []parquet.Row
	pending []parquetRow // rendered rows of the batch not yet returned
	buf     []byte
	starts  []int
	ends    []int
}

// parquetRow is one rendered row, or why it could not be rendered.
type parquetRow struct {
	values []string
	code   string
	reason string
}

// parquetLeaf is one leaf column and how its values become text.
type parquetLeaf struct {
	name   string
	render func(dst []byte, v parquet.Value) []byte
	text   bool // byte arrays that must be UTF-8
}

func openParquet(r io.Reader, opt schemas.DecoderOptions) (_ *parquetFile, err error) {
	spool, err := os.CreateTemp(opt.TempDir, "feedline-upload-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("spooling the Parquet file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = spool.Close()
			_ = os.Remove(spool.Name())
		}
	}()
	size, err := io.Copy(spool, io.LimitReader(r, opt.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("spooling the Parquet file: %w", err)
	}
	if size > opt.MaxBytes {
		return nil, fmt.Errorf("%w: the Parquet file is larger than %s, the most feedline reads; split the feed into smaller files", ErrTooLarge, sizeText(opt.MaxBytes))
	}
	p := &parquetFile{spool: spool, max: opt.MaxRowBytes}
	if err := guard(func() error { return p.open(size) }); err != nil {
		return nil, err
	}
	return p, nil
}

// guard turns a panic of the Parquet library on damaged input into an error:
// uploads are untrusted and must never take the worker down.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: the Parquet data cannot be read (%v); export the file again", ErrCorrupt, v)
		}
	}()
	return f()
}

func (p *parquetFile) open(size int64) error {
	if err := checkFooter(p.spool, size); err != nil {
		return err
	}
	f, err := parquet.OpenFile(p.spool, size)
	if err != nil {
		return fmt.Errorf("%w: %v; check that the upload is complete, or export the file again", ErrCorrupt, err)
	}
	schema := f.Schema()
	var leaves []parquetLeaf
	walkParquet(schema, nil, &leaves)
	if len(leaves) != len(schema.Columns()) {
		return fmt.Errorf("%w: the Parquet schema has %d columns but %d could be named", ErrCorrupt, len(schema.Columns()), len(leaves))
	}
	if len(leaves) == 0 {
		return fmt.Errorf("%w: the Parquet file has no columns", ErrNoHeader)
	}
	cols := make([]string, len(leaves))
	for i, l := range leaves {
		cols[i] = l.name
	}
	if len(slices.Compact(slices.Sorted(slices.Values(cols)))) != len(cols) {
		// Leaving out the list wrappers made two names equal: use full paths.
		for i, path := range schema.Columns() {
			cols[i] = strings.Join(path, ".")
			leaves[i].name = cols[i]
		}
	}
	p.leaves, p.cols = leaves, cols
	p.reader = parquet.NewGenericReader[any](f)
	p.batch = make([]parquet.Row, parquetBatch)
	p.starts, p.ends = make([]int, len(cols)), make([]int, len(cols))
	return nil
}

// checkFooter rejects a footer length that does not fit in the file before
// the library allocates a buffer of that length.
func checkFooter(f io.ReaderAt, size int64) error {
	var tail [8]byte
	if size < 12 {
		return fmt.Errorf("%w: the Parquet file is only %d bytes; check that the upload is complete", ErrCorrupt, size)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("reading the spooled Parquet file: %w", err)
	}
	if string(tail[4:]) == "PARE" {
		return fmt.Errorf("%w: the Parquet file is encrypted; upload it unencrypted", ErrUnsupported)
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("%w: the Parquet file has no footer; check that the upload is complete", ErrCorrupt)
	}
	if footer := int64(binary.LittleEndian.Uint32(tail[:4])); footer > size-12 {
		return fmt.Errorf("%w: the Parquet footer claims %d bytes of a %d byte file; export the file again", ErrCorrupt, footer, size)
	}
	return nil
}

// walkParquet lists the leaf columns under node in column order.
func walkParquet(node parquet.Node, path []string, out *[]parquetLeaf) {
	if node.Leaf() {
		*out = append(*out, leafOf(strings.Join(path, "."), node.Type()))
		return
	}
	fields := node.Fields()
	if lt := node.Type().LogicalType(); lt != nil && len(fields) == 1 && !fields[0].Leaf() {
		inner := fields[0].Fields()
		switch lt.Value.(type) {
		case *format.ListType:
			// name (LIST) { repeated group list { element } }: the element
			// takes the list's name.
			if len(inner) == 1 {
				walkParquet(inner[0], path, out)
				return
			}
			fields = inner
		case *format.MapType:
			fields = inner // name.key, name.value
		}
	}
	for _, f := range fields {
		walkParquet(f, append(slices.Clip(path), f.Name()), out)
	}
}

func (p *parquetFile) Format() string    { return schemas.FormatParquet }
func (p *parquetFile) Columns() []string { return p.cols[:len(p.cols):len(p.cols)] }

func (p *parquetFile) Close() error {
	if p.spool == nil {
		return nil
	}
	_ = guard(p.reader.Close) // the spool file is removed either way
	err := p.spool.Close()
	if rerr := os.Remove(p.spool.Name()); err == nil {
		err = rerr
	}
	p.spool, p.pending = nil, nil
	if p.err == nil {
		p.err = errClosed
	}
	return err
}

func (p *parquetFile) Next() (schemas.RawRow, error) {
	if len(p.pending) == 0 && p.err == nil {
		p.err = guard(p.fill)
	}
	if len(p.pending) == 0 {
		return schemas.RawRow{}, p.err
	}
	r := p.pending[0]
	p.pending = p.pending[1:]
	p.row++
	if r.reason != "" {
		return schemas.RawRow{}, &schemas.RowError{Row: p.row, Code: r.code, Reason: r.reason}
	}
	return schemas.RawRow{Row: p.row, Values: r.values}, nil
}

// fill reads and renders the next batch of rows. Values point into the
// reader's pages, so a batch is rendered to strings before the next read.
func (p *parquetFile) fill() error {
	n, err := p.reader.ReadRows(p.batch)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%w: reading Parquet row %d: %v; export the file again", ErrCorrupt, p.row+int64(n)+1, err)
	}
	p.pending = p.pending[:0]
	for _, row := range p.batch[:n] {
		p.pending = append(p.pending, p.render(row))
	}
	if n == 0 {
		return io.EOF
	}
	return nil
}

func (p *parquetFile) render(row parquet.Row) parquetRow {
	buf := p.buf[:0]
	for i := range p.starts {
		p.starts[i], p.ends[i] = 0, 0
	}
	prev := -1
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(p.leaves) {
			return parquetRow{code: schemas.CodeValueUnreadable, reason: fmt.Sprintf("a value names column %d, the schema has %d", c, len(p.leaves))}
		}
		if v.IsNull() {
			continue
		}
		if c == prev {
			buf = append(buf, '\n') // the next value of a repeated column
		} else {
			p.starts[c] = len(buf)
			prev = c
		}
		start := len(buf)
		leaf := &p.leaves[c]
		buf = leaf.render(buf, v)
		if leaf.text && !utf8.Valid(buf[start:]) {
			p.buf = buf
			return parquetRow{code: schemas.CodeEncodingInvalid, reason: fmt.Sprintf("column %q is not valid UTF-8", leaf.name)}
		}
		p.ends[c] = len(buf)
	}
	p.buf = buf
	if len(buf) > p.max {
		return parquetRow{code: schemas.CodeRowTooLong, reason: tooLong(len(buf), p.max)}
	}
	s := string(buf)
	values := make([]string, len(p.leaves))
	for c := range values {
		values[c] = s[p.starts[c]:p.ends[c]]
	}
	return parquetRow{values: values}
}

// leafOf picks how a leaf column's values are rendered from its physical
// and logical type.
func leafOf(name string, t parquet.Type) parquetLeaf {
	leaf := parquetLeaf{name: name}
	var logical format.LogicalTypeValue
	if lt := t.LogicalType(); lt != nil {
		logical = lt.Value
	}
	switch lt := logical.(type) {
	case *format.TimestampType:
		unit := unitOf(&lt.Unit)
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			return epochTime(v.Int64(), unit).AppendFormat(dst, time.RFC3339Nano)
		}
		return leaf
	case *format.DateType:
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			return time.Unix(int64(v.Int32())*86400, 0).UTC().AppendFormat(dst, time.DateOnly)
		}
		return leaf
	case *format.TimeType:
		unit := unitOf(&lt.Unit)
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			n := v.Int64()
			if t.Kind() == parquet.Int32 {
				n = int64(v.Int32())
			}
			return time.Unix(0, 0).UTC().Add(time.Duration(n)*unit).AppendFormat(dst, "15:04:05.999999999")
		}
		return leaf
	case *format.DecimalType:
		scale := int(lt.Scale)
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			switch t.Kind() {
			case parquet.Int32:
				return appendDecimal(dst, strconv.FormatInt(int64(v.Int32()), 10), scale)
			case parquet.Int64:
				return appendDecimal(dst, strconv.FormatInt(v.Int64(), 10), scale)
			default:
				return appendDecimal(dst, bigEndianInt(v.ByteArray()).String(), scale)
			}
		}
		return leaf
	case *format.IntType:
		if !lt.IsSigned {
			leaf.render = func(dst []byte, v parquet.Value) []byte {
				if t.Kind() == parquet.Int32 {
					return strconv.AppendUint(dst, uint64(v.Uint32()), 10)
				}
				return strconv.AppendUint(dst, v.Uint64(), 10)
			}
			return leaf
		}
	case *format.UUIDType:
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			b := v.ByteArray()
			if len(b) != 16 {
				return append(dst, b...)
			}
			return fmt.Appendf(dst, "%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		}
		return leaf
	}
	switch t.Kind() {
	case parquet.Boolean:
		leaf.render = func(dst []byte, v parquet.Value) []byte { return strconv.AppendBool(dst, v.Boolean()) }
	case parquet.Int32:
		leaf.render = func(dst []byte, v parquet.Value) []byte { return strconv.AppendInt(dst, int64(v.Int32()), 10) }
	case parquet.Int64:
		leaf.render = func(dst []byte, v parquet.Value) []byte { return strconv.AppendInt(dst, v.Int64(), 10) }
	case parquet.Int96:
		// INT96 is the legacy timestamp of Spark and Impala: nanoseconds of
		// the day, then the Julian day.
		leaf.render = func(dst []byte, v parquet.Value) []byte {
			i := v.Int96()
			nanos := int64(i[1])<<32 | int64(i[0])
			days := int64(i[2]) - 2440588 // Julian day of 1970-01-01
			return time.Unix(days*86400, nanos).UTC().AppendFormat(dst, time.RFC3339Nano)
		}
	case parquet.Float:
		leaf.render = func(dst []byte, v parquet.Value) []byte { return appendFloat(dst, float64(v.Float()), 32) }
	case parquet.Double:
		leaf.render = func(dst []byte, v parquet.Value) []byte { return appendFloat(dst, v.Double(), 64) }
	default: // byte arrays: strings, enums, JSON, raw bytes
		leaf.text = true
		leaf.render = func(dst []byte, v parquet.Value) []byte { return append(dst, v.ByteArray()...) }
	}
	return leaf
}

func unitOf(u *format.TimeUnit) time.Duration {
	if u == nil || u.Value == nil {
		return time.Millisecond
	}
	return u.Value.Duration()
}

// epochTime converts n units since the epoch without overflowing
// time.Duration for dates far from 1970.
func epochTime(n int64, unit time.Duration) time.Time {
	per := int64(time.Second / unit)
	sec, frac := n/per, n%per
	if frac < 0 {
		sec, frac = sec-1, frac+per
	}
	return time.Unix(sec, frac*int64(unit)).UTC()
}

// appendFloat writes a float the way JSON does: plain digits unless the
// exponent is extreme.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, f, 'g', -1, bits)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}

// appendDecimal writes an unscaled integer with scale digits after the point.
func appendDecimal(dst []byte, digits string, scale int) []byte {
	if scale <= 0 {
		dst = append(dst, digits...)
		for range -scale {
			dst = append(dst, '0')
		}
		return dst
	}
	if strings.HasPrefix(digits, "-") {
		dst = append(dst, '-')
		digits = digits[1:]
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...)
}

// bigEndianInt reads a two's complement big-endian integer.
func bigEndianInt(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}
