package normalise

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// logBuffer collects what a test's stages log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func connectTestBus(t testing.TB, ctx context.Context) *pipeline.Bus {
	t.Helper()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	return bus
}

// publishUpload puts one upload's product batches on the log as another
// normalise worker would: products first..last, priced by price, and a
// deletion of one product when del is set.
func publishUpload(t *testing.T, ctx context.Context, bus *pipeline.Bus, seq uint64, first, last int, price int64, del string) {
	t.Helper()
	if err := tryPublishUpload(ctx, bus, seq, first, last, price, del); err != nil {
		t.Fatal(err)
	}
}

func tryPublishUpload(ctx context.Context, bus *pipeline.Bus, seq uint64, first, last int, price int64, del string) error {
	for start := first; start <= last; start += 100 {
		b := &schemas.ProductBatch{Upload: fmt.Sprint("u", seq), Partner: "acme", Batch: start / 100, Seq: seq, At: time.Now().UTC()}
		for i := start; i < min(start+100, last+1); i++ {
			id := fmt.Sprintf("acme:%d", i)
			b.Changes = append(b.Changes, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: id, Version: seq<<32 | uint64(i), Product: &schemas.Product{
				ID: id, Partner: "acme", SKU: fmt.Sprint(i), Title: fmt.Sprint("product ", i), Price: price + int64(i), Currency: "KRW",
			}})
		}
		if del != "" && start == first {
			b.Changes = append(b.Changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: del, Version: seq<<32 | 1<<31})
		}
		if _, err := pipeline.Publish(ctx, bus.Publisher(), b); err != nil {
			return err
		}
	}
	return nil
}

