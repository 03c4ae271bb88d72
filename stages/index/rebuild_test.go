package index

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

func TestRebuildAppliesTheLogAndCatchesUpFromWhereItStopped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	pub := bus.Publisher()
	send := func(batch int, data []byte) {
		t.Helper()
		if _, err := pub.Publish(ctx, pipeline.Outgoing{Subject: schemas.Subject(schemas.SubjectProduct, "acme"), MsgID: fmt.Sprint("b", batch), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(n int, changes ...schemas.ProductChange) {
		t.Helper()
		data, err := json.Marshal(schemas.ProductBatch{Upload: "u1", Partner: "acme", Batch: n, Changes: changes})
		if err != nil {
			t.Fatal(err)
		}
		send(n, data)
	}
	// 5,000 changes in 5 batches: more than one index write.
	for b := range 5 {
		var cs []schemas.ProductChange
		for i := range 1000 {
			cs = append(cs, upsert(fmt.Sprintf("acme:%d", b*1000+i), 1))
		}
		batch(b, cs...)
	}
	batch(5, upsert("acme:7", 2), schemas.ProductChange{Kind: schemas.ChangeDelete, ID: "acme:8", Version: 2})
	send(6, []byte("not a product batch"))

	ix := &versionIndex{versions: map[string]uint64{}}
	var seen []Rebuilt
	r, err := Rebuild(ctx, bus, ix, 1, func(p Rebuilt) { seen = append(seen, p) })
	if err != nil {
		t.Fatal(err)
	}
	if r.Batches != 6 || r.Changes != 5002 || r.Skipped != 1 || r.Last != 7 {
		t.Errorf("rebuilt %+v", r)
	}
	if len(ix.versions) != 5000 || ix.versions["acme:7"] != 2 || ix.versions["acme:8"] != 2 {
		t.Errorf("index holds %d products, acme:7 at %d, acme:8 at %d", len(ix.versions), ix.versions["acme:7"], ix.versions["acme:8"])
	}
	for _, call := range ix.calls {
		if len(call) > MaxPartChanges {
			t.Errorf("one write of %d changes", len(call))
		}
	}
	if len(seen) < 2 || seen[len(seen)-1].Changes != r.Changes {
		t.Errorf("progress %+v", seen)
	}

	// Changes that arrive later are picked up by a catch-up from r.Last+1 alone.
	batch(7, upsert("acme:9", 3))
	calls := len(ix.calls)
	r2, err := Rebuild(ctx, bus, ix, r.Last+1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Batches != 1 || r2.Changes != 1 || r2.Last != 8 || ix.versions["acme:9"] != 3 || len(ix.calls) != calls+1 {
		t.Errorf("catch-up %+v, acme:9 at %d", r2, ix.versions["acme:9"])
	}
	// Nothing new: nothing applied.
	if r3, err := Rebuild(ctx, bus, ix, r2.Last+1, nil); err != nil || r3.Changes != 0 || r3.Last != 8 {
		t.Errorf("empty catch-up %+v %v", r3, err)
	}
}

// aliasIndex plays an alias over versionIndexes: the index stage writes to
// whatever is live; a promote switches it.
type aliasIndex struct {
	mu       sync.Mutex
	live     *versionIndex
	versions []*versionIndex
	// onPromote runs just before the swap, to publish changes that land on
	// the old version.
	onPromote func()
}

func (a *aliasIndex) NewVersion(context.Context) (schemas.ProductIndex, error) {
	v := &versionIndex{versions: map[string]uint64{}}
	a.mu.Lock()
	a.versions = append(a.versions, v)
	a.mu.Unlock()
	return v, nil
}

func (a *aliasIndex) Promote(_ context.Context, next schemas.ProductIndex) error {
	if a.onPromote != nil {
		a.onPromote()
	}
	a.mu.Lock()
	a.live = next.(*versionIndex)
	a.mu.Unlock()
	return nil
}

func TestReindexBuildsANewVersionAndCatchesUpAfterTheSwap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	pub := bus.Publisher()
	send := func(n int, changes ...schemas.ProductChange) {
		t.Helper()
		data, _ := json.Marshal(schemas.ProductBatch{Upload: "u", Partner: "acme", Batch: n, Changes: changes})
		if _, err := pub.Publish(ctx, pipeline.Outgoing{Subject: "catalog.product.acme", MsgID: fmt.Sprint("r", n), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	old := &versionIndex{versions: map[string]uint64{}}
	a := &aliasIndex{live: old}
	for i := range 3 {
		send(i, upsert(fmt.Sprint("acme:", i), 1))
	}
	// While the new version fills, the live stage applies a change to the
	// old one; it must reach the new version too.
	a.onPromote = func() {
		send(3, upsert("acme:late", 7), upsert("acme:0", 2))
		if _, err := old.Apply(ctx, []schemas.ProductChange{upsert("acme:late", 7), upsert("acme:0", 2)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Reindex(ctx, bus, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.live == old || len(a.versions) != 1 || a.live != a.versions[0] {
		t.Fatal("the new version was not swapped in")
	}
	got := a.live.versions
	if len(got) != 4 || got["acme:late"] != 7 || got["acme:0"] != 2 || got["acme:2"] != 1 {
		t.Errorf("new version holds %v", got)
	}
	if r.Batches != 4 || r.Changes != 5 || r.Last != 4 {
		t.Errorf("reindexed %+v", r)
	}
}
