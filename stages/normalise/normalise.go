// Package normalise turns raw rows into canonical product changes through
// each partner's mapping, rejects invalid rows with reasons, and emits only
// what changed.
package normalise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"

	"feedline/pipeline"
	"feedline/schemas"
)

// DeleteChunk is how many deletions one product batch carries.
const DeleteChunk = 1000

// deleteRow makes a full upload's deletions newer than any row it listed.
const deleteRow = 1<<32 - 1

// Stage normalises raw batches.
type Stage struct {
	Ledger   schemas.UploadLedger
	Mappings schemas.MappingStore
	Pub      pipeline.Publisher
	Log      *slog.Logger
	Now      func() time.Time

	cat      *catalog
	mu       sync.Mutex
	mappings map[string]schemas.Mapping
	bus      *pipeline.Bus
	instance string                   // marks what this worker publishes, so Follow skips it
	applied  atomic.Uint64            // newest PRODUCTS sequence folded into cat
	staging  *lru.Cache[string, bool] // whether an upload is staged, as the ledger says
}

// New builds the stage; call Rebuild before running it.
func New(ledger schemas.UploadLedger, mappings schemas.MappingStore, pub pipeline.Publisher, log *slog.Logger) *Stage {
	staging, _ := lru.New[string, bool](1024) // fails only for a size below 1
	return &Stage{Ledger: ledger, Mappings: mappings, Pub: pub, Log: log, Now: time.Now, cat: newCatalog(),
		mappings: map[string]schemas.Mapping{}, instance: strconv.FormatUint(rand.Uint64(), 36), staging: staging}
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "normalise",
		Stream:    pipeline.StreamRaw,
		Handle:    pipeline.Concurrent(s.Handle, 2),
		BatchSize: 16,
	}
}

