package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func saveNumbers(t *testing.T, c *Checkpoints, version uint64, nums ...uint64) {
	t.Helper()
	if err := c.Save("state", version, nil, func(w *CheckpointWriter) error {
		w.Uvarint(uint64(len(nums)))
		for _, n := range nums {
			w.Uvarint(n)
			w.String(strings.Repeat("x", int(n)))
		}
		return w.Err()
	}); err != nil {
		t.Fatal(err)
	}
}

func loadNumbers(t *testing.T, c *Checkpoints, version uint64) ([]uint64, bool) {
	t.Helper()
	var got []uint64
	_, ok, err := c.Load(context.Background(), nil, "state", version, func(r *CheckpointReader) error {
		for range r.Count(100) {
			n := r.Uvarint()
			if s := r.String(); len(s) != int(n) {
				return errors.New("wrong string")
			}
			got = append(got, n)
		}
		return r.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, ok
}

// TestCheckpointSaveIsAllOrNothing: a write that fails half way leaves
// the previous checkpoint whole; a temporary file a crash left behind is
// removed at the next load; another version is not read.
func TestCheckpointSaveIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	c := NewCheckpoints(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	saveNumbers(t, c, 1, 1, 2, 300)
	boom := errors.New("disk full")
	err := c.Save("state", 1, nil, func(w *CheckpointWriter) error {
		w.Uvarint(9)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("a failed encode answered %v", err)
	}
	if got, ok := loadNumbers(t, c, 1); !ok || len(got) != 3 || got[2] != 300 {
		t.Fatalf("after a failed write the checkpoint holds %v (%v)", got, ok)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) != 0 {
		t.Errorf("a failed write left %v", tmp)
	}
	// What a SIGKILL mid-write leaves.
	if err := os.WriteFile(filepath.Join(dir, "state.123.tmp"), []byte("feedline-checkpoint\nhalf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadNumbers(t, c, 1); !ok || len(got) != 3 {
		t.Fatalf("beside a cut-short write the checkpoint holds %v (%v)", got, ok)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) != 0 || !strings.Contains(logs.String(), "cut short") {
		t.Errorf("the cut-short write %v is still there; logs:\n%s", tmp, logs.String())
	}
	if _, ok := loadNumbers(t, c, 2); ok || !strings.Contains(logs.String(), `reason="another version"`) {
		t.Errorf("a checkpoint of another state version was used; logs:\n%s", logs.String())
	}
	if err := c.Remove("state"); err != nil {
		t.Fatal(err)
	}
	if _, ok := loadNumbers(t, c, 1); ok || !strings.Contains(logs.String(), "reason=missing") {
		t.Errorf("a removed checkpoint was used; logs:\n%s", logs.String())
	}
}

// TestCheckpointWriteSkipsUnchangedState: a state whose sequences did not
// move is not written again, and a busy one is skipped for the round.
func TestCheckpointWriteSkipsUnchangedState(t *testing.T) {
	c := NewCheckpoints(t.TempDir(), slog.New(slog.DiscardHandler))
	writes, busy := 0, false
	src := CheckpointSource{Name: "state", Version: 1, Snapshot: func(context.Context) (Positions, func(*CheckpointWriter) error, error) {
		if busy {
			return nil, nil, ErrCheckpointBusy
		}
		return Positions{"S": uint64(writes / 2)}, func(w *CheckpointWriter) error { writes++; w.Uvarint(1); return w.Err() }, nil
	}}
	for range 3 {
		if err := c.Write(context.Background(), src); err != nil {
			t.Fatal(err)
		}
	}
	if writes != 1 {
		t.Errorf("the same sequences were written %d times", writes)
	}
	busy = true
	if err := c.Write(context.Background(), src); err != nil {
		t.Errorf("a busy state failed the write: %v", err)
	}
}

func TestCheckpointBodyIsCompressedAndTheUncompressedFormatIsRead(t *testing.T) {
	t.Parallel()
	c := NewCheckpoints(t.TempDir(), slog.New(slog.DiscardHandler))
	nums := []uint64{4000, 4000, 4000, 4000}
	saveNumbers(t, c, 1, nums...)
	st, err := os.Stat(c.path("state"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 4000 {
		t.Errorf("16,000 bytes of repeated state take %d bytes on disk: not compressed", st.Size())
	}
	if got, ok := loadNumbers(t, c, 1); !ok || len(got) != 4 {
		t.Fatalf("compressed checkpoint read back as %v, %v", got, ok)
	}

	// A checkpoint of format 1 (its body as it is) still loads.
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	w := &CheckpointWriter{w: bw}
	_, _ = bw.WriteString(checkpointMagic)
	w.Uvarint(1)
	w.String("state")
	w.Uvarint(1)
	w.Varint(time.Now().UnixNano())
	w.Uvarint(0)
	w.Uvarint(2)
	for _, n := range []uint64{3, 5} {
		w.Uvarint(n)
		w.String(strings.Repeat("x", int(n)))
	}
	if err := bw.Flush(); err != nil || w.Err() != nil {
		t.Fatal(err, w.Err())
	}
	_ = binary.Write(&b, binary.LittleEndian, crc32.Checksum(b.Bytes(), castagnoli))
	if err := os.WriteFile(c.path("state"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadNumbers(t, c, 1); !ok || len(got) != 2 || got[0] != 3 || got[1] != 5 {
		t.Errorf("format-1 checkpoint read back as %v, %v", got, ok)
	}
}
