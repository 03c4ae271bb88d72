package normalise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Compaction is what bounds a compaction pass of the product log, beside
// the stages' own progress.
//
// A pass removes product batches none of whose changes is current any
// more, and rewrites batches a quarter or more superseded (lists of
// products an upload held unchanged count, once a later upload listed
// them again) into compacted batches of just what is current. It touches only batches below the horizon: every
// durable consumer of the log has acknowledged them, this worker's
// catalog holds them, every checkpoint of this process covers them, and
// their upload is closed. Upload summaries, the log's last message and
// batches that make shop news (News) are kept.
type Compaction struct {
	// Checkpoints are this process's: a start from them replays the log
	// after what they cover, so nothing past it is touched.
	Checkpoints *pipeline.Checkpoints
	// NewsCheckpoint names the checkpoint holding the shop news already
	// announced (the feeds). Below what it covers, a batch that made news
	// may be compacted too: feeds start from it. Empty when there is no
	// such checkpoint; then a full replay announces the news again.
	NewsCheckpoint string
	// News, when set, starts a pass's reading of the log and answers
	// whether a batch may make shop news a replay of the feeds would still
	// show: such a batch is left whole (unless NewsCheckpoint covers it),
	// so a replay announces the same news. Nil: no batch makes news.
	News func(context.Context) func(*schemas.ProductBatch) (bool, error)
	// Metrics, when set, counts what passes remove.
	Metrics *pipeline.Metrics
}

// Compacted counts what a pass did.
type Compacted struct {
	Horizon   uint64 // last PRODUCTS sequence the pass could touch
	Scanned   int    // batches read up to the horizon
	Removed   int    // batches deleted, whole or once rewritten
	Rewritten int    // compacted batches published for the rewritten
	Bytes     uint64 // bytes of the removed batches
	Added     uint64 // bytes of the compacted batches
}

// candidate is what the first read of a pass keeps of one batch.
type candidate struct {
	seq     uint64
	bytes   uint64
	upload  string
	partner string
	useq    uint64
	entries int // changes and products listed unchanged
	live    int // of them, what the catalog still holds from this batch
	news    bool
	// pinned: the batch holds an earlier version of a product whose
	// compacted batch is not yet known to be placed right (see anchors);
	// it stays where it is.
	pinned bool
	// misplaced: a compacted batch holding a product some upload listed
	// before it in the log; it is written again.
	misplaced bool
}

type uploadKey struct {
	partner string
	seq     uint64
}

// errPastHorizon stops a pass's read of the log at its horizon.
var errPastHorizon = errors.New("past the compaction horizon")

