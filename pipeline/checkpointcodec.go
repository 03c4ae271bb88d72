package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// CheckpointWriter writes a checkpoint's state as length-prefixed binary:
// varints for numbers, a length then the bytes for strings. The first
// error sticks and Err reports it, so encoders write without checking
// every call.
type CheckpointWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

// Uvarint writes v.
func (w *CheckpointWriter) Uvarint(v uint64) {
	if w.err == nil {
		_, w.err = w.w.Write(w.buf[:binary.PutUvarint(w.buf[:], v)])
	}
}

// Varint writes v.
func (w *CheckpointWriter) Varint(v int64) {
	if w.err == nil {
		_, w.err = w.w.Write(w.buf[:binary.PutVarint(w.buf[:], v)])
	}
}

// Uint64 writes v in eight bytes, for values such as hashes that a varint
// would not shorten.
func (w *CheckpointWriter) Uint64(v uint64) {
	if w.err == nil {
		binary.LittleEndian.PutUint64(w.buf[:8], v)
		_, w.err = w.w.Write(w.buf[:8])
	}
}

// Bool writes b as one byte.
func (w *CheckpointWriter) Bool(b bool) {
	if w.err == nil {
		var v byte
		if b {
			v = 1
		}
		w.err = w.w.WriteByte(v)
	}
}

// String writes s with its length before it.
func (w *CheckpointWriter) String(s string) {
	w.Uvarint(uint64(len(s)))
	if w.err == nil {
		_, w.err = w.w.WriteString(s)
	}
}

// Err is the first error a write met.
func (w *CheckpointWriter) Err() error { return w.err }

// ErrCheckpointCorrupt is what reading a damaged checkpoint fails with.
var ErrCheckpointCorrupt = errors.New("checkpoint is corrupt")

// maxCheckpointString bounds one string read, so a damaged length cannot
// ask for gigabytes.
const maxCheckpointString = 16 << 20

// CheckpointReader reads what a CheckpointWriter wrote. The first error
// sticks: after it every read answers zero, and Err reports it.
type CheckpointReader struct {
	r       *bufio.Reader
	buf     [8]byte
	scratch []byte // what Bytes answers, reused
	err     error
}

func (r *CheckpointReader) fail(err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: it ends early", ErrCheckpointCorrupt)
		}
		r.err = err
	}
}

// Uvarint reads a number Uvarint wrote.
func (r *CheckpointReader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
		return 0
	}
	return v
}

// Varint reads a number Varint wrote.
func (r *CheckpointReader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r.r)
	if err != nil {
		r.fail(err)
		return 0
	}
	return v
}

// Uint64 reads a number Uint64 wrote.
func (r *CheckpointReader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if _, err := io.ReadFull(r.r, r.buf[:8]); err != nil {
		r.fail(err)
		return 0
	}
	return binary.LittleEndian.Uint64(r.buf[:8])
}

// Bool reads a Bool.
func (r *CheckpointReader) Bool() bool {
	if r.err != nil {
		return false
	}
	b, err := r.r.ReadByte()
	if err != nil {
		r.fail(err)
		return false
	}
	if b > 1 {
		r.fail(fmt.Errorf("%w: a flag holds %d", ErrCheckpointCorrupt, b))
	}
	return b == 1
}

// String reads a String.
func (r *CheckpointReader) String() string { return string(r.Bytes()) }

// Bytes reads a String into a buffer that the next read reuses: for
// looking a value up without allocating it.
func (r *CheckpointReader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	if n > maxCheckpointString {
		r.fail(fmt.Errorf("%w: a string of %d bytes", ErrCheckpointCorrupt, n))
		return nil
	}
	if uint64(cap(r.scratch)) < n {
		r.scratch = make([]byte, n)
	}
	b := r.scratch[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(err)
		return nil
	}
	return b
}

// Count reads a number of things to follow, refusing more than limit, so
// a damaged count cannot size a huge allocation.
func (r *CheckpointReader) Count(limit int) int {
	n := r.Uvarint()
	if n > uint64(min(limit, math.MaxInt32)) {
		r.fail(fmt.Errorf("%w: a count of %d is above %d", ErrCheckpointCorrupt, n, limit))
		return 0
	}
	return int(n)
}

// Err is the first error a read met.
func (r *CheckpointReader) Err() error { return r.err }
