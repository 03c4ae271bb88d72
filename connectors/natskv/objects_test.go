package natskv

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/pipeline"
	"feedline/topology"
)

// failingReader yields n bytes, then fails like a connection that broke.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func testFiles(t *testing.T) (Files, *pipeline.Bus) {
	t.Helper()
	ctx := context.Background()
	b := testBus(t)
	store, err := b.Objects(ctx, topology.ObjectUploads)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.ObjectsStream(ctx, topology.ObjectUploads)
	if err != nil {
		t.Fatal(err)
	}
	return Files{Store: store, Stream: stream}, b
}

func streamMsgs(t *testing.T, f Files) uint64 {
	t.Helper()
	info, err := f.Stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPutOfABrokenStreamKeepsNothing(t *testing.T) {
	t.Parallel()
	f, _ := testFiles(t)
	ctx := context.Background()
	if _, err := f.Put(ctx, "cut", &failingReader{n: 1 << 20}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("put of a broken stream: %v", err)
	}
	if n := streamMsgs(t, f); n != 0 {
		t.Errorf("a broken put left %d messages", n)
	}
	if _, err := f.Open(ctx, "cut"); err == nil {
		t.Error("a broken put can be opened")
	}
}

func TestSweepRemovesOnlyWhatNoUploadNeeds(t *testing.T) {
	t.Parallel()
	f, b := testFiles(t)
	ctx := context.Background()
	for _, name := range []string{"kept", "orphan"} {
		if _, err := f.Put(ctx, name, strings.NewReader(strings.Repeat(name, 100_000))); err != nil {
			t.Fatal(err)
		}
	}
	// Chunks of a write whose process died, and of one still arriving.
	for _, nuid := range []string{"deadwrite", "livewrite"} {
		if nuid == "livewrite" {
			time.Sleep(50 * time.Millisecond)
		}
		for range 3 {
			if _, err := b.JetStream().Publish(ctx, "$O."+topology.ObjectUploads+".C."+nuid, []byte(strings.Repeat("c", 1000))); err != nil {
				t.Fatal(err)
			}
		}
	}
	last, err := f.Stream.GetLastMsgForSubject(ctx, "$O."+topology.ObjectUploads+".C.deadwrite")
	if err != nil {
		t.Fatal(err)
	}
	cutoff := last.Time.Add(25 * time.Millisecond)
	kept := func(_ context.Context, name string, stored time.Time) (bool, error) {
		if stored.IsZero() || stored.After(cutoff) {
			t.Errorf("file %s stored at %s, after the cutoff %s", name, stored, cutoff)
		}
		return name == "kept", nil
	}
	sw, err := f.Sweep(ctx, cutoff, kept)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Files != 1 || sw.Writes != 1 || sw.Chunks != 3 {
		t.Errorf("swept %+v, want the orphaned file and the dead write's 3 chunks", sw)
	}
	if _, err := f.Open(ctx, "kept"); err != nil {
		t.Errorf("the kept file is gone: %v", err)
	}
	if _, err := f.Open(ctx, "orphan"); err == nil {
		t.Error("the orphaned file is still there")
	}
	subjects := map[string]uint64{}
	info, err := f.Stream.Info(ctx, jetstream.WithSubjectFilter("$O."+topology.ObjectUploads+".C.>"))
	if err != nil {
		t.Fatal(err)
	}
	for s, n := range info.State.Subjects {
		subjects[strings.TrimPrefix(s, "$O."+topology.ObjectUploads+".C.")] = n
	}
	if subjects["deadwrite"] != 0 || subjects["livewrite"] != 3 {
		t.Errorf("chunks left per write: %v; want the live write's 3 only besides the kept file", subjects)
	}
	// A second sweep finds nothing more.
	if sw, err := f.Sweep(ctx, cutoff, kept); err != nil || sw != (Swept{}) {
		t.Errorf("second sweep: %+v %v", sw, err)
	}
}
