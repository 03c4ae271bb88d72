package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

// Positions says how far into each stream a checkpoint's state goes: it
// holds every message up to and including the sequence.
type Positions map[string]uint64

// Checkpoints keeps checkpoints of derived state in a directory, one file
// per state, each with the stream sequences it covers, so a start loads
// the state and replays only the log after it. A file is written to a
// temporary name, synced and renamed, so a crash mid-write leaves the
// previous checkpoint whole.
type Checkpoints struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	written map[string]Positions // what each state's newest file covers
}

// NewCheckpoints keeps checkpoints in dir.
func NewCheckpoints(dir string, log *slog.Logger) *Checkpoints {
	if log == nil {
		log = slog.Default()
	}
	return &Checkpoints{dir: dir, log: log, written: map[string]Positions{}}
}

// Dir is where the checkpoints are.
func (c *Checkpoints) Dir() string { return c.dir }

// checkpointMagic opens every checkpoint file; checkpointFormat is the
// layout of the header and trailer, apart from each state's own version.
// Format 2 compresses the state with S2 after the header (a normalise
// catalog of a million products is mostly ids that compress well); format
// 1, uncompressed, is still read.
const (
	checkpointMagic  = "feedline-checkpoint\n"
	checkpointFormat = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (c *Checkpoints) path(name string) string { return filepath.Join(c.dir, name+".ckpt") }

// Save writes the named state's checkpoint: version is the state's
// encoding, covers the sequences it holds, encode writes the state.
func (c *Checkpoints) Save(name string, version uint64, covers Positions, encode func(*CheckpointWriter) error) (err error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	f, err := os.CreateTemp(c.dir, name+".*.tmp")
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	sum := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	w := &CheckpointWriter{w: bw}
	_, w.err = bw.WriteString(checkpointMagic)
	w.Uvarint(checkpointFormat)
	w.String(name)
	w.Uvarint(version)
	w.Varint(time.Now().UnixNano())
	streams := slices.Sorted(maps.Keys(covers))
	w.Uvarint(uint64(len(streams)))
	for _, s := range streams {
		w.String(s)
		w.Uvarint(covers[s])
	}
	body := s2.NewWriter(bw, s2.WriterConcurrency(1))
	if w.err == nil {
		w.w = bufio.NewWriterSize(body, 1<<20)
		w.err = encode(w)
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err == nil {
		w.err = body.Close()
	}
	if w.err == nil {
		w.err = bw.Flush()
	}
	if w.err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, w.err)
	}
	if err := binary.Write(f, binary.LittleEndian, sum.Sum32()); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), c.path(name)); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	// The rename lasts only once the directory is synced.
	if d, err := os.Open(c.dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("checkpoint %s: sync %s: %w", name, c.dir, err)
		}
	}
	c.mu.Lock()
	c.written[name] = maps.Clone(covers)
	c.mu.Unlock()
	return nil
}

// Remove deletes the named state's checkpoint, so the next start rebuilds
// it from the log.
func (c *Checkpoints) Remove(name string) error {
	if err := os.Remove(c.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove checkpoint %s: %w", name, err)
	}
	return nil
}

// header is what a checkpoint says of itself.
type header struct {
	format, version uint64
	name            string
	written         time.Time
	covers          Positions
}