// Compact runs one compaction pass. Two workers compacting at once are
// safe: a deletion of a batch already gone succeeds, a batch another
// worker removed is skipped, and a compacted batch both wrote (each
// stamped with its own time, so neither is dropped as the other's
// duplicate) holds current versions only: the later copy takes the
// products, and a later pass removes the earlier.
func (s *Stage) Compact(ctx context.Context, c Compaction) (Compacted, error) {
	start := time.Now()
	var res Compacted
	horizon, news, err := s.horizon(ctx, c)
	if err != nil {
		return res, err
	}
	if horizon == 0 {
		s.Log.Info("product log not compacted: no stage has finished any of it, or this worker is folding its own batches")
		return res, nil
	}
	res.Horizon = horizon
	var makesNews func(*schemas.ProductBatch) (bool, error)
	if c.News != nil {
		makesNews = c.News(ctx)
	}
	anchored, misplaced, err := s.anchors(ctx, horizon)
	if err != nil {
		return res, fmt.Errorf("compact the product log: %w", err)
	}
	var cands []candidate
	closed := map[uploadKey]bool{}
	_, _, err = s.bus.ReplayFrom(ctx, topology.StreamProducts, "", 1, func(m *pipeline.Message) error {
		if m.Sequence > horizon {
			return errPastHorizon
		}
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return nil // left for whoever reads it to report
		}
		res.Scanned++
		if b.End != nil {
			closed[uploadKey{b.Partner, b.Seq}] = true
			return nil
		}
		changes, seen := s.live(&b, m.Sequence)
		cd := candidate{seq: m.Sequence, bytes: uint64(len(m.Data) + len(m.Subject)), upload: b.Upload, partner: b.Partner, useq: b.Seq,
			entries: len(b.Changes) + len(b.Seen), live: len(changes) + len(seen)}
		if makesNews != nil && b.Compacted == 0 && m.Sequence > news {
			shown, err := makesNews(&b)
			if err != nil {
				return err
			}
			cd.news = shown
		}
		cd.misplaced = misplaced[m.Sequence]
		for i := range b.Changes {
			if anchored[productKey{b.Partner, b.Changes[i].ID}] && !cd.misplaced {
				if e, ok := s.cat.get(b.Partner, b.Changes[i].ID); ok && e.at != m.Sequence {
					cd.pinned = true
					break
				}
			}
		}
		cands = append(cands, cd)
		return nil
	})
	if err != nil && !errors.Is(err, errPastHorizon) {
		return res, fmt.Errorf("compact the product log: %w", err)
	}
	var group []candidate
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := s.rewrite(ctx, group, &res)
		group = group[:0]
		return err
	}
	for _, cd := range cands {
		if !closed[uploadKey{cd.partner, cd.useq}] || cd.news || cd.pinned {
			continue
		}
		switch {
		case cd.live == 0 && !cd.misplaced:
			if err := s.remove(ctx, cd, &res); err != nil {
				return res, err
			}
		case cd.misplaced || cd.live*4 <= cd.entries*3:
			if len(group) > 0 && group[0].partner != cd.partner {
				if err := flush(); err != nil {
					return res, err
				}
			}
			group = append(group, cd)
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if c.Metrics != nil {
		c.Metrics.Compacted.WithLabelValues(topology.StreamProducts, "messages").Add(float64(res.Removed))
		c.Metrics.Compacted.WithLabelValues(topology.StreamProducts, "bytes").Add(float64(res.Bytes))
	}
	s.Log.Info("product log compacted", "horizon", horizon, "scanned", res.Scanned, "removed", res.Removed, "rewritten", res.Rewritten,
		"removed_bytes", res.Bytes, "added_bytes", res.Added, "took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

type productKey struct{ partner, id string }

// anchors finds the live products a replay could place wrong without the
// earlier batches holding them: a product's listing by an upload comes
// into a catalog only if the product is there already, so while its
// current version sits in a compacted batch after that listing in the log
// (a listing made while the batch was written), an earlier batch of it
// has to stay. So do those of products placed past the horizon, where it
// is not read. misplaced holds the compacted batches to write again.
func (s *Stage) anchors(ctx context.Context, horizon uint64) (map[productKey]bool, map[uint64]bool, error) {
	type place struct {
		compacted bool
		seq       uint64
	}
	places := map[uint64]place{}
	s.cat.mu.RLock()
	type live struct {
		key      productKey
		at, seen uint64
	}
	var lives []live
	for partner, ps := range s.cat.partners {
		for id, e := range ps {
			if !e.deleted {
				lives = append(lives, live{productKey{partner, id}, e.at, e.seen})
			}
		}
	}
	s.cat.mu.RUnlock()
	anchored, misplaced := map[productKey]bool{}, map[uint64]bool{}
	for _, l := range lives {
		if l.at > horizon {
			anchored[l.key] = true
			continue
		}
		p, ok := places[l.at]
		if !ok {
			m, err := s.bus.MessageAt(ctx, topology.StreamProducts, l.at)
			if errors.Is(err, pipeline.ErrMessageGone) {
				anchored[l.key] = true // moved meanwhile
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			var b schemas.ProductBatch
			if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
				return nil, nil, fmt.Errorf("sequence %d: %w", l.at, err)
			}
			p = place{b.Compacted != 0, b.Seq}
			places[l.at] = p
		}
		if p.compacted && p.seq != l.seen {
			anchored[l.key], misplaced[l.at] = true, true
		}
	}
	return anchored, misplaced, nil
}

// horizon is the last PRODUCTS sequence a pass may touch, and the last one
// whose news a checkpoint of the feeds holds.
func (s *Stage) horizon(ctx context.Context, c Compaction) (horizon, news uint64, err error) {
	floor, ok, err := s.bus.ConsumedFloor(ctx, topology.StreamProducts)
	if err != nil || !ok {
		return 0, 0, err // no stage reads the log yet: it may still need all of it
	}
	last, err := s.bus.LastSequence(ctx, topology.StreamProducts)
	if err != nil {
		return 0, 0, err
	}
	// The last message stays: readers wait until they have seen it.
	horizon = min(floor, last-min(last, 1))
	applied, ok := s.folded(ctx)
	if !ok {
		return 0, 0, nil
	}
	horizon = min(horizon, applied)
	if c.Checkpoints != nil {
		if covered, ok := c.Checkpoints.Covered(topology.StreamProducts); ok {
			horizon = min(horizon, covered)
		}
		if c.NewsCheckpoint != "" {
			news, _ = c.Checkpoints.CoveredBy(c.NewsCheckpoint, topology.StreamProducts)
		}
	}
	return horizon, min(news, horizon), nil
}

// folded answers a PRODUCTS sequence up to which every batch is in the
// catalog: this worker's own batches are folded when their publish
// returns, so the answer waits, as a checkpoint does, for a moment when
// none is between the two.
func (s *Stage) folded(ctx context.Context) (uint64, bool) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.cat.mu.RLock()
		at := s.applied.Load()
		idle := s.unfolded.Load() == 0
		s.cat.mu.RUnlock()
		if idle {
			return at, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, false
		}
		time.Sleep(time.Millisecond)
	}
}

// live is what of b, stored at seq, the catalog still holds from it: the
// changes that are their product's current state, each with the upload
// that last listed the product, and the products it listed unchanged that
// no later upload listed (a full upload's closing compares them). A
// product's place only ever moves to a later batch and its listing to a
// later upload, so what is not live now never is again.
func (s *Stage) live(b *schemas.ProductBatch, seq uint64) (changes []liveChange, seen []string) {
	s.cat.mu.RLock()
	defer s.cat.mu.RUnlock()
	ps := s.cat.partners[b.Partner]
	for _, ch := range b.Changes {
		e, ok := ps[ch.ID]
		if !ok || e.at != seq || e.version != ch.Version || e.deleted != (ch.Kind == schemas.ChangeDelete) {
			continue
		}
		listed := e.seen
		if e.deleted {
			listed = b.Seq
		}
		changes = append(changes, liveChange{ch, listed})
	}
	for _, id := range b.Seen {
		if e, ok := ps[id]; ok && !e.deleted && e.seen == b.Seq {
			seen = append(seen, id)
		}
	}
	return changes, seen
}

// liveChange is a current change and the upload that last listed its
// product.
type liveChange struct {
	schemas.ProductChange
	listed uint64
}

// remove deletes one batch from the log.
func (s *Stage) remove(ctx context.Context, cd candidate, res *Compacted) error {
	if err := s.bus.DeleteMessage(ctx, topology.StreamProducts, cd.seq); err != nil {
		return fmt.Errorf("compact the product log: %w", err)
	}
	res.Removed++
	res.Bytes += cd.bytes
	return nil
}

// maxCompactedBytes bounds one compacted batch, well below what a stream
// message may hold.
const maxCompactedBytes = 512 << 10

// rewrite publishes what a group of batches of one partner still holds as
// compacted batches, folds each into the catalog (moving those products'
// place to it) and then deletes the batches it replaces. A crash between
// the two leaves both, which a later pass resolves.
//
// A compacted batch is placed in the log after later uploads' listings of
// its products, so it carries, as its upload sequence, the upload that
// last listed them: one compacted batch per such upload, whichever
// uploads made the changes.
func (s *Stage) rewrite(ctx context.Context, group []candidate, res *Compacted) error {
	outs := map[uint64]*schemas.ProductBatch{}
	var replaced []candidate
	size := 0
	flush := func() error {
		published := map[uint64]*schemas.ProductBatch{}
		var last uint64
		for _, listed := range slices.Sorted(maps.Keys(outs)) {
			b := outs[listed]
			data, err := b.Encode()
			if err != nil {
				return err
			}
			if err := s.publishFolded(ctx, b, func(at uint64) { s.cat.apply(b, at); published[at], last = b, at }); err != nil {
				return fmt.Errorf("compact the product log: %w", err)
			}
			res.Rewritten++
			res.Added += uint64(len(data))
		}
		if !s.listedAsPublished(ctx, published, last) {
			// An upload listed some of the products while the batches were
			// being written, before them in the log: a replay would miss
			// that listing without the batches replaced. A later pass
			// writes them again.
			clear(outs)
			replaced, size = replaced[:0], 0
			return nil
		}
		for _, cd := range replaced {
			if err := s.remove(ctx, cd, res); err != nil {
				return err
			}
		}
		clear(outs)
		replaced, size = replaced[:0], 0
		return nil
	}
	for _, cd := range group {
		m, err := s.bus.MessageAt(ctx, topology.StreamProducts, cd.seq)
		if errors.Is(err, pipeline.ErrMessageGone) {
			continue // another worker compacted it
		}
		if err != nil {
			return fmt.Errorf("compact the product log: %w", err)
		}
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return fmt.Errorf("compact the product log: sequence %d: %w", cd.seq, err)
		}
		if size+len(m.Data) > maxCompactedBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		out := func(listed uint64) *schemas.ProductBatch {
			if outs[listed] == nil {
				outs[listed] = &schemas.ProductBatch{Upload: b.Upload, Partner: b.Partner, Batch: b.Batch, Seq: listed, At: s.Now().UTC(), Compacted: replacedFirst(replaced, cd.seq)}
			}
			return outs[listed]
		}
		changes, seen := s.live(&b, cd.seq)
		for _, ch := range changes {
			o := out(ch.listed)
			o.Changes = append(o.Changes, ch.ProductChange)
		}
		if len(seen) > 0 {
			o := out(b.Seq)
			o.Seen = append(o.Seen, seen...)
		}
		// The batch's size bounds what it adds.
		size += len(m.Data) * (len(changes) + len(seen)) / max(1, len(b.Changes)+len(b.Seen))
		replaced = append(replaced, cd)
	}
	return flush()
}

// listedAsPublished waits until the catalog holds the log up to last,
// then says whether the products of the compacted batches published (by
// sequence) are still last listed by the upload each batch names.
func (s *Stage) listedAsPublished(ctx context.Context, published map[uint64]*schemas.ProductBatch, last uint64) bool {
	deadline := time.Now().Add(5 * time.Second)
	for s.applied.Load() < last {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	for at, b := range published {
		for _, ch := range b.Changes {
			if e, ok := s.cat.get(b.Partner, ch.ID); ok && e.at == at && !e.deleted && e.seen != b.Seq {
				return false
			}
		}
	}
	return true
}

// replacedFirst is the sequence of the first batch a flush replaces.
func replacedFirst(replaced []candidate, next uint64) uint64 {
	if len(replaced) > 0 {
		return replaced[0].seq
	}
	return next
}

// RunCompaction compacts the product log every period until ctx ends.
func (s *Stage) RunCompaction(ctx context.Context, every time.Duration, c Compaction) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Compact(ctx, c); err != nil && ctx.Err() == nil {
				s.Log.Warn("compacting the product log failed; retrying later", "err", err, slog.Duration("every", every))
			}
		}
	}
}
