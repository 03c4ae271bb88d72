package natskv

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Files implements schemas.FileStore on a JetStream object store, which
// chunks the stream, so a 2 GB file never sits in memory.
type Files struct {
	Store jetstream.ObjectStore
}

// Put streams r into the store under name.
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
