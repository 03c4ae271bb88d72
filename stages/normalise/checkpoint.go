package normalise

import (
	"context"
	"time"

	"feedline/pipeline"
	"feedline/topology"
)

// CheckpointName names the change-detection catalog's checkpoint;
// checkpointVersion is its encoding. Version 2 places a deleted product
// at its deletion, which compaction keeps; a version 1 catalog placed it
// at the version before, so it is rebuilt from the log instead.
const (
	CheckpointName    = "normalise-catalog"
	checkpointVersion = 2
)

// maxCatalogCount bounds the counts a checkpoint may claim.
const maxCatalogCount = 1 << 30

// catalogCopy is the catalog as it was at one moment, to encode outside
// its lock.
type catalogCopy struct {
	partners []partnerCopy
}

type partnerCopy struct {
	partner string
	ids     []string
	entries []entry
}

// snapshotLocked copies the catalog, under its read lock held by the
// caller, into flat slices: a fraction of the time encoding takes.
func (c *catalog) snapshotLocked() catalogCopy {
	out := catalogCopy{partners: make([]partnerCopy, 0, len(c.partners))}
	for partner, ps := range c.partners {
		pc := partnerCopy{partner: partner, ids: make([]string, 0, len(ps)), entries: make([]entry, 0, len(ps))}
		for id, e := range ps {
			pc.ids = append(pc.ids, id)
			pc.entries = append(pc.entries, e)
		}
		out.partners = append(out.partners, pc)
	}
	return out
}

func (cc catalogCopy) encode(w *pipeline.CheckpointWriter) error {
	w.Uvarint(uint64(len(cc.partners)))
	for _, pc := range cc.partners {
		w.String(pc.partner)
		w.Uvarint(uint64(len(pc.ids)))
		for i, id := range pc.ids {
			e := &pc.entries[i]
			w.String(id)
			w.Uint64(e.fp)
			w.Uvarint(e.version)
			w.Varint(e.price)
			w.String(e.currency)
			w.Uvarint(e.seen)
			w.Uvarint(e.at)
			w.Bool(e.deleted)
		}
	}
	return w.Err()
}

// decodeCatalog reads what catalogCopy.encode wrote into a new catalog.
func decodeCatalog(r *pipeline.CheckpointReader) *catalog {
	c := newCatalog()
	np := r.Count(maxCatalogCount)
	for range np {
		partner := r.String()
		n := r.Count(maxCatalogCount)
		ps := make(map[string]entry, n)
		for range n {
			id := r.String()
			e := entry{fp: r.Uint64(), version: r.Uvarint(), price: r.Varint()}
			e.currency = c.internBytes(r.Bytes())
			e.seen, e.at, e.deleted = r.Uvarint(), r.Uvarint(), r.Bool()
			if r.Err() != nil {
				return c
			}
			ps[id] = e
		}
		c.partners[partner] = ps
	}
	return c
}

// Checkpoint is the catalog's place among the checkpoints: it covers
// every product batch the state has folded.
func (s *Stage) Checkpoint() pipeline.CheckpointSource {
	return pipeline.CheckpointSource{Name: CheckpointName, Version: checkpointVersion, Snapshot: s.snapshot}
}

// snapshot copies the catalog with the PRODUCTS sequence it covers. This
// worker's own batches are folded in when their publish returns, not when
// Follow reads them: while one is between the two, a sequence Follow has
// passed may not be in the state yet, so the copy waits a moment for a
// gap between publishes, and otherwise skips this round.
func (s *Stage) snapshot(ctx context.Context) (pipeline.Positions, func(*pipeline.CheckpointWriter) error, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.cat.mu.RLock()
		// The read lock holds off every fold. applied is read before the
		// count of unfolded publishes: a batch at or below it was
		// published before, so none unfolded means it is in the state.
		at := s.applied.Load()
		if s.unfolded.Load() == 0 {
			cc := s.cat.snapshotLocked()
			s.cat.mu.RUnlock()
			return pipeline.Positions{topology.StreamProducts: at}, cc.encode, nil
		}
		s.cat.mu.RUnlock()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, pipeline.ErrCheckpointBusy
		}
		time.Sleep(time.Millisecond)
	}
}

// load installs the catalog's checkpoint, when there is a usable one, and
// answers the PRODUCTS sequence the replay goes on from.
func (s *Stage) load(ctx context.Context, bus *pipeline.Bus) (uint64, error) {
	if s.checkpoints == nil {
		return 1, nil
	}
	var loaded *catalog
	covers, ok, err := s.checkpoints.Load(ctx, bus, CheckpointName, checkpointVersion, func(r *pipeline.CheckpointReader) error {
		loaded = decodeCatalog(r)
		return r.Err()
	})
	if err != nil || !ok {
		return 1, err
	}
	at := covers[topology.StreamProducts]
	s.cat = loaded
	s.applied.Store(at)
	return at + 1, nil
}