// rebuilt is a stage rebuilt on bus, with checkpoints in dir ("" for none).
func rebuilt(t testing.TB, ctx context.Context, bus *pipeline.Bus, dir string, logs *logBuffer) *Stage {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, nil))
	s := newStage(nil, nil, nil, log)
	if dir != "" {
		s.checkpoints = pipeline.NewCheckpoints(dir, log)
	}
	if err := s.rebuild(ctx, bus); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameCatalog(t *testing.T, what string, got, want *Stage) {
	t.Helper()
	if !reflect.DeepEqual(got.cat.partners, want.cat.partners) {
		t.Errorf("%s: the catalog holds %d products, a full replay %d, and they differ", what, got.cat.size(), want.cat.size())
		shown := 0
		for partner, ps := range want.cat.partners {
			for id, e := range ps {
				if g, ok := got.cat.partners[partner][id]; (!ok || g != e) && shown < 5 {
					t.Errorf("  %s: got %+v (%v), want %+v", id, g, ok, e)
					shown++
				}
			}
			for id, g := range got.cat.partners[partner] {
				if _, ok := ps[id]; !ok && shown < 5 {
					t.Errorf("  %s: got %+v, not in the other", id, g)
					shown++
				}
			}
		}
	}
	if got.applied.Load() != want.applied.Load() {
		t.Errorf("%s: applied up to %d, a full replay to %d", what, got.applied.Load(), want.applied.Load())
	}
	// Change detection answers alike: the same row is unchanged, a new
	// price a change from the same old price.
	rb := batch(99, 0, []string{"5", "product 5", "1005"}, []string{"6", "product 6", "1"}, []string{"4999", "new", "7"})
	m := schemas.Mapping{Fields: map[string]schemas.FieldSource{"id": {"sku"}, "title": {"name"}, "price": {"price"}}, Defaults: map[string]string{"currency": "KRW"}}
	a, _, _, _, err := got.normalise(ctx(t), rb, m)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, _, err := want.normalise(ctx(t), rb, m)
	if err != nil {
		t.Fatal(err)
	}
	a.At, b.At = time.Time{}, time.Time{}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s: change detection differs from a full replay:\n got  %+v\n want %+v", what, a, b)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestCatalogCheckpointReplaysOnlyTheTail: a start with a checkpoint
// loads it and folds the batches after it into the same catalog a full
// replay builds; a missing, corrupt, older-than-retention or newer-than-
// the-log checkpoint each fall back to the full replay, saying why.
func TestCatalogCheckpointReplaysOnlyTheTail(t *testing.T) {
	c := ctx(t)
	bus := connectTestBus(t, c)
	dir := t.TempDir()
	publishUpload(t, c, bus, 1, 1, 3000, 1000, "")

	logs := &logBuffer{}
	first := rebuilt(t, c, bus, dir, logs)
	if !strings.Contains(logs.String(), "reason=missing") {
		t.Errorf("a first start says the checkpoint is missing; logs:\n%s", logs)
	}
	if err := first.checkpoints.Write(c, first.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	at := first.applied.Load()
	// The tail: price changes, a deletion and new products.
	publishUpload(t, c, bus, 2, 2000, 3500, 500, "acme:7")

	logs = &logBuffer{}
	resumed := rebuilt(t, c, bus, dir, logs)
	if !strings.Contains(logs.String(), "checkpoint loaded") || !strings.Contains(logs.String(), fmt.Sprintf("from=%d", at+1)) {
		t.Fatalf("the start did not resume after sequence %d; logs:\n%s", at, logs)
	}
	full := rebuilt(t, c, bus, "", &logBuffer{})
	sameCatalog(t, "checkpoint and tail", resumed, full)
	if e, ok := resumed.cat.get("acme", "acme:7"); !ok || !e.deleted {
		t.Errorf("the deletion in the tail: %+v %v", e, ok)
	}

	t.Run("corrupt", func(t *testing.T) {
		path := filepath.Join(dir, CheckpointName+".ckpt")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		good := bytes.Clone(data)
		data[len(data)/2] ^= 0x40
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(path, good, 0o644)
		logs := &logBuffer{}
		s := rebuilt(t, c, bus, dir, logs)
		if !strings.Contains(logs.String(), "reason=corrupt") || !strings.Contains(logs.String(), "checksum") {
			t.Errorf("no log line says the checkpoint is corrupt:\n%s", logs)
		}
		sameCatalog(t, "after a corrupt checkpoint", s, full)
		// A truncated file, as a full disk may leave, too.
		if err := os.WriteFile(path, good[:len(good)/3], 0o644); err != nil {
			t.Fatal(err)
		}
		logs = &logBuffer{}
		s = rebuilt(t, c, bus, dir, logs)
		if !strings.Contains(logs.String(), "reason=corrupt") {
			t.Errorf("no log line says the truncated checkpoint is corrupt:\n%s", logs)
		}
		sameCatalog(t, "after a truncated checkpoint", s, full)
	})

	t.Run("missing", func(t *testing.T) {
		empty := t.TempDir()
		logs := &logBuffer{}
		s := rebuilt(t, c, bus, empty, logs)
		if !strings.Contains(logs.String(), "reason=missing") {
			t.Errorf("no log line says the checkpoint is missing:\n%s", logs)
		}
		sameCatalog(t, "without a checkpoint", s, full)
	})

	t.Run("newer than the log", func(t *testing.T) {
		fresh := connectTestBus(t, c)
		publishUpload(t, c, fresh, 1, 1, 50, 1000, "")
		logs := &logBuffer{}
		s := rebuilt(t, c, fresh, dir, logs)
		if !strings.Contains(logs.String(), `reason="newer than the log"`) {
			t.Errorf("no log line says the checkpoint is ahead of the log:\n%s", logs)
		}
		sameCatalog(t, "with a checkpoint of another log", s, rebuilt(t, c, fresh, "", &logBuffer{}))
	})

	t.Run("older than retention", func(t *testing.T) {
		// The log lost what came before the tail: the checkpoint cannot
		// be continued, and the state is what the log still holds.
		st, err := bus.JetStream().Stream(c, topology.StreamProducts)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Purge(c, jetstream.WithPurgeSequence(at+5)); err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		s := rebuilt(t, c, bus, dir, logs)
		if !strings.Contains(logs.String(), `reason="older than retention"`) {
			t.Errorf("no log line says the checkpoint is older than retention:\n%s", logs)
		}
		sameCatalog(t, "with a checkpoint older than retention", s, rebuilt(t, c, bus, "", &logBuffer{}))
	})
}

// TestCatalogCheckpointWhileFolding copies the catalog while batches are
// folded in: whatever moment a copy is taken, the copy and the log after
// the sequence it names rebuild the same catalog as the whole log.
func TestCatalogCheckpointWhileFolding(t *testing.T) {
	c := ctx(t)
	bus := connectTestBus(t, c)
	dir := t.TempDir()
	s := rebuilt(t, c, bus, dir, &logBuffer{})
	follow, stop := context.WithCancel(c)
	defer stop()
	s.Follow(follow)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); seq <= 20; seq++ {
			if err := tryPublishUpload(c, bus, seq, int(seq)*50, int(seq)*50+400, int64(seq)*10, fmt.Sprintf("acme:%d", seq*50-3)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	written := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := s.checkpoints.Write(c, s.Checkpoint()); err != nil {
			t.Fatal(err)
		}
		written++
		last, err := bus.LastSequence(c, topology.StreamProducts)
		if err != nil {
			t.Fatal(err)
		}
		resumed := rebuilt(t, c, bus, dir, &logBuffer{})
		full := rebuilt(t, c, bus, "", &logBuffer{})
		if full.applied.Load() == resumed.applied.Load() && full.applied.Load() >= last {
			sameCatalog(t, fmt.Sprintf("checkpoint %d", written), resumed, full)
		}
	}
	if written < 2 {
		t.Fatalf("only %d checkpoints were written while folding", written)
	}
}
