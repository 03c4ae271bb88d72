package natskv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Files implements schemas.FileStore on a JetStream object store, which
// chunks the stream, so a 2 GB file never sits in memory.
type Files struct {
	Store jetstream.ObjectStore
	// Stream is the object store's own stream; Sweep reads its chunk
	// subjects. Nil leaves chunks of unfinished writes alone.
	Stream jetstream.Stream
}

// Put streams r into the store under name. When r fails, the chunks already
// written are purged, so a body cut short leaves nothing behind.
func (f Files) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	info, err := f.Store.Put(ctx, jetstream.ObjectMeta{Name: name}, r)
	if err != nil {
		return 0, fmt.Errorf("store file %s: %w", name, err)
	}
	return int64(info.Size), nil
}

// Open streams a stored file.
func (f Files) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	res, err := f.Store.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("file %s: %w", name, schemas.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open file %s: %w", name, err)
	}
	return res, nil
}

// Delete removes a stored file and its chunks; a missing file is no error.
func (f Files) Delete(ctx context.Context, name string) error {
	err := f.Store.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete file %s: %w", name, err)
	}
	return nil
}

// Swept counts what a sweep removed.
type Swept struct {
	Files  int    // stored files no upload refers to
	Writes int    // writes that never finished (the process died mid-body)
	Chunks uint64 // the chunks those writes left
}

// Sweep removes, of what was last written before cutoff, the files for which
// kept answers false and the chunks of writes that never finished. A write
// in progress elsewhere is younger than the cutoff its caller chose. kept
// is told when the file was stored.
func (f Files) Sweep(ctx context.Context, cutoff time.Time, kept func(ctx context.Context, name string, stored time.Time) (bool, error)) (Swept, error) {
	var sw Swept
	infos, err := f.Store.List(ctx, jetstream.ListObjectsShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return sw, fmt.Errorf("list stored files: %w", err)
	}
	finished := make(map[string]bool, len(infos))
	for _, info := range infos {
		finished[info.NUID] = true
		if info.Deleted || !info.ModTime.Before(cutoff) {
			continue
		}
		ok, err := kept(ctx, info.Name, info.ModTime)
		if err != nil {
			return sw, err
		}
		if !ok {
			if err := f.Delete(ctx, info.Name); err != nil {
				return sw, err
			}
			sw.Files++
		}
	}
	if f.Stream == nil {
		return sw, nil
	}
	status, err := f.Store.Status(ctx)
	if err != nil {
		return sw, fmt.Errorf("object store status: %w", err)
	}
	prefix := "$O." + status.Bucket() + ".C."
	info, err := f.Stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return sw, fmt.Errorf("list file chunks: %w", err)
	}
	for subject, msgs := range info.State.Subjects {
		if finished[strings.TrimPrefix(subject, prefix)] {
			continue
		}
		last, err := f.Stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return sw, fmt.Errorf("read chunk %s: %w", subject, err)
		}
		if !last.Time.Before(cutoff) {
			continue
		}
		if err := f.Stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return sw, fmt.Errorf("purge chunks %s: %w", subject, err)
		}
		sw.Writes++
		sw.Chunks += msgs
	}
	return sw, nil
}
