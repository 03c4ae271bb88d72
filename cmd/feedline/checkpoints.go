package main

import (
	"context"
	"path/filepath"

	"feedline/connectors/feedstore"
	"feedline/pipeline"
	"feedline/stages/fanout"
)

// feedsCheckpoint names the embedded feed state's checkpoint: feeds,
// timelines, the follow graph, reader activity and shop-news claims.
const feedsCheckpoint = "feeds"

// checkpointDir is where a data directory's checkpoints are.
func checkpointDir(dataDir string) string { return filepath.Join(dataDir, "checkpoints") }

// checkpointStore is this process's checkpoints, nil when they are off.
func (s *system) checkpointStore() *pipeline.Checkpoints {
	if s.cfg.CheckpointEvery <= 0 {
		return nil
	}
	if s.checkpoints == nil {
		s.checkpoints = pipeline.NewCheckpoints(checkpointDir(s.cfg.DataDir), s.cfg.Log.With("component", "checkpoints"))
	}
	return s.checkpoints
}

// checkpointed has src written in the background from now on.
func (s *system) checkpointed(src pipeline.CheckpointSource) {
	if s.checkpointStore() != nil {
		s.checkpointSources = append(s.checkpointSources, src)
	}
}

// replayFeeds rebuilds the in-process feed state at start: from its
// checkpoint and the log after it when the fan-out stage runs here (its
// consumers' progress is what a checkpoint covers), else from the whole log.
func (s *system) replayFeeds(ctx context.Context, fan *fanout.Stage) (fanout.Replayed, error) {
	store, ok := s.feeds.(*feedstore.Store)
	ck := s.checkpointStore()
	if !ok || ck == nil || !s.cfg.runs("fanout") {
		return fan.Replay(ctx, s.bus)
	}
	covers, loaded, err := ck.Load(ctx, s.bus, feedsCheckpoint, feedstore.CheckpointVersion, store.Restore)
	if err != nil {
		return fanout.Replayed{}, err
	}
	if !loaded {
		// What a failed load left behind is dropped.
		if err := store.Close(); err != nil {
			return fanout.Replayed{}, err
		}
		store = feedstore.New()
		s.feeds, fan.Store = store, store
		covers = nil
	}
	// The shop news already announced is in this checkpoint: below what it
	// covers, compaction may rewrite batches that made news.
	s.compaction.NewsCheckpoint = feedsCheckpoint
	s.checkpointed(pipeline.CheckpointSource{Name: feedsCheckpoint, Version: feedstore.CheckpointVersion,
		Snapshot: func(ctx context.Context) (pipeline.Positions, func(*pipeline.CheckpointWriter) error, error) {
			// The consumers' progress first: the copy then holds all of it.
			covers, err := fanout.Covered(ctx, s.bus)
			if err != nil {
				return nil, nil, err
			}
			sn, err := store.Snapshot()
			if err != nil {
				return nil, nil, err
			}
			return covers, sn.Encode, nil
		}})
	return fan.ReplayAfter(ctx, s.bus, covers)
}

// runCheckpoints writes the checkpoints in the background until ctx ends.
func (s *system) runCheckpoints(ctx context.Context) {
	if s.checkpoints == nil || len(s.checkpointSources) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.checkpoints.Run(ctx, s.cfg.CheckpointEvery, s.checkpointSources...)
	}()
}

// finalCheckpoints writes the checkpoints once the stages have drained,
// so a clean restart replays nothing.
func (s *system) finalCheckpoints(ctx context.Context) error {
	if s.checkpoints == nil || len(s.checkpointSources) == 0 {
		return nil
	}
	return s.checkpoints.Write(ctx, s.checkpointSources...)
}
