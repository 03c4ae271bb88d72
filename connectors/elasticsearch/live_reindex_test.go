package elasticsearch

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"feedline/schemas"
	"feedline/stages/index"
)

// aliasVersions is index.Versions on an Index, as feedline reindex uses it.
type aliasVersions struct {
	ix   *Index
	next *Index
}

func (v *aliasVersions) NewVersion(ctx context.Context) (schemas.ProductIndex, error) {
	next, err := v.ix.NewVersion(ctx)
	v.next = next
	return next, err
}

func (v *aliasVersions) Promote(ctx context.Context, next schemas.ProductIndex) error {
	return v.ix.Promote(ctx, next.(*Index))
}

// TestLiveOpenSearchReindexWhileWriting: index.Reindex (feedline reindex)
// builds the next index version from the log and swaps the alias while the
// index stage keeps writing new batches through the alias. Searches never
// see a gap or an error, and afterwards the new version holds the highest
// version of every product: nothing written during the reindex is lost.
func TestLiveOpenSearchReindexWhileWriting(t *testing.T) {
	cfg := liveConfig(liveURL(t))
	cfg.Refresh = "" // the stage's Flush makes batches searchable, as in feedline
	ix := openLive(t, cfg)
	ls := startIndexStage(t, ix)
	ctx := t.Context()
	want := catalog{}

	// 6,000 products before the reindex, never deleted.
	const base = 6000
	batch := 0
	for from := 0; from < base; from += 500 {
		batch++
		cs := kettles(from, 500, 1)
		want.add(cs)
		ls.publish(batch, cs)
	}
	ls.waitSettled(2 * time.Minute)
	from, err := ix.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Searches through the alias all along: never fewer than the base.
	var searches, lowest atomic.Int64
	lowest.Store(base)
	stopSearch := make(chan struct{})
	var searchErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopSearch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			res, err := ix.Search(ctx, schemas.SearchRequest{Limit: 1})
			if err != nil {
				searchErr = err
				return
			}
			searches.Add(1)
			if int64(res.Total) < lowest.Load() {
				lowest.Store(int64(res.Total))
			}
		}
	}()

	// Writes go on during the reindex and a little after: newer versions of
	// base products, new products, deletes of earlier new products.
	reindexed, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(written)
		after := 0
		for w := 0; w < 400 && after < 8; w++ {
			select {
			case <-reindexed:
				after++
			default:
			}
			batch++
			v := uint64(batch)
			cs := kettles((w*97)%base, 60, v)             // base products at a newer version
			cs = append(cs, kettles(base+w*40, 40, v)...) // new products
			if w >= 2 {
				for _, c := range kettles(base+(w-2)*40, 10, v) { // deletes of new ones
					cs = append(cs, remove(c.ID, v))
				}
			}
			want.add(cs)
			ls.publish(batch, cs)
			time.Sleep(25 * time.Millisecond)
		}
	}()

	v := &aliasVersions{ix: ix}
	start := time.Now()
	r, err := index.Reindex(ctx, ls.bus, v, nil)
	close(reindexed)
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	if v.next != nil {
		defer v.next.Close()
	}
	t.Logf("reindex: %d changes from %d batches in %s (%d refused, %d skipped)", r.Changes, r.Batches, time.Since(start).Round(time.Millisecond), r.Rejected, r.Skipped)
	// The writer sends a few batches after the swap; then the stage settles.
	<-written
	ls.waitSettled(2 * time.Minute)
	close(stopSearch)
	wg.Wait()
	if searchErr != nil {
		t.Fatalf("a search during the reindex failed: %v", searchErr)
	}
	if searches.Load() < 10 || lowest.Load() < base {
		t.Errorf("%d searches during the reindex, the fewest products found %d, want at least %d", searches.Load(), lowest.Load(), base)
	}

	cur, err := ix.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur == from || cur != v.next.Target() {
		t.Errorf("alias on %s after the reindex from %s, want %s", cur, from, v.next.Target())
	}
	names, err := ix.Versions(ctx)
	if err != nil || !slices.Equal(names, []string{from, cur}) {
		t.Errorf("index versions %v (%v), want the old one kept beside the new", names, err)
	}
	if r.Batches < 12 || r.Rejected != 0 {
		t.Errorf("reindex %+v: want every batch up to the swap, nothing refused", r)
	}
	want.check(t, ix)
	if n := ls.deadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	t.Logf("%d batches written, %d products live, %d searches during the reindex", batch, want.live(), searches.Load())
}
