package natskv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

func testBus(t *testing.T) *pipeline.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLedgerFirstNormaliseRecordWinsAndStatusFolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	kv, err := b.KV(ctx, topology.BucketUploads)
	if err != nil {
		t.Fatal(err)
	}
	l := Ledger{KV: kv}
	if err := l.Create(ctx, schemas.UploadEvent{ID: "u1", Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.NormalisedBatches(ctx, "u1"); err != nil || n != 0 {
		t.Fatalf("before any batch: %d, %v", n, err)
	}
	if err := l.RecordNormalise(ctx, "u1", 0, schemas.NormaliseRecord{Read: 3, Accepted: 3}); err != nil {
		t.Fatal(err)
	}
	// A redelivered batch finds everything unchanged, but the first count stands.
	if err := l.RecordNormalise(ctx, "u1", 0, schemas.NormaliseRecord{Read: 3, Unchanged: 3}); err != nil {
		t.Fatal(err)
	}
	if p, err := l.Progress(ctx, "u1"); err != nil || p.Normalise.Accepted != 3 || p.Normalise.Unchanged != 0 || p.Normalise.Read != 3 {
		t.Fatalf("second record changed the first: %+v %v", p.Normalise, err)
	}
	// Counted but not yet in the log: the upload's close must not count it.
	if n, err := l.NormalisedBatches(ctx, "u1"); err != nil || n != 0 {
		t.Fatalf("normalised batches before the batch is stored = %d, %v", n, err)
	}
	for range 2 {
		if err := l.RecordStored(ctx, "u1", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.NormalisedBatches(ctx, "u1"); err != nil || n != 1 {
		t.Fatalf("normalised batches = %d, %v", n, err)
	}
	if _, err := l.Ingested(ctx, "u1"); !errors.Is(err, schemas.ErrNotFound) {
		t.Fatalf("ingested before ingest finished: %v", err)
	}
	if err := l.RecordIngest(ctx, "u1", schemas.IngestRecord{Rows: 3, Batches: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := l.RecordIndex(ctx, "u1", 0, schemas.IndexRecord{Indexed: 3}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := l.Status(ctx, "u1")
	if err != nil || s.State != schemas.StateDone || s.Counts.Accepted != 3 || s.Counts.Indexed != 3 {
		t.Fatalf("status = %+v, %v", s, err)
	}
	for i := 0; i < 2; i++ {
		if err := l.RecordFailure(ctx, "u1", schemas.FailureRecord{Stage: "index", Batch: 0, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := l.Progress(ctx, "u1"); len(p.Failures) != 1 || p.Status().State != schemas.StateFailed {
		t.Errorf("after a failure recorded twice: %+v", p.Failures)
	}
	if _, err := l.Status(ctx, "nope"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("unknown upload: %v", err)
	}
	if _, err := l.Status(ctx, "bad.key>"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("invalid id: %v", err)
	}
}

func TestConcurrentBatchRecordsCountEachBatchOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	kv, err := b.KV(ctx, topology.BucketUploads)
	if err != nil {
		t.Fatal(err)
	}
	l := Ledger{KV: kv}
	const batches, writers = 200, 4
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every writer records every batch: the redelivery case, at once.
			for i := 0; i < batches; i++ {
				if err := l.RecordIndex(ctx, "u2", i, schemas.IndexRecord{Indexed: 10, Deleted: 1}); err != nil {
					t.Error(err)
					return
				}
				if err := l.RecordNormalise(ctx, "u2", i, schemas.NormaliseRecord{Read: 10, Accepted: 10}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Create(ctx, schemas.UploadEvent{ID: "u2", Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
		t.Fatal(err)
	}
	p, err := l.Progress(ctx, "u2")
	if err != nil {
		t.Fatal(err)
	}
	if p.Index.Batches != batches || p.Index.Indexed != 10*batches || p.Index.Deleted != batches || p.Normalise.Read != 10*batches {
		t.Errorf("totals = %+v / %+v, want %d batches counted once", p.Index, p.Normalise, batches)
	}
}

func TestMappingVersionsNeverCollide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	kv, err := b.KV(ctx, topology.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	s := Mappings{KV: kv}
	if _, err := s.Mapping(ctx, "acme", 0); !errors.Is(err, schemas.ErrNotFound) {
		t.Fatalf("no mapping yet: %v", err)
	}
	const writers = 8
	var wg sync.WaitGroup
	versions := make(chan int, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, err := s.PutMapping(ctx, "acme", schemas.Mapping{Preset: "naver_ep", Defaults: map[string]string{"n": strings.Repeat("x", i)}})
			if err != nil {
				t.Error(err)
				return
			}
			versions <- m.Version
		}(i)
	}
	wg.Wait()
	close(versions)
	seen := map[int]bool{}
	for v := range versions {
		if seen[v] {
			t.Errorf("version %d handed out twice", v)
		}
		seen[v] = true
	}
	cur, err := s.Mapping(ctx, "acme", 0)
	if err != nil || cur.Version != writers {
		t.Errorf("current = v%d (%v), want v%d", cur.Version, err, writers)
	}
	v1, err := s.Mapping(ctx, "acme", 1)
	if err != nil || v1.Version != 1 || v1.Preset != "naver_ep" {
		t.Errorf("version 1 = %+v, %v", v1, err)
	}
}

func TestPartnersAreCreatedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	kv, err := b.KV(ctx, topology.BucketPartners)
	if err != nil {
		t.Fatal(err)
	}
	s := Partners{KV: kv}
	if err := s.CreatePartner(ctx, schemas.Partner{ID: "acme", KeyHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePartner(ctx, schemas.Partner{ID: "acme", KeyHash: "h2"}); !errors.Is(err, schemas.ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	p, err := s.Partner(ctx, "acme")
	if err != nil || p.KeyHash != "h1" {
		t.Errorf("partner = %+v, %v", p, err)
	}
	if _, err := s.Partner(ctx, "ghost"); !errors.Is(err, schemas.ErrNotFound) {
		t.Errorf("unknown partner: %v", err)
	}
}

func TestReadLogKeepsEachReadersLastRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	kv, err := b.KV(ctx, topology.BucketReaders)
	if err != nil {
		t.Fatal(err)
	}
	l := ReadLog{KV: kv}
	seen := func() map[string]time.Time {
		t.Helper()
		out := map[string]time.Time{}
		if err := l.Each(ctx, func(r string, at time.Time) error { out[r] = at; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := seen(); len(got) != 0 {
		t.Fatalf("an empty log answered %v", got)
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 123_456_789, time.UTC)
	for i, r := range []string{"alice", "bob", "alice"} {
		if err := l.Record(ctx, r, at.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]time.Time{"alice": at.Add(2 * time.Hour).Truncate(time.Millisecond), "bob": at.Add(time.Hour).Truncate(time.Millisecond)}
	got := seen()
	if len(got) != len(want) || !got["alice"].Equal(want["alice"]) || !got["bob"].Equal(want["bob"]) {
		t.Errorf("reads %v, want %v", got, want)
	}
	if err := l.Record(ctx, "not a key", at); err == nil || !strings.Contains(err.Error(), "not a valid key") {
		t.Errorf("a reader that is no valid key: %v", err)
	}
	stop := errors.New("stop")
	if err := l.Each(ctx, func(string, time.Time) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Each passes fn's error on: %v", err)
	}
}
