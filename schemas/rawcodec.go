package schemas

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Raw batches are the hottest payload (every source row passes once), so
// rows travel in a compact binary form after a JSON header:
//
//	'R' 1 | uvarint len(header) | header JSON (RawBatch without Rows)
//	uvarint rows | per row: uvarint row number, uvarint values, per value: uvarint len, bytes
const rawMagic, rawVersion = 'R', 1

// MarshalRawBatch encodes a raw batch for the bus.
func MarshalRawBatch(b *RawBatch) ([]byte, error) {
	rows := b.Rows
	hb := *b
	hb.Rows = nil
	header, err := json.Marshal(&hb)
	if err != nil {
		return nil, err
	}
	size := 2 + binary.MaxVarintLen64 + len(header) + binary.MaxVarintLen64
	for _, r := range rows {
		size += 2 * binary.MaxVarintLen64
		for _, v := range r.Values {
			size += binary.MaxVarintLen64 + len(v)
		}
	}
	out := make([]byte, 0, size)
	out = append(out, rawMagic, rawVersion)
	out = binary.AppendUvarint(out, uint64(len(header)))
	out = append(out, header...)
	out = binary.AppendUvarint(out, uint64(len(rows)))
	for _, r := range rows {
		out = binary.AppendUvarint(out, uint64(r.Row))
		out = binary.AppendUvarint(out, uint64(len(r.Values)))
		for _, v := range r.Values {
			out = binary.AppendUvarint(out, uint64(len(v)))
			out = append(out, v...)
		}
	}
	return out, nil
}

var errRawBatch = errors.New("raw batch is damaged")

// UnmarshalRawBatch decodes what MarshalRawBatch wrote. The values share
// one copy of data, so decoding allocates once per batch, not per value.
func UnmarshalRawBatch(data []byte, b *RawBatch) error {
	if len(data) < 2 || data[0] != rawMagic {
		return fmt.Errorf("%w: not a raw batch", errRawBatch)
	}
	if data[1] != rawVersion {
		return fmt.Errorf("%w: unknown version %d", errRawBatch, data[1])
	}
	s := string(data) // one copy; every value below is a substring of it
	p := 2
	next := func() (int, error) {
		v, n := binary.Uvarint(data[p:])
		if n <= 0 || v > 1<<40 {
			return 0, fmt.Errorf("%w at byte %d", errRawBatch, p)
		}
		p += n
		return int(v), nil
	}
	hl, err := next()
	if err != nil {
		return err
	}
	if hl > len(data)-p {
		return fmt.Errorf("%w: header runs past the end", errRawBatch)
	}
	if err := json.Unmarshal(data[p:p+hl], b); err != nil {
		return fmt.Errorf("%w: %w", errRawBatch, err)
	}
	p += hl
	n, err := next()
	if err != nil {
		return err
	}
	if n > len(data) { // every row takes at least one byte
		return fmt.Errorf("%w: %d rows cannot fit", errRawBatch, n)
	}
	b.Rows = make([]RawRow, n)
	for i := range b.Rows {
		row, err := next()
		if err != nil {
			return err
		}
		nv, err := next()
		if err != nil {
			return err
		}
		if nv > len(data)-p {
			return fmt.Errorf("%w: %d values cannot fit", errRawBatch, nv)
		}
		vals := make([]string, nv)
		for j := range vals {
			l, err := next()
			if err != nil {
				return err
			}
			if l > len(s)-p {
				return fmt.Errorf("%w: value runs past the end", errRawBatch)
			}
			vals[j] = s[p : p+l]
			p += l
		}
		b.Rows[i] = RawRow{Row: int64(row), Values: vals}
	}
	if p != len(data) {
		return fmt.Errorf("%w: %d bytes left over", errRawBatch, len(data)-p)
	}
	return nil
}
