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

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
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
	// Products reads a product's current version from the product log,
	// for a row that updates only some of its fields.
	Products ProductLog
	// checkpoints, when set, is where rebuild finds the catalog's latest
	// checkpoint, so it replays only the log after it.
	checkpoints *pipeline.Checkpoints
	unfolded    atomic.Int64 // own product batches published and not yet folded into cat
}

// ProductLog reads the product batch stored at a PRODUCTS sequence.
type ProductLog interface {
	BatchAt(ctx context.Context, seq uint64) (*schemas.ProductBatch, error)
}

// New builds the stage on bus, its change-detection state rebuilt from the
// product log; Follow keeps that state current while the stage runs.
func New(ctx context.Context, bus *pipeline.Bus, ledger schemas.UploadLedger, mappings schemas.MappingStore, pub pipeline.Publisher, log *slog.Logger, opts ...Option) (*Stage, error) {
	if bus == nil || ledger == nil || mappings == nil || pub == nil || log == nil {
		return nil, errors.New("normalise: New needs a bus, an upload ledger, a mapping store, a publisher and a logger")
	}
	s := newStage(ledger, mappings, pub, log)
	for _, o := range opts {
		o(s)
	}
	if err := s.rebuild(ctx, bus); err != nil {
		return nil, err
	}
	return s, nil
}

// Option adds to what New builds.
type Option func(*Stage)

// WithCheckpoints rebuilds the catalog from its latest checkpoint in cps
// and the log after it, instead of the whole log.
func WithCheckpoints(cps *pipeline.Checkpoints) Option {
	return func(s *Stage) { s.checkpoints = cps }
}

// newStage is the stage before its state is rebuilt.
func newStage(ledger schemas.UploadLedger, mappings schemas.MappingStore, pub pipeline.Publisher, log *slog.Logger) *Stage {
	staging, _ := lru.New[string, bool](1024) // fails only for a size below 1
	return &Stage{Ledger: ledger, Mappings: mappings, Pub: pub, Log: log, Now: time.Now, cat: newCatalog(),
		mappings: map[string]schemas.Mapping{}, instance: strconv.FormatUint(rand.Uint64(), 36), staging: staging}
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "normalise",
		Stream:    topology.StreamRaw,
		Handle:    pipeline.Concurrent(s.Handle, 2),
		BatchSize: 16,
	}
}