// Rebuild folds the product log into the change-detection state.
func (s *Stage) Rebuild(ctx context.Context, bus *pipeline.Bus) error {
	start := time.Now()
	s.bus = bus
	n, err := bus.Replay(ctx, pipeline.StreamProducts, "", func(m *pipeline.Message) error {
		s.fold(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild normalise state: %w", err)
	}
	s.Log.Info("normalise state rebuilt", "batches", n, "products", s.cat.size(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// fold applies one product batch from the log to the state.
func (s *Stage) fold(m *pipeline.Message) {
	defer s.applied.Store(m.Sequence)
	if m.Header.Get(schemas.HeaderOrigin) == s.instance {
		return // committed when it was published
	}
	var b schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
		s.Log.Warn("skipping unreadable product batch", "seq", m.Sequence, "err", err)
		return
	}
	s.cat.apply(&b)
}

// Follow keeps the state current with what other normalise workers publish,
// from where Rebuild stopped, until ctx ends.
func (s *Stage) Follow(ctx context.Context) {
	go func() {
		if err := s.bus.Follow(ctx, pipeline.StreamProducts, s.applied.Load()+1, s.fold); err != nil {
			s.Log.Error("following the product log failed; change detection may miss other workers' changes", "err", err)
		}
	}()
}

// caughtUp waits briefly until the state holds everything the product log
// holds now, so a full upload's deletions see every worker's changes.
func (s *Stage) caughtUp(ctx context.Context) (bool, error) {
	last, err := s.bus.LastSequence(ctx, pipeline.StreamProducts)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.applied.Load() < last {
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true, nil
}

// Handle normalises one raw batch, or closes an upload.
func (s *Stage) Handle(ctx context.Context, m *pipeline.Message) error {
	var rb schemas.RawBatch
	if err := schemas.UnmarshalRawBatch(m.Data, &rb); err != nil {
		return pipeline.Terminal(err)
	}
	if rb.End != nil {
		return s.close(ctx, &rb)
	}
	mp, err := s.mapping(ctx, rb.Partner, rb.MappingVersion)
	if err != nil {
		return err
	}
	staged, err := s.staged(ctx, &rb)
	if err != nil {
		return err
	}
	out, rec, pending := s.normalise(&rb, mp)
	// The first record of a batch wins: a redelivery after a crash reports
	// what the first attempt counted, whatever state it finds now.
	if err := s.Ledger.RecordNormalise(ctx, rb.Upload, rb.Batch, rec); err != nil {
		return err
	}
	if staged {
		// The catalog learns these changes when the upload is applied.
		return s.publish(ctx, out, stagedSubject(out), schemas.MsgID("staged", rb.Upload, rb.Batch))
	}
	if err := s.publish(ctx, out, productSubject(out), schemas.MsgID("product", rb.Upload, rb.Batch)); err != nil {
		return err
	}
	s.cat.commit(rb.Partner, rb.UploadSeq, pending, out.Seen)
	return nil
}

func productSubject(b *schemas.ProductBatch) string {
	return schemas.Subject(schemas.SubjectProduct, b.Partner)
}

func stagedSubject(b *schemas.ProductBatch) string {
	return schemas.Subject(schemas.Subject(schemas.SubjectStaged, b.Partner), b.Upload)
}

// staged decides, once per upload, whether a full upload's changes wait in
// the staging stream until it closes, where it may be held: only when the
// partner has live products it could delete, and may be held at all.
func (s *Stage) staged(ctx context.Context, rb *schemas.RawBatch) (bool, error) {
	if rb.Mode != schemas.ModeFull {
		return false, nil
	}
	if v, ok := s.staging.Get(rb.Upload); ok {
		return v, nil
	}
	up, err := s.Ledger.Upload(ctx, rb.Upload)
	if err != nil {
		return false, err
	}
	want := up.MaxDeletePercent < 100 && s.cat.live(rb.Partner) > 0
	got, err := s.Ledger.RecordStaging(ctx, rb.Upload, want)
	if err != nil {
		return false, err
	}
	s.staging.Add(rb.Upload, got)
	return got, nil
}

func (s *Stage) mapping(ctx context.Context, partner string, version int) (schemas.Mapping, error) {
	key := partner + "@" + strconv.Itoa(version)
	s.mu.Lock()
	mp, ok := s.mappings[key]
	s.mu.Unlock()
	if ok {
		return mp, nil
	}
	mp, err := s.Mappings.Mapping(ctx, partner, version)
	if errors.Is(err, schemas.ErrNotFound) {
		return mp, pipeline.Terminal(fmt.Errorf("mapping version %d of partner %s does not exist", version, partner))
	}
	if err != nil {
		return mp, err
	}
	s.mu.Lock()
	s.mappings[key] = mp
	s.mu.Unlock()
	return mp, nil
}

// normalise maps every row and keeps only real changes.
func (s *Stage) normalise(rb *schemas.RawBatch, mp schemas.Mapping) (*schemas.ProductBatch, schemas.NormaliseRecord, map[string]entry) {
	out := &schemas.ProductBatch{Upload: rb.Upload, Partner: rb.Partner, Batch: rb.Batch, Seq: rb.UploadSeq, At: s.Now().UTC()}
	rec := schemas.NormaliseRecord{Read: int64(len(rb.Rows) + len(rb.Rejections))}
	reject := func(r schemas.Rejection) {
		rec.Rejected++
		if len(rec.Rejections) < schemas.MaxReportedRejections {
			rec.Rejections = append(rec.Rejections, r)
		}
	}
	rm := schemas.NewRowMapper(mp, rb.Partner, rb.Columns, rb.ReceivedAt)
	// A row the decoder could not read whole may still name its product:
	// that product is listed, and the issue carries its id.
	named := make(map[int64]string, len(rb.RejectedRows))
	for _, row := range rb.RejectedRows {
		if sku := rm.SourceID(row); sku != "" {
			named[row.Row] = sku
		}
	}
	for _, r := range rb.Rejections {
		if r.SourceID == "" {
			r.SourceID = named[r.Row]
		}
		reject(r)
		s.keepRejected(rb.Partner, r.SourceID, out)
	}
	// Rows of this batch not yet in the state: a product listed twice in
	// one batch is compared against its earlier row.
	pending := map[string]entry{}
	for _, row := range rb.Rows {
		version := rb.UploadSeq<<32 | uint64(row.Row)
		if sku, del := rm.Deleted(row); del {
			id := schemas.ProductID(rb.Partner, sku)
			e, ok := pending[id]
			if !ok {
				e, ok = s.cat.get(rb.Partner, id)
			}
			if !ok || e.deleted || e.version >= version {
				rec.Unchanged++ // nothing to delete, or a replay
				continue
			}
			rec.Accepted++
			out.Changes = append(out.Changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: id, Version: version, Row: row.Row})
			e.deleted, e.version = true, version
			pending[id] = e
			continue
		}
		p, rej := rm.Map(row)
		if rej != nil {
			reject(*rej)
			s.keepRejected(rb.Partner, rej.SourceID, out)
			continue
		}
		p.Version = version
		e, ok := pending[p.ID]
		if !ok {
			e, ok = s.cat.get(rb.Partner, p.ID)
		}
		if ok && e.version >= p.Version {
			rec.Unchanged++ // a replay of a row already applied
			continue
		}
		fp := p.Fingerprint()
		if ok && !e.deleted && e.fp == fp {
			rec.Unchanged++
			out.Seen = append(out.Seen, p.ID)
			continue
		}
		rec.Accepted++
		ch := schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: p.ID, Version: p.Version, Row: row.Row, New: !ok || e.deleted}
		price := p.EffectivePrice()
		if ok && !e.deleted && (e.price != price || e.currency != p.Currency) {
			ch.Price = &schemas.PriceChange{Old: e.price, New: price, Currency: p.Currency}
		}
		prod := p
		ch.Product = &prod
		out.Changes = append(out.Changes, ch)
		pending[p.ID] = entry{fp: fp, version: p.Version, price: price, currency: p.Currency, seen: rb.UploadSeq}
	}
	return out, rec, pending
}

// keepRejected marks the product a rejected row names as listed, so a full
// upload keeps its last accepted version instead of deleting it.
func (s *Stage) keepRejected(partner, sku string, out *schemas.ProductBatch) {
	if sku == "" || len(sku) > schemas.MaxSKUBytes {
		return
	}
	id := schemas.ProductID(partner, sku)
	if e, ok := s.cat.get(partner, id); ok && !e.deleted {
		out.Seen = append(out.Seen, id)
	}
}

// close finishes an upload once every raw batch is normalised: a staged
// full upload that would delete too much is held; otherwise its changes are
// applied, the partner's products it did not list are deleted, and the
// upload's run summary goes downstream.
func (s *Stage) close(ctx context.Context, rb *schemas.RawBatch) error {
	if rb.Decision == schemas.DecisionCancel {
		return s.discardStaged(ctx, rb)
	}
	done, err := s.Ledger.NormalisedBatches(ctx, rb.Upload)
	if err != nil {
		return err
	}
	if done < rb.End.Batches {
		return pipeline.Later(fmt.Errorf("upload %s: %d of %d batches normalised", rb.Upload, done, rb.End.Batches), 250*time.Millisecond)
	}
	if ok, err := s.caughtUp(ctx); err != nil {
		return err
	} else if !ok {
		return pipeline.Later(fmt.Errorf("upload %s: waiting for the product log to catch up", rb.Upload), 250*time.Millisecond)
	}
	status, err := s.Ledger.Status(ctx, rb.Upload)
	if err != nil {
		return err
	}
	switch {
	case status.State == schemas.StateCancelled:
		return s.discardStaged(ctx, rb)
	case status.State == schemas.StateHeld && rb.Decision != schemas.DecisionConfirm:
		return nil // held before; the partner's confirmation closes it again
	}
	// A full upload with no valid row is a broken feed, not an empty shop:
	// keep the catalog.
	listed := status.Counts.Accepted+status.Counts.Unchanged > 0
	staged := false
	if rb.Mode == schemas.ModeFull {
		if staged, err = s.staged(ctx, rb); err != nil {
			return err
		}
	}
	if staged {
		confirmed := rb.Decision == schemas.DecisionConfirm || (status.Hold != nil && status.Hold.Decision == schemas.DecisionConfirm)
		if listed && !confirmed {
			held, err := s.hold(ctx, rb)
			if err != nil || held {
				return err
			}
		}
		// Once the deletions are recorded, a redelivery finds the staged
		// changes applied and already removed.
		if err := s.applyStaged(ctx, rb, status.Counts.Read > 0 && !status.Normalised); err != nil {
			return err
		}
	}
	var deleted int64
	if rb.Mode == schemas.ModeFull {
		var ids []string
		if listed {
			ids = s.cat.absent(rb.Partner, rb.UploadSeq)
		}
		chunks := (len(ids) + DeleteChunk - 1) / DeleteChunk
		rec, err := s.Ledger.RecordDeletes(ctx, rb.Upload, schemas.DeleteRecord{Batches: chunks, Deleted: int64(len(ids))})
		if err != nil {
			return err
		}
		if rec.Batches != chunks {
			s.Log.Warn("deletion count differs from the first attempt", "upload", rb.Upload, "first", rec.Batches, "now", chunks)
		}
		for i := 0; i < chunks; i++ {
			part := ids[i*DeleteChunk : min((i+1)*DeleteChunk, len(ids))]
			b := &schemas.ProductBatch{Upload: rb.Upload, Partner: rb.Partner, Batch: rb.End.Batches + i, Seq: rb.UploadSeq, At: s.Now().UTC()}
			for _, id := range part {
				b.Changes = append(b.Changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: id, Version: rb.UploadSeq<<32 | deleteRow})
			}
			if err := s.publish(ctx, b, productSubject(b), schemas.MsgID("product", rb.Upload, b.Batch)); err != nil {
				return err
			}
			s.cat.apply(b)
		}
		deleted = int64(len(ids))
	}
	counts := status.Counts
	counts.Deleted = deleted
	end := &schemas.ProductBatch{Upload: rb.Upload, Partner: rb.Partner, Batch: -1, Seq: rb.UploadSeq, At: s.Now().UTC(), End: &schemas.UploadRun{
		Upload: status.ID, Partner: status.Partner, Mode: status.Mode, Format: status.Format, MappingVersion: status.MappingVersion,
		ReceivedAt: status.ReceivedAt, FinishedAt: s.Now().UTC(), Counts: counts,
	}}
	s.Log.Info("upload normalised", "upload", rb.Upload, "partner", rb.Partner, "read", counts.Read,
		"accepted", counts.Accepted, "unchanged", counts.Unchanged, "rejected", counts.Rejected, "deleted", deleted)
	if err := s.publish(ctx, end, productSubject(end), schemas.MsgID("product", rb.Upload, "end")); err != nil {
		return err
	}
	if staged {
		return s.discardStaged(ctx, rb)
	}
	return nil
}

// hold counts what a staged full upload would delete and, past the share
// its partner allows, records the hold instead of applying it.
func (s *Stage) hold(ctx context.Context, rb *schemas.RawBatch) (bool, error) {
	up, err := s.Ledger.Upload(ctx, rb.Upload)
	if err != nil {
		return false, err
	}
	listed := map[uint64]struct{}{}
	if _, err := s.bus.Replay(ctx, pipeline.StreamStaged, stagedSubject(&schemas.ProductBatch{Partner: rb.Partner, Upload: rb.Upload}), func(m *pipeline.Message) error {
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return fmt.Errorf("staged batch %d of upload %s: %w", m.Sequence, rb.Upload, err)
		}
		for i := range b.Changes {
			listed[xxhash.Sum64String(b.Changes[i].ID)] = struct{}{}
		}
		for _, id := range b.Seen {
			listed[xxhash.Sum64String(id)] = struct{}{}
		}
		return nil
	}); err != nil {
		return false, err
	}
	would, live := s.cat.wouldDelete(rb.Partner, rb.UploadSeq, listed)
	if !schemas.Exceeds(would, live, up.MaxDeletePercent) {
		return false, nil
	}
	if _, err := s.Ledger.RecordHold(ctx, rb.Upload, schemas.HoldRecord{
		WouldDelete: would, Live: live, MaxDeletePercent: up.MaxDeletePercent,
		UploadSeq: rb.UploadSeq, End: *rb.End, At: s.Now().UTC(),
	}); err != nil {
		return false, err
	}
	s.Log.Warn("full upload held: it would delete more of the catalog than allowed", "upload", rb.Upload, "partner", rb.Partner,
		"would_delete", would, "live", live, "max_delete_percent", up.MaxDeletePercent)
	return true, nil
}

// applyStaged publishes a staged upload's changes to the product log, in
// the order they were staged, and folds them into the catalog.
func (s *Stage) applyStaged(ctx context.Context, rb *schemas.RawBatch, wantSome bool) error {
	n, err := s.bus.Replay(ctx, pipeline.StreamStaged, stagedSubject(&schemas.ProductBatch{Partner: rb.Partner, Upload: rb.Upload}), func(m *pipeline.Message) error {
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return fmt.Errorf("staged batch %d of upload %s: %w", m.Sequence, rb.Upload, err)
		}
		if err := s.publishData(ctx, &b, m.Data, productSubject(&b), schemas.MsgID("product", rb.Upload, b.Batch)); err != nil {
			return err
		}
		s.cat.apply(&b)
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 && wantSome {
		return pipeline.Terminal(fmt.Errorf("the changes of upload %s are gone: it was held longer than they are kept (%s); upload the file again", rb.Upload, pipeline.StagedRetention))
	}
	return nil
}

// discardStaged removes what a full upload staged.
func (s *Stage) discardStaged(ctx context.Context, rb *schemas.RawBatch) error {
	return s.bus.Purge(ctx, pipeline.StreamStaged, stagedSubject(&schemas.ProductBatch{Partner: rb.Partner, Upload: rb.Upload}))
}

func (s *Stage) publish(ctx context.Context, b *schemas.ProductBatch, subject, id string) error {
	data, err := schemas.MarshalProductBatch(b)
	if err != nil {
		return err
	}
	return s.publishData(ctx, b, data, subject, id)
}

func (s *Stage) publishData(ctx context.Context, b *schemas.ProductBatch, data []byte, subject, id string) error {
	hdr := nats.Header{}
	hdr.Set(schemas.HeaderPartner, b.Partner)
	hdr.Set(schemas.HeaderUpload, b.Upload)
	hdr.Set(schemas.HeaderBatch, strconv.Itoa(b.Batch))
	hdr.Set(schemas.HeaderOrigin, s.instance)
	_, err := s.Pub.Publish(ctx, pipeline.Outgoing{Subject: subject, MsgID: id, Data: data, Header: hdr})
	return err
}
