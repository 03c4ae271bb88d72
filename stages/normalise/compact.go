package normalise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Compaction is what bounds a compaction pass of the product log, beside
// the stages' own progress.
//
// A pass removes product batches none of whose changes is current any
// more, and rewrites batches mostly superseded (or carrying the lists of
// products an upload held unchanged) into compacted batches of just their
// current changes. It touches only batches below the horizon: every
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
	// News, when set, starts a pass's reading of the log in order and
	// answers whether a batch makes shop news: such a batch is left whole
	// (unless NewsCheckpoint covers it) so a replay of the feeds from the
	// log announces the same news. Nil: no batch makes news.
	News func() func(*schemas.ProductBatch) bool
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
	changes int
	live    int
	seen    bool
	news    bool
}

type uploadKey struct {
	partner string
	seq     uint64
}

// errPastHorizon stops a pass's read of the log at its horizon.
var errPastHorizon = errors.New("past the compaction horizon")

// Compact runs one compaction pass. Two workers compacting at once are
// safe: a deletion of a batch already gone succeeds, a compacted batch
// published twice is deduplicated by its id (and a copy past the window
// is one more batch holding current versions, removed by a later pass).
func (s *Stage) Compact(ctx context.Context, c Compaction) (Compacted, error) {
	start := time.Now()
	var res Compacted
	horizon, news, err := s.horizon(ctx, c)
	if err != nil || horizon == 0 {
		return res, err
	}
	res.Horizon = horizon
	var makesNews func(*schemas.ProductBatch) bool
	if c.News != nil {
		makesNews = c.News()
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
		cd := candidate{seq: m.Sequence, bytes: uint64(len(m.Data) + len(m.Subject)), upload: b.Upload, partner: b.Partner, useq: b.Seq,
			changes: len(b.Changes), live: len(s.liveChanges(&b, m.Sequence)), seen: len(b.Seen) > 0}
		cd.news = makesNews != nil && b.Compacted == 0 && makesNews(&b) && m.Sequence > news
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
		if !closed[uploadKey{cd.partner, cd.useq}] || cd.news {
			continue
		}
		switch {
		case cd.live == 0:
			if err := s.remove(ctx, cd, &res); err != nil {
				return res, err
			}
		case cd.seen || cd.live*2 <= cd.changes:
			if len(group) > 0 && (group[0].partner != cd.partner || group[0].useq != cd.useq || group[0].upload != cd.upload || groupLive(group)+cd.live > DeleteChunk) {
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

func groupLive(g []candidate) int {
	n := 0
	for _, cd := range g {
		n += cd.live
	}
	return n
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

// liveChanges are the changes of b, stored at seq, that the catalog holds
// as the current state of their product. A product's place only ever
// moves to a later batch, so a change not current now never is again.
func (s *Stage) liveChanges(b *schemas.ProductBatch, seq uint64) []schemas.ProductChange {
	s.cat.mu.RLock()
	defer s.cat.mu.RUnlock()
	ps := s.cat.partners[b.Partner]
	var live []schemas.ProductChange
	for _, ch := range b.Changes {
		e, ok := ps[ch.ID]
		if !ok || e.at != seq || e.version != ch.Version || e.deleted != (ch.Kind == schemas.ChangeDelete) {
			continue
		}
		live = append(live, ch)
	}
	return live
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

// rewrite publishes the current changes of a group of batches of one
// upload as one compacted batch, folds it into the catalog (moving those
// products' place to it) and then deletes the group. A crash between the
// two leaves both, which a later pass resolves.
func (s *Stage) rewrite(ctx context.Context, group []candidate, res *Compacted) error {
	out := &schemas.ProductBatch{Upload: group[0].upload, Partner: group[0].partner, Seq: group[0].useq, Compacted: group[0].seq}
	for _, cd := range group {
		m, err := s.bus.MessageAt(ctx, topology.StreamProducts, cd.seq)
		if err != nil {
			return fmt.Errorf("compact the product log: %w", err)
		}
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return fmt.Errorf("compact the product log: sequence %d: %w", cd.seq, err)
		}
		if out.At.IsZero() {
			out.Batch, out.At = b.Batch, b.At
		}
		out.Changes = append(out.Changes, s.liveChanges(&b, cd.seq)...)
	}
	if len(out.Changes) > 0 {
		data, err := out.Encode()
		if err != nil {
			return err
		}
		if err := s.publishFolded(ctx, out, func(at uint64) { s.cat.apply(out, at) }); err != nil {
			return fmt.Errorf("compact the product log: %w", err)
		}
		res.Rewritten++
		res.Added += uint64(len(data))
	}
	for _, cd := range group {
		if err := s.remove(ctx, cd, res); err != nil {
			return err
		}
	}
	return nil
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