// rebuild folds the product log into the change-detection state: from
// the latest checkpoint on when there is a usable one, else all of it.
func (s *Stage) rebuild(ctx context.Context, bus *pipeline.Bus) error {
	start := time.Now()
	s.bus = bus
	from, err := s.load(ctx, bus)
	if err != nil {
		return fmt.Errorf("rebuild normalise state: %w", err)
	}
	n, _, err := bus.ReplayFrom(ctx, topology.StreamProducts, "", from, func(m *pipeline.Message) error {
		s.fold(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild normalise state: %w", err)
	}
	s.Log.Info("normalise state rebuilt", "from", from, "batches", n, "products", s.cat.size(), "took", time.Since(start).Round(time.Millisecond))
	if s.Products == nil {
		s.Products = newBusProducts(bus)
	}
	return nil
}

// fold applies one product batch from the log to the state.
func (s *Stage) fold(m *pipeline.Message) {
	defer s.applied.Store(m.Sequence)
	if m.Metadata.Get(schemas.HeaderOrigin) == s.instance {
		return // committed when it was published
	}
	var b schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
		s.Log.Warn("skipping unreadable product batch", "seq", m.Sequence, "err", err)
		return
	}
	s.cat.apply(&b, m.Sequence)
}

// Follow keeps the state current with what other normalise workers publish,
// from where the rebuild stopped, until ctx ends.
func (s *Stage) Follow(ctx context.Context) {
	go func() {
		if err := s.bus.Follow(ctx, topology.StreamProducts, s.applied.Load()+1, s.fold); err != nil {
			s.Log.Error("following the product log failed; change detection may miss other workers' changes", "err", err)
		}
	}()
}

// caughtUp waits briefly until the state holds everything the product log
// holds now, so a full upload's deletions see every worker's changes.
func (s *Stage) caughtUp(ctx context.Context) (bool, error) {
	last, err := s.bus.LastSequence(ctx, topology.StreamProducts)
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
	// A cancelled upload's remaining batches are dropped: nothing more of
	// it is applied.
	if cancelled, err := s.Ledger.Cancelled(ctx, rb.Upload); err != nil || cancelled {
		return err
	}
	mp, err := s.mapping(ctx, rb.Partner, rb.MappingVersion)
	if err != nil {
		return err
	}
	staged, err := s.staged(ctx, &rb)
	if err != nil {
		return err
	}
	out, rec, pending, issues, err := s.normalise(ctx, &rb, mp)
	if err != nil {
		return err
	}
	// The full list first: once the batch is counted, its issues are stored.
	if err := s.publishIssues(ctx, &rb, issues); err != nil {
		return err
	}
	// The first record of a batch wins: a redelivery after a crash reports
	// what the first attempt counted, whatever state it finds now.
	if err := s.Ledger.RecordNormalise(ctx, rb.Upload, rb.Batch, rec); err != nil {
		return err
	}
	for outcome, n := range map[string]int64{"accepted": rec.Accepted, "unchanged": rec.Unchanged, "rejected": rec.Rejected, "excluded": rec.Excluded} {
		pipeline.CountItems(ctx, outcome, n)
	}
	if staged {
		// The catalog learns these changes when the upload is applied.
		if _, err := s.publish(ctx, schemas.StagedBatch{ProductBatch: out}); err != nil {
			return err
		}
	} else if err := s.publishFolded(ctx, out, func(at uint64) { s.cat.commit(rb.Partner, rb.UploadSeq, pending, out.Seen, at) }); err != nil {
		return err
	}
	// Counted is not yet stored: the upload's close, on another worker or
	// beside this one, waits for this mark before it reckons deletions.
	return s.Ledger.RecordStored(ctx, rb.Upload, rb.Batch)
}

// maxIssuePart bounds one issues message, well below what a stream takes.
const maxIssuePart = 1 << 20

// publishIssues stores every issue of a raw batch on the upload's issues
// subject, in parts of at most maxIssuePart; each part's id makes a
// republish within the duplicate window a no-op, and readers skip a part
// they saw.
func (s *Stage) publishIssues(ctx context.Context, rb *schemas.RawBatch, issues []schemas.Issue) error {
	for part := 0; len(issues) > 0; part++ {
		n, size := 0, 0
		for n < len(issues) && (n == 0 || size+issueSize(&issues[n]) <= maxIssuePart) {
			size += issueSize(&issues[n])
			n++
		}
		ib := &schemas.IssueBatch{Upload: rb.Upload, Partner: rb.Partner, Batch: rb.Batch, Part: part, Issues: issues[:n]}
		if _, err := pipeline.Publish(ctx, s.Pub, ib); err != nil {
			return err
		}
		issues = issues[n:]
	}
	return nil
}

// issueSize is about what an issue takes in JSON.
func issueSize(i *schemas.Issue) int {
	return 96 + len(i.SourceID) + len(i.Field) + len(i.Code) + len(i.Reason)
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

// normalise maps every row and keeps only real changes. It returns every
// issue of the batch: the decoder's, the mapping's, and the rows a later
// row of the same product supersedes.
func (s *Stage) normalise(ctx context.Context, rb *schemas.RawBatch, mp schemas.Mapping) (*schemas.ProductBatch, schemas.NormaliseRecord, map[string]entry, []schemas.Issue, error) {
	out := &schemas.ProductBatch{Upload: rb.Upload, Partner: rb.Partner, Batch: rb.Batch, Seq: rb.UploadSeq, At: s.Now().UTC()}
	rec := schemas.NormaliseRecord{Read: int64(len(rb.Rows) + len(rb.Rejections))}
	var issues []schemas.Issue
	note := func(list ...schemas.Issue) {
		for _, i := range list {
			rec.Issues.Add(i)
		}
		issues = append(issues, list...)
	}
	reject := func(r schemas.Issue) {
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
		if r.Code == "" {
			r.Code = schemas.CodeRowUnreadable
		}
		r.Severity = schemas.SeverityError
		note(r)
		reject(r)
		s.keepRejected(rb.Partner, r.SourceID, out)
	}
	superseded := make(map[int64]int64, len(rb.Superseded))
	for _, sp := range rb.Superseded {
		superseded[sp.Row] = sp.By
	}
	// Rows of this batch not yet in the state: a product listed twice in
	// one batch is compared against its earlier row.
	pending := map[string]entry{}
	changed := map[string]*schemas.Product{}
	for _, row := range rb.Rows {
		version := rb.UploadSeq<<32 | uint64(row.Row)
		if by, ok := superseded[row.Row]; ok {
			// The last row of a product wins; this one changes nothing.
			rec.Unchanged++
			rec.Warnings++
			sku := rm.SourceID(row)
			note(schemas.Issue{Row: row.Row, SourceID: sku, Field: "id", Code: schemas.CodeDuplicateID, Severity: schemas.SeverityWarning,
				Reason: fmt.Sprintf("id %q appears again on row %d; the last row of a product is used, this one changes nothing", sku, by)})
			continue
		}
		if rm.Excluded(row) {
			// Left out as feed tools leave excluded items out: a full
			// upload does not list the product.
			rec.Excluded++
			continue
		}
		op := rm.Operation(row)
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
		var p schemas.Product
		var found []schemas.Issue
		if op == schemas.OpUpdate {
			prev, ok, err := s.current(ctx, rb.Partner, rm.SourceID(row), pending, changed)
			if err != nil {
				return nil, rec, nil, nil, err
			}
			if ok {
				p, found = rm.MapUpdate(row, prev)
			} else {
				p, found = rm.Map(row) // an update of a product not in the catalog must be whole
			}
		} else {
			p, found = rm.Map(row)
		}
		note(found...)
		if schemas.HasError(found) {
			for _, f := range found {
				if f.IsError() {
					reject(f)
					break
				}
			}
			s.keepRejected(rb.Partner, rm.SourceID(row), out)
			continue
		}
		if len(found) > 0 {
			rec.Warnings++
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
		changed[p.ID] = &prod
		pending[p.ID] = entry{fp: fp, version: p.Version, price: price, currency: p.Currency, seen: rb.UploadSeq}
	}
	return out, rec, pending, issues, nil
}

// current is the product's version an update row applies to: this batch's
// own change of it, else the one the product log holds. ok is false when
// the catalog has no live product of that id.
func (s *Stage) current(ctx context.Context, partner, sku string, pending map[string]entry, changed map[string]*schemas.Product) (schemas.Product, bool, error) {
	if sku == "" {
		return schemas.Product{}, false, nil
	}
	id := schemas.ProductID(partner, sku)
	if e, ok := pending[id]; ok {
		if p := changed[id]; p != nil && !e.deleted {
			return *p, true, nil
		}
		return schemas.Product{}, false, nil
	}
	e, ok := s.cat.get(partner, id)
	if !ok || e.deleted || e.at == 0 || s.Products == nil {
		return schemas.Product{}, false, nil
	}
	b, err := s.Products.BatchAt(ctx, e.at)
	if err != nil {
		// Compaction may have just moved the product to a compacted batch.
		if moved, ok := s.cat.get(partner, id); ok && moved.at != e.at && moved.version == e.version {
			e = moved
			b, err = s.Products.BatchAt(ctx, e.at)
		}
	}
	if err != nil {
		return schemas.Product{}, false, fmt.Errorf("read the current version of %s for an update: %w", id, err)
	}
	for i := range b.Changes {
		if c := &b.Changes[i]; c.ID == id && c.Version == e.version && c.Product != nil {
			return *c.Product, true, nil
		}
	}
	return schemas.Product{}, false, fmt.Errorf("product batch at sequence %d does not hold version %d of %s", e.at, e.version, id)
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
	// A cancelled upload deletes nothing and applies nothing it staged.
	if cancelled, err := s.Ledger.Cancelled(ctx, rb.Upload); err != nil {
		return err
	} else if cancelled {
		s.Log.Info("upload cancelled: its staged changes and deletions are dropped", "upload", rb.Upload, "partner", rb.Partner)
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
			if err := s.publishFolded(ctx, b, func(at uint64) { s.cat.apply(b, at) }); err != nil {
				return err
			}
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
	if _, err := s.publish(ctx, end); err != nil {
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
	if _, err := s.bus.Replay(ctx, topology.StreamStaged, schemas.StagedSubject(rb.Partner, rb.Upload), func(m *pipeline.Message) error {
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
	n, err := s.bus.Replay(ctx, topology.StreamStaged, schemas.StagedSubject(rb.Partner, rb.Upload), func(m *pipeline.Message) error {
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
			return fmt.Errorf("staged batch %d of upload %s: %w", m.Sequence, rb.Upload, err)
		}
		return s.publishFolded(ctx, stored{&b, m.Data}, func(at uint64) { s.cat.apply(&b, at) })
	})
	if err != nil {
		return err
	}
	if n == 0 && wantSome {
		return pipeline.Terminal(fmt.Errorf("the changes of upload %s are gone: it was held longer than they are kept (%s); upload the file again", rb.Upload, topology.StagedRetention))
	}
	return nil
}

// discardStaged removes what a full upload staged.
func (s *Stage) discardStaged(ctx context.Context, rb *schemas.RawBatch) error {
	return s.bus.Purge(ctx, topology.StreamStaged, schemas.StagedSubject(rb.Partner, rb.Upload))
}

// publish stores a product batch (on the product log, or staged) and
// returns its stream sequence. It is marked as this worker's, so Follow
// skips it.
func (s *Stage) publish(ctx context.Context, b pipeline.Event) (uint64, error) {
	out, err := pipeline.Envelope(b)
	if err != nil {
		return 0, err
	}
	out.Metadata[schemas.HeaderOrigin] = s.instance
	return s.Pub.Publish(ctx, out)
}

// publishFolded publishes a product batch to the product log and folds it
// into the catalog with fold. A checkpoint is copied only while no batch
// is between the two (see snapshot).
func (s *Stage) publishFolded(ctx context.Context, b pipeline.Event, fold func(at uint64)) error {
	s.unfolded.Add(1)
	defer s.unfolded.Add(-1)
	at, err := s.publish(ctx, b)
	if err != nil {
		return err
	}
	fold(at)
	return nil
}

// stored is a staged batch on its way to the product log as it was stored.
type stored struct {
	*schemas.ProductBatch
	data []byte
}

func (b stored) Encode() ([]byte, error) { return b.data, nil }
