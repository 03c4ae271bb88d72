package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"feedline/connectors/natskv"
	"feedline/schemas"
	"feedline/topology"
)

// sweep is what one pass of the file sweep removed.
type sweep struct {
	natskv.Swept
	Expired int // finished uploads past their retention whose file and raw batches went
}

// sweepFiles removes, of the stored files written before cutoff, those no
// upload refers to, the chunks of writes that never finished, and the file
// and raw batches of uploads finished longer than the retention before now.
// Two API processes sweeping at once meet no harm: a purge or delete of
// what is gone already does nothing.
func (s *system) sweepFiles(ctx context.Context, files natskv.Files, cutoff, now time.Time) (sweep, error) {
	var sw sweep
	before := now.Add(-s.cfg.UploadRetention)
	var err error
	sw.Swept, err = files.Sweep(ctx, cutoff, func(ctx context.Context, name string, stored time.Time) (bool, error) {
		owner, err := s.ledger.Upload(ctx, name)
		if errors.Is(err, schemas.ErrNotFound) {
			return false, nil
		}
		if err != nil || !stored.Before(before) {
			return true, err
		}
		expired, err := s.expired(ctx, name, owner, before)
		if err != nil || expired == nil {
			return true, err
		}
		// Raw batches first: a sweep cut short keeps the file, and the next
		// one purges again and deletes it.
		for _, u := range expired {
			if err := s.bus.Purge(ctx, topology.StreamRaw, schemas.RawSubject(u.Partner, u.ID)); err != nil {
				return true, fmt.Errorf("purge the raw batches of upload %s: %w", u.ID, err)
			}
		}
		sw.Expired += len(expired)
		return false, nil
	})
	if err != nil {
		return sw, fmt.Errorf("sweep stored files: %w", err)
	}
	if sw.Files+sw.Writes > 0 {
		s.cfg.Log.Info("removed stored files no upload needs", "files", sw.Files, "unfinished_writes", sw.Writes, "chunks", sw.Chunks,
			"finished_uploads", sw.Expired, "upload_retention", s.cfg.UploadRetention)
	}
	return sw, nil
}

// expired is every upload that processes the file name (its owner and the
// retries of it) when each has finished and changed last before before;
// nil when any still needs the file or its raw batches.
func (s *system) expired(ctx context.Context, name string, owner schemas.UploadEvent, before time.Time) ([]schemas.UploadEvent, error) {
	uploads := []schemas.UploadEvent{owner}
	st, err := s.ledger.Status(ctx, owner.ID)
	if err != nil {
		return nil, err
	}
	// Only a failed upload is retried, so only a failed one's file may be
	// another's.
	if st.State == schemas.StateFailed {
		retries, err := s.retriesOf(ctx, name, owner)
		if err != nil {
			return nil, err
		}
		uploads = append(uploads, retries...)
	}
	for i, u := range uploads {
		if i > 0 {
			if st, err = s.ledger.Status(ctx, u.ID); err != nil {
				return nil, err
			}
		}
		if !finishedForGood(st.State) {
			return nil, nil
		}
		last, err := s.ledger.LastRecorded(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		if !last.Before(before) {
			return nil, nil
		}
	}
	return uploads, nil
}

// finishedForGood: done, failed or cancelled. A held upload still waits
// for its partner, and confirming it applies its changes.
func finishedForGood(state string) bool {
	return state == schemas.StateDone || state == schemas.StateFailed || state == schemas.StateCancelled
}

// retriesOf finds the uploads after owner, in its partner's list, that
// process its stored file again. The list is newest first, so the walk
// stops at owner; it runs once for a file, when the file's retention has
// passed.
func (s *system) retriesOf(ctx context.Context, name string, owner schemas.UploadEvent) ([]schemas.UploadEvent, error) {
	var out []schemas.UploadEvent
	cursor := ""
	for {
		ids, next, err := s.ledger.ListUploads(ctx, owner.Partner, cursor, 256)
		if err != nil {
			return nil, fmt.Errorf("list the uploads of %s: %w", owner.Partner, err)
		}
		for _, id := range ids {
			if id == owner.ID {
				return out, nil
			}
			u, err := s.ledger.Upload(ctx, id)
			if errors.Is(err, schemas.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if u.Object == name {
				out = append(out, u)
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}
