package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func compressionTopology(on bool) Topology {
	return Topology{
		Streams:      []StreamSpec{{Name: "LOG", Subjects: []string{"log.>"}, Duplicates: testDuplicates, Compressed: on}},
		ObjectStores: []ObjectStoreSpec{{Name: "blobs", Description: "stored files", Compressed: on}},
	}
}

func compressionOf(t *testing.T, b *Bus) (stream, objects jetstream.StoreCompression) {
	t.Helper()
	ctx := context.Background()
	for name, into := range map[string]*jetstream.StoreCompression{"LOG": &stream, "OBJ_blobs": &objects} {
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		*into = st.CachedInfo().Config.Compression
	}
	return stream, objects
}

// A stream and an object store declared compressed report S2, and so do
// ones an earlier start declared uncompressed, once declared again: an
// existing deployment's data directory stops growing at full size.
func TestDeclareCompressesStreamsAndObjectStores(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := Connect(ctx, BusConfig{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Declare(ctx, compressionTopology(false)); err != nil {
		t.Fatal(err)
	}
	if s, o := compressionOf(t, b); s != jetstream.NoCompression || o != jetstream.NoCompression {
		t.Fatalf("declared uncompressed: stream %s, object store %s", s, o)
	}
	publish(t, b, "log.a", "m1", `{"kept":true}`)

	if err := b.Declare(ctx, compressionTopology(true)); err != nil {
		t.Fatal(err)
	}
	if s, o := compressionOf(t, b); s != jetstream.S2Compression || o != jetstream.S2Compression {
		t.Errorf("declared again compressed: stream %s, object store %s; want s2 for both", s, o)
	}
	st, err := b.js.Stream(ctx, "LOG")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetMsg(ctx, 1); err != nil || string(m.Data) != `{"kept":true}` {
		t.Errorf("message written before compression: %v %v", m, err)
	}
	// The server compresses new blocks once it opens the stream with the
	// setting, at its next start; what was written before stays readable.
	b.Close()
	b, err = Connect(ctx, BusConfig{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Declare(ctx, compressionTopology(true)); err != nil {
		t.Fatal(err)
	}
	if s, o := compressionOf(t, b); s != jetstream.S2Compression || o != jetstream.S2Compression {
		t.Errorf("after a restart: stream %s, object store %s; want s2 for both", s, o)
	}
	if st, err = b.js.Stream(ctx, "LOG"); err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetMsg(ctx, 1); err != nil || string(m.Data) != `{"kept":true}` {
		t.Errorf("message written before compression, after a restart: %v %v", m, err)
	}

	// A fresh declare compresses from the start.
	fresh, err := Connect(ctx, BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Declare(ctx, compressionTopology(true)); err != nil {
		t.Fatal(err)
	}
	if s, o := compressionOf(t, fresh); s != jetstream.S2Compression || o != jetstream.S2Compression {
		t.Errorf("declared compressed: stream %s, object store %s; want s2 for both", s, o)
	}
}