// open checks the file's checksum, then reads its header; the reader is
// left at the state.
func (c *Checkpoints) open(name string) (*os.File, *CheckpointReader, header, error) {
	var h header
	f, err := os.Open(c.path(name))
	if err != nil {
		return nil, nil, h, err
	}
	fail := func(err error) (*os.File, *CheckpointReader, header, error) {
		_ = f.Close()
		return nil, nil, h, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if st.Size() < int64(len(checkpointMagic))+4 {
		return fail(fmt.Errorf("%w: %d bytes is too short", ErrCheckpointCorrupt, st.Size()))
	}
	sum := crc32.New(castagnoli)
	if _, err := io.Copy(sum, io.LimitReader(f, st.Size()-4)); err != nil {
		return fail(err)
	}
	var want uint32
	if err := binary.Read(f, binary.LittleEndian, &want); err != nil {
		return fail(err)
	}
	if got := sum.Sum32(); got != want {
		return fail(fmt.Errorf("%w: its checksum is %08x, the file says %08x", ErrCheckpointCorrupt, got, want))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	r := &CheckpointReader{r: bufio.NewReaderSize(io.LimitReader(f, st.Size()-4), 1<<20)}
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r.r, magic); err != nil || !bytes.Equal(magic, []byte(checkpointMagic)) {
		return fail(fmt.Errorf("%w: not a feedline checkpoint", ErrCheckpointCorrupt))
	}
	h.format = r.Uvarint()
	if r.err == nil && h.format != checkpointFormat && h.format != 1 {
		return fail(fmt.Errorf("%w: file format %d, this version reads 1 and %d", errCheckpointVersion, h.format, checkpointFormat))
	}
	h.name = r.String()
	h.version = r.Uvarint()
	h.written = time.Unix(0, r.Varint())
	n := r.Count(1 << 10)
	h.covers = make(Positions, n)
	for range n {
		s := r.String()
		h.covers[s] = r.Uvarint()
	}
	if r.err != nil {
		return fail(r.err)
	}
	if h.name != name {
		return fail(fmt.Errorf("%w: it holds %q", ErrCheckpointCorrupt, h.name))
	}
	if h.format == checkpointFormat {
		r.r = bufio.NewReaderSize(s2.NewReader(r.r), 1<<20)
	}
	return f, r, h, nil
}

var errCheckpointVersion = errors.New("checkpoint is of another version")

// Load reads the named state's checkpoint with decode when it can be
// used with the log on bus, and answers the sequences it covers. ok false
// means the state is to be rebuilt from the whole log: the checkpoint is
// missing, corrupt, of another version, older than what the log keeps
// (the stream's first sequence is past it) or newer than the log; one log
// line says which. decode must fill a fresh state, to be dropped when
// Load answers false. Temporary files of writes cut short are removed.
func (c *Checkpoints) Load(ctx context.Context, bus *Bus, name string, version uint64, decode func(*CheckpointReader) error) (covers Positions, ok bool, err error) {
	if leftovers, _ := filepath.Glob(filepath.Join(c.dir, name+".*.tmp")); len(leftovers) > 0 {
		for _, p := range leftovers {
			_ = os.Remove(p)
		}
		c.log.Info("removed a checkpoint write that was cut short", "checkpoint", name, "files", len(leftovers))
	}
	rebuild := func(reason string, err error) (Positions, bool, error) {
		args := []any{"checkpoint", name, "reason", reason, "path", c.path(name)}
		if err != nil {
			args = append(args, "err", err)
		}
		c.log.Warn("checkpoint not used; rebuilding from the whole log", args...)
		return nil, false, nil
	}
	f, r, h, err := c.open(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.log.Info("checkpoint not used; rebuilding from the whole log", "checkpoint", name, "reason", "missing", "path", c.path(name))
		return nil, false, nil
	case errors.Is(err, errCheckpointVersion):
		return rebuild("another version", err)
	case err != nil:
		return rebuild("corrupt", err)
	}
	defer f.Close()
	if h.version != version {
		return rebuild("another version", fmt.Errorf("state version %d, this version reads %d", h.version, version))
	}
	for _, stream := range slices.Sorted(maps.Keys(h.covers)) {
		seq := h.covers[stream]
		first, last, err := bus.StreamBounds(ctx, stream)
		if err != nil {
			return nil, false, fmt.Errorf("checkpoint %s: %w", name, err)
		}
		switch {
		case seq > last:
			return rebuild("newer than the log", fmt.Errorf("it covers %s to sequence %d, the stream ends at %d", stream, seq, last))
		case seq+1 < first:
			return rebuild("older than retention", fmt.Errorf("it covers %s to sequence %d, the stream now starts at %d", stream, seq, first))
		}
	}
	if err := decode(r); err != nil {
		return rebuild("corrupt", err)
	}
	if err := r.Err(); err != nil {
		return rebuild("corrupt", err)
	}
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		return rebuild("corrupt", fmt.Errorf("%w: bytes after the state", ErrCheckpointCorrupt))
	}
	c.mu.Lock()
	c.written[name] = maps.Clone(h.covers)
	c.mu.Unlock()
	c.log.Info("checkpoint loaded", "checkpoint", name, "covers", h.covers, "written", h.written.UTC().Format(time.RFC3339))
	return h.covers, true, nil
}

// CheckpointSource is a state that checkpoints itself.
type CheckpointSource struct {
	Name    string
	Version uint64 // of the state's encoding
	// Snapshot copies the state, under short locks, with the sequences it
	// covers; encode writes the copy and runs outside every lock.
	// ErrCheckpointBusy skips this round.
	Snapshot func(ctx context.Context) (covers Positions, encode func(*CheckpointWriter) error, err error)
}

// ErrCheckpointBusy says a state cannot be copied consistently just now.
var ErrCheckpointBusy = errors.New("state is busy; checkpoint later")

// Write checkpoints each source whose state moved on since its last
// checkpoint.
func (c *Checkpoints) Write(ctx context.Context, sources ...CheckpointSource) error {
	var errs []error
	for _, src := range sources {
		start := time.Now()
		covers, encode, err := src.Snapshot(ctx)
		if errors.Is(err, ErrCheckpointBusy) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint %s: %w", src.Name, err))
			continue
		}
		c.mu.Lock()
		same := maps.Equal(c.written[src.Name], covers)
		c.mu.Unlock()
		if same {
			continue
		}
		copied := time.Since(start)
		if err := c.Save(src.Name, src.Version, covers, encode); err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("checkpoint written", "checkpoint", src.Name, "covers", covers, "copied", copied.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// Run writes the sources' checkpoints every period until ctx ends. The
// final one, once the stages have drained, is the caller's Write.
func (c *Checkpoints) Run(ctx context.Context, every time.Duration, sources ...CheckpointSource) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Write(ctx, sources...); err != nil && ctx.Err() == nil {
				c.log.Warn("writing a checkpoint failed; the previous one stays, retrying later", "err", err)
			}
		}
	}
}

// StreamBounds answers the stream's first and last sequence. An empty
// stream's first is one past its last.
func (b *Bus) StreamBounds(ctx context.Context, stream string) (first, last uint64, err error) {
	state, err := b.streamState(ctx, stream)
	return state.FirstSeq, state.LastSeq, err
}

// AckFloor answers the stream sequence up to which the durable consumer
// has every message acknowledged: the work it has finished for good.
func (b *Bus) AckFloor(ctx context.Context, stream, consumer string) (uint64, error) {
	cons, err := b.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return 0, fmt.Errorf("consumer %s of %s: %w", consumer, stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s of %s: %w", consumer, stream, err)
	}
	return info.AckFloor.Stream, nil
}
