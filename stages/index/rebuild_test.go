package index

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

func TestRebuildAppliesTheLogAndCatchesUpFromWhereItStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := bus.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	pub := pipeline.JetStreamPublisher{JS: bus.JS}
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
