package natskv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"feedline/schemas"
	"feedline/topology"
)

func testLedger(t *testing.T) Ledger {
	t.Helper()
	kv, err := testBus(t).KV(context.Background(), topology.BucketUploads)
	if err != nil {
		t.Fatal(err)
	}
	return Ledger{KV: kv}
}

// A partner's uploads page newest first across index pages, with
// concurrent writers, and another partner's never show.
func TestListUploadsPagesNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := testLedger(t)
	if ids, next, err := l.ListUploads(ctx, "acme", "", 10); err != nil || len(ids) != 0 || next != "" {
		t.Fatalf("no uploads: %v %q %v", ids, next, err)
	}
	const n = listPage*2 + 37
	var created []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("u%04d", i)
		created = append(created, id)
		if err := l.Create(ctx, schemas.UploadEvent{ID: id, Partner: "acme"}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := l.Create(ctx, schemas.UploadEvent{ID: fmt.Sprintf("o%04d", i), Partner: "other"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Twenty writers at once: every id is indexed once.
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if err := l.Create(ctx, schemas.UploadEvent{ID: fmt.Sprintf("c%02d%d", w, i), Partner: "acme"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var all []string
	cursor := ""
	pages := 0
	for {
		ids, next, err := l.ListUploads(ctx, "acme", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, ids...)
		if next == "" {
			break
		}
		if len(ids) != 100 {
			t.Errorf("a page before the last holds %d", len(ids))
		}
		cursor = next
	}
	if len(all) != n+100 || pages != (n+100+99)/100 {
		t.Fatalf("%d ids on %d pages, want %d", len(all), pages, n+100)
	}
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] || id[0] == 'o' {
			t.Fatalf("id %s listed twice or from another partner", id)
		}
		seen[id] = true
	}
	// The sequential ones come newest first, after the concurrent ones.
	seq := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id[0] == 'c' })
	slices.Reverse(created)
	if !slices.Equal(seq, created) {
		t.Errorf("uploads not newest first: %v…", seq[:5])
	}
	if all[0][0] != 'c' {
		t.Errorf("newest %s, want one of the last, concurrent ones", all[0])
	}
	if _, _, err := l.ListUploads(ctx, "acme", "nonsense", 10); !errors.Is(err, schemas.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

// A partner may have limit uploads in flight; finished ones, and ones
// never announced, give their slots back.
func TestReserveBoundsUploadsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := testLedger(t)
	for _, id := range []string{"a", "b"} {
		if err := l.Reserve(ctx, "acme", id, 2); err != nil {
			t.Fatal(err)
		}
		if err := l.Create(ctx, schemas.UploadEvent{ID: id, Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Reserve(ctx, "acme", "c", 2); !errors.Is(err, schemas.ErrBusy) {
		t.Fatalf("third upload in flight: %v, want ErrBusy", err)
	}
	if err := l.Reserve(ctx, "other", "x", 2); err != nil {
		t.Fatalf("another partner is held back: %v", err)
	}
	// "a" fails: its slot is free for the next one.
	if err := l.RecordIngest(ctx, "a", schemas.IngestRecord{Error: "broken"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Reserve(ctx, "acme", "c", 2); err != nil {
		t.Fatalf("after one finished: %v", err)
	}
	if err := l.Reserve(ctx, "acme", "d", 2); !errors.Is(err, schemas.ErrBusy) {
		t.Fatalf("b and c in flight: %v", err)
	}
	// c is never announced.
	if err := l.Release(ctx, "acme", "c"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reserve(ctx, "acme", "d", 2); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if err := l.Reserve(ctx, "acme", "e", 0); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}

// A cancelled upload says so, and whether what it had normalised reached
// the catalog.
func TestCancelledUploadStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := testLedger(t)
	for _, tc := range []struct {
		id, mode string
		staged   *bool
		applied  bool
	}{
		{"delta", schemas.ModeDelta, nil, true},
		{"staged", schemas.ModeFull, ptrTo(true), false},
		{"first", schemas.ModeFull, ptrTo(false), true},
	} {
		if err := l.Create(ctx, schemas.UploadEvent{ID: tc.id, Partner: "acme", Mode: tc.mode}); err != nil {
			t.Fatal(err)
		}
		if tc.staged != nil {
			if _, err := l.RecordStaging(ctx, tc.id, *tc.staged); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.RecordNormalise(ctx, tc.id, 0, schemas.NormaliseRecord{Read: 5, Accepted: 5}); err != nil {
			t.Fatal(err)
		}
		if c, err := l.Cancelled(ctx, tc.id); err != nil || c {
			t.Fatalf("%s cancelled before: %v %v", tc.id, c, err)
		}
		first, err := l.RecordCancel(ctx, tc.id, schemas.CancelRecord{At: batchAt})
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := l.RecordCancel(ctx, tc.id, schemas.CancelRecord{At: batchAt.Add(1)}); !again.At.Equal(first.At) {
			t.Errorf("a second cancellation replaced the first")
		}
		if c, err := l.Cancelled(ctx, tc.id); err != nil || !c {
			t.Fatalf("%s not cancelled: %v %v", tc.id, c, err)
		}
		st, err := l.Status(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != schemas.StateCancelled || st.Cancellation == nil || st.Cancellation.Applied != tc.applied || st.Counts.Accepted != 5 {
			t.Errorf("%s: %s %+v %+v", tc.id, st.State, st.Cancellation, st.Counts)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

var batchAt = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
