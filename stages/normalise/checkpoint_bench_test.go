package normalise

import (
	"context"
	"fmt"
	"testing"

	"feedline/pipeline"
)

// benchCatalog is a catalog of n products of one partner.
func benchCatalog(n int) *catalog {
	c := newCatalog()
	ps := make(map[string]entry, n)
	for i := range n {
		ps[fmt.Sprintf("bench:SKU-%08d", i)] = entry{fp: uint64(i) * 0x9e3779b97f4a7c15, version: 1<<32 | uint64(i), price: int64(1000 + i%50000), currency: "KRW", seen: 1, at: uint64(i/1000 + 1)}
	}
	c.partners["bench"] = ps
	return c
}

// BenchmarkCatalogCheckpoint measures, for a million products, the copy
// taken under the catalog's read lock (what the stage may wait for), and
// writing and loading the checkpoint file.
func BenchmarkCatalogCheckpoint(b *testing.B) {
	const n = 1_000_000
	c := benchCatalog(n)
	ck := pipeline.NewCheckpoints(b.TempDir(), nil)
	b.Run("copy-under-lock", func(b *testing.B) {
		for b.Loop() {
			c.mu.RLock()
			cc := c.snapshotLocked()
			c.mu.RUnlock()
			if len(cc.partners[0].ids) != n {
				b.Fatal("short copy")
			}
		}
	})
	b.Run("encode-and-save", func(b *testing.B) {
		cc := c.snapshotLocked()
		for b.Loop() {
			if err := ck.Save(CheckpointName, checkpointVersion, nil, cc.encode); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		if err := ck.Save(CheckpointName, checkpointVersion, nil, c.snapshotLocked().encode); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			var got *catalog
			if _, ok, err := ck.Load(context.Background(), nil, CheckpointName, checkpointVersion, func(r *pipeline.CheckpointReader) error {
				got = decodeCatalog(r)
				return r.Err()
			}); err != nil || !ok || got.size() != n {
				b.Fatalf("load: %v %v", ok, err)
			}
		}
	})
}
