// Package embedsearch is the embedded product search index: a Bleve scorch
// index on local disk implementing schemas.ProductIndex.
package embedsearch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
	"golang.org/x/sync/singleflight"

	"feedline/schemas"
)

// ErrIncompatible is returned by Open for an index written with another field
// layout; it is derived state, so the caller rebuilds it from the log.
var ErrIncompatible = errors.New("embedsearch: index was written with another layout")

// closeWait bounds how long Close (and creation) waits for background
// persistence.
const closeWait = 2 * time.Minute

// Index is the embedded product index. Search and Get run concurrently with
// Apply, and Apply calls run concurrently with each other: only the version
// check is serialised, and a call touching a product that another call is
// still writing waits for it, so per product the check and its write are one
// step.
type Index struct {
	bleve   bleve.Index
	docs    docBuilder
	sources *sourceCodec

	mu      sync.Mutex
	settled *sync.Cond          // broadcast when a write finishes
	writing map[string]struct{} // products whose batch is being written
	writes  int                 // batches being written
	closed  bool

	persisted persistence
	answers   resultCache
	inflight  singleflight.Group
	segments  segmentCache

	stopWarming context.CancelFunc
	warmed      chan struct{} // closed once warming ended

	// suggest counts suggestion terms: the indexed ones in the background
	// from Open on (suggestCounted closes when done), then every change
	// Apply writes once countingSuggestions is set (guarded by mu).
	suggest             *suggestTable
	countingSuggestions bool
	stopCounting        context.CancelFunc
	suggestCounted      chan struct{}
}

var _ schemas.ProductIndex = (*Index)(nil)

// scorchConfig is the storage configuration, given both at creation and at
// every open (bleve keeps the creation copy in the index metadata).
func scorchConfig() map[string]any {
	return map[string]any{
		"unsafe_batch": true,
		"scorchPersisterOptions": map[string]any{
			// Napping lets several applied batches be merged in memory and
			// written as one segment instead of one file per batch.
			"PersisterNapTimeMSec":      50,
			"PersisterNapUnderNumFiles": 1000,
		},
	}
}

// Open opens the index in dir, creating it when dir does not exist (or is an
// empty directory).
func Open(dir string) (*Index, error) {
	fresh, err := needsCreate(dir)
	if err != nil {
		return nil, fmt.Errorf("embedsearch: open %s: %w", dir, err)
	}
	if fresh {
		return create(dir)
	}
	bi, err := bleve.OpenUsing(dir, scorchConfig())
	if err != nil {
		return nil, fmt.Errorf("embedsearch: open %s: %w", dir, err)
	}
	v, err := bi.GetInternal(schemaKey)
	if err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("embedsearch: open %s: %w", dir, err)
	}
	if string(v) != schemaVersion {
		_ = bi.Close()
		return nil, fmt.Errorf("%w: %s has %q, want %q", ErrIncompatible, dir, v, schemaVersion)
	}
	ix := newIndex(bi)
	if err := ix.sources.load(bi); err != nil {
		_ = bi.Close()
		if errors.Is(err, errDictMissing) {
			return nil, fmt.Errorf("%w: %s: %w", ErrIncompatible, dir, err)
		}
		return nil, fmt.Errorf("embedsearch: open %s: %w", dir, err)
	}
	if err := ix.countSuggestions(); err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("embedsearch: open %s: %w", dir, err)
	}
	ix.warm(dir)
	return ix, nil
}

// countSuggestions starts counting the indexed suggestion terms; Close stops it.
func (ix *Index) countSuggestions() error {
	ctx, cancel := context.WithCancel(context.Background())
	if err := ix.startSuggestions(ctx); err != nil {
		cancel()
		return err
	}
	ix.stopCounting = cancel
	return nil
}

func create(dir string) (*Index, error) {
	im, err := newMapping()
	if err != nil {
		return nil, fmt.Errorf("embedsearch: %w", err)
	}
	bi, err := bleve.NewUsing(dir, im, scorch.Name, scorch.Name, scorchConfig())
	if err != nil {
		return nil, fmt.Errorf("embedsearch: create %s: %w", dir, err)
	}
	ix := newIndex(bi)
	// The layout marker goes to disk before the index is handed out, so a
	// crash right after creation does not leave an index Open rejects.
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	if err := ix.setInternal(ctx, schemaKey, []byte(schemaVersion)); err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("embedsearch: create %s: %w", dir, err)
	}
	// A new index holds no term to count: Apply counts from the first change.
	ix.countingSuggestions = true
	ix.suggest.finish(nil)
	return ix, nil
}

// setInternal stores a key in the index's internal storage and waits for it
// to reach the disk.
func (ix *Index) setInternal(ctx context.Context, key, val []byte) error {
	b := ix.bleve.NewBatch()
	b.SetInternal(key, val)
	settle := ix.persisted.track(b)
	if err := ix.bleve.Batch(b); err != nil {
		settle(nil)
		return err
	}
	return ix.Flush(ctx)
}

func newIndex(bi bleve.Index) *Index {
	sources := newSourceCodec()
	ix := &Index{
		bleve:   bi,
		docs:    docBuilder{text: newTextAnalyzer(), sources: sources},
		sources: sources,
		writing: make(map[string]struct{}),
	}
	ix.settled = sync.NewCond(&ix.mu)
	ix.stopWarming = func() {}
	ix.warmed = make(chan struct{})
	close(ix.warmed)
	ix.suggest = newSuggestTable()
	ix.stopCounting = func() {}
	ix.suggestCounted = make(chan struct{})
	close(ix.suggestCounted)
	return ix
}

// needsCreate reports whether dir holds no index yet: it is missing or empty.
func needsCreate(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.Readdirnames(1)
	_ = f.Close()
	if errors.Is(err, io.EOF) {
		// bleve creates the directory itself and refuses an existing one.
		return true, os.Remove(filepath.Clean(dir))
	}
	return false, err
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("embedsearch: index is closed")

// Apply writes changes as one batch. Per product the highest version wins:
// a change older than the stored version (or than another change for the
// same product in this call) is Stale; one equal to it counts again as
// Indexed or Deleted without rewriting; a newer one is written. Deletes leave
// a tombstone carrying their version. Apply returns once the batch is
// searchable and its products' suggestion terms are counted; Flush waits
// for it to reach the disk.
func (ix *Index) Apply(ctx context.Context, changes []schemas.ProductChange) (schemas.ApplyResult, error) {
	var res schemas.ApplyResult
	if len(changes) == 0 {
		return res, nil
	}
	if err := schemas.ValidateChanges(changes); err != nil {
		return res, fmt.Errorf("embedsearch: %w", err)
	}

	// The winner per product is its highest version in this call, the first
	// one listed among equals; computing it up front makes a replay of the
	// same call report the same counts.
	winner := make(map[string]int, len(changes))
	ids := make([]string, 0, len(changes))
	for i := range changes {
		c := &changes[i]
		w, seen := winner[c.ID]
		if !seen {
			ids = append(ids, c.ID)
			winner[c.ID] = i
		} else if c.Version > changes[w].Version {
			winner[c.ID] = i
		}
	}
	// A partner's first large batch teaches the stored products'
	// compression before any of them is encoded.
	if err := ix.sources.learn(ctx, ix, changes); err != nil {
		return res, fmt.Errorf("embedsearch: %w", err)
	}
	// Documents need no version check, so they are built before taking the
	// lock (a stale winner's document is simply dropped).
	docs := make(map[string]*document.Document, len(ids))
	suggest := make(map[string][]string, len(ids))
	for _, id := range ids {
		c := &changes[winner[id]]
		if c.Kind == schemas.ChangeDelete {
			docs[id] = ix.docs.tombstone(id, c.Version)
			continue
		}
		suggest[id] = c.Product.SuggestTerms()
		d, err := ix.docs.product(id, c.Version, c.Product, suggest[id])
		if err != nil {
			return res, fmt.Errorf("embedsearch: %w", err)
		}
		docs[id] = d
	}

	batch, written, old, res, err := ix.reserve(ctx, changes, winner, ids, docs)
	if err != nil || batch == nil {
		return res, err
	}
	defer ix.release(written)
	ix.answers.changed()
	defer ix.answers.changed()
	settle := ix.persisted.track(batch)
	if err := ix.bleve.Batch(batch); err != nil {
		settle(nil) // never introduced: nothing to wait for
		return schemas.ApplyResult{}, fmt.Errorf("embedsearch: apply batch: %w", err)
	}
	if old != nil {
		ix.suggest.add(suggestDeltas(written, old, suggest))
	}
	return res, nil
}

// reserve checks versions and, for the changes that win, fills a batch and
// marks their products as being written. It returns a nil batch when
// nothing needs writing. While suggestions are counted, it also returns
// the suggestion terms the stored products carry (none for new products).
func (ix *Index) reserve(ctx context.Context, changes []schemas.ProductChange, winner map[string]int, ids []string,
	docs map[string]*document.Document) (*bleve.Batch, []string, map[string][]string, schemas.ApplyResult, error) {
	var res schemas.ApplyResult
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for !ix.closed && ix.anyWriting(ids) {
		ix.settled.Wait()
	}
	if ix.closed {
		return nil, nil, nil, res, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, res, err
	}
	stored, old, err := ix.storedVersions(ids, ix.countingSuggestions)
	if err != nil {
		return nil, nil, nil, res, fmt.Errorf("embedsearch: read versions: %w", err)
	}

	batch := ix.bleve.NewBatch()
	var written []string
	for i := range changes {
		c := &changes[i]
		w := &changes[winner[c.ID]]
		sv, exists := stored[c.ID]
		if c.Version < w.Version || (exists && c.Version < sv) {
			res.Stale++
			res.StaleAt = append(res.StaleAt, i)
			continue
		}
		if c.Kind == schemas.ChangeDelete {
			res.Deleted++
		} else {
			res.Indexed++
		}
		if winner[c.ID] != i || (exists && c.Version == sv) {
			continue // already applied, or applied by an equal change listed earlier
		}
		if err := batch.IndexAdvanced(docs[c.ID]); err != nil {
			return nil, nil, nil, schemas.ApplyResult{}, fmt.Errorf("embedsearch: batch %s: %w", c.ID, err)
		}
		written = append(written, c.ID)
	}
	if len(written) == 0 {
		return nil, nil, nil, res, nil
	}
	for _, id := range written {
		ix.writing[id] = struct{}{}
	}
	ix.writes++
	return batch, written, old, res, nil
}

func (ix *Index) anyWriting(ids []string) bool {
	if len(ix.writing) == 0 {
		return false
	}
	for _, id := range ids {
		if _, ok := ix.writing[id]; ok {
			return true
		}
	}
	return false
}

func (ix *Index) release(written []string) {
	ix.mu.Lock()
	for _, id := range written {
		delete(ix.writing, id)
	}
	ix.writes--
	ix.mu.Unlock()
	ix.settled.Broadcast()
}

// storedVersions returns the applied version of each id that has a product
// or a tombstone, reading doc values rather than stored documents; with
// terms, also the suggestion terms of each stored product (non-nil), from
// the stored product: doc values of every product's suggestion terms cost
// more on disk than reading the few a change replaces.
func (ix *Index) storedVersions(ids []string, terms bool) (map[string]uint64, map[string][]string, error) {
	adv, err := ix.bleve.Advanced()
	if err != nil {
		return nil, nil, err
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	docs, err := r.DocIDReaderOnly(ids)
	if err != nil {
		return nil, nil, err
	}
	defer docs.Close()
	var old map[string][]string
	if terms {
		old = make(map[string][]string)
	}
	dv, err := r.DocValueReader([]string{fieldVersion})
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]uint64, len(ids))
	for {
		iid, err := docs.Next()
		if err != nil {
			return nil, nil, err
		}
		if iid == nil {
			return out, old, nil
		}
		id, err := r.ExternalID(iid)
		if err != nil {
			return nil, nil, err
		}
		var v uint64
		var found bool
		err = dv.VisitDocValues(iid, func(field string, term []byte) {
			if field == fieldVersion {
				v, found = decodeVersion(term)
			}
		})
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return nil, nil, fmt.Errorf("document %s has no version", id)
		}
		out[id] = v
		if terms {
			carried, err := ix.storedSuggestTerms(r, id)
			if err != nil {
				return nil, nil, err
			}
			if carried != nil {
				old[id] = carried
			}
		}
	}
}

// storedSuggestTerms are the suggestion terms of the product stored under
// id in r; nil for a tombstone.
func (ix *Index) storedSuggestTerms(r index.IndexReader, id string) ([]string, error) {
	d, err := r.Document(id)
	if err != nil || d == nil {
		return nil, err
	}
	var src []byte
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldSource {
			src = f.Value()
		}
	})
	if src == nil {
		return nil, nil
	}
	p, err := ix.sources.decode(id, src)
	if err != nil {
		return nil, err
	}
	return p.SuggestTerms(), nil
}

// persistence tracks batches that are applied but not yet on disk.
type persistence struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan struct{}
	err     error // the first persistence failure; sticky
}

// track registers batch; the returned func settles it by hand when it was
// never applied.
func (p *persistence) track(batch *bleve.Batch) func(error) {
	done := make(chan struct{})
	p.mu.Lock()
	if p.pending == nil {
		p.pending = make(map[uint64]chan struct{})
	}
	key := p.next
	p.next++
	p.pending[key] = done
	p.mu.Unlock()
	var once sync.Once
	settle := func(err error) {
		once.Do(func() {
			p.mu.Lock()
			if err != nil && p.err == nil {
				p.err = err
			}
			delete(p.pending, key)
			p.mu.Unlock()
			close(done)
		})
	}
	batch.SetPersistedCallback(settle)
	return settle
}

// wait returns once every batch tracked before the call is on disk.
func (p *persistence) wait(ctx context.Context) error {
	p.mu.Lock()
	waits := make([]chan struct{}, 0, len(p.pending))
	for _, ch := range p.pending {
		waits = append(waits, ch)
	}
	p.mu.Unlock()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Flush waits until every batch applied so far is on disk, so a caller can
// acknowledge its source only for durable changes.
func (ix *Index) Flush(ctx context.Context) error {
	if err := ix.persisted.wait(ctx); err != nil {
		return fmt.Errorf("embedsearch: flush: %w", err)
	}
	return nil
}

// Get returns the product stored under id, or schemas.ErrNotFound.
func (ix *Index) Get(ctx context.Context, id string) (schemas.Product, error) {
	if err := ctx.Err(); err != nil {
		return schemas.Product{}, err
	}
	d, err := ix.bleve.Document(id)
	if err != nil {
		return schemas.Product{}, fmt.Errorf("embedsearch: get %s: %w", id, err)
	}
	if d == nil {
		return schemas.Product{}, fmt.Errorf("embedsearch: get %s: %w", id, schemas.ErrNotFound)
	}
	var src []byte
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldSource {
			src = f.Value()
		}
	})
	if src == nil { // a tombstone
		return schemas.Product{}, fmt.Errorf("embedsearch: get %s: %w", id, schemas.ErrNotFound)
	}
	return ix.sources.decode(id, src)
}

// Products reads many products from one snapshot of the index; missing ids
// and tombstones are left out (schemas.ProductLookup).
func (ix *Index) Products(ctx context.Context, ids []string) (map[string]schemas.Product, error) {
	out := make(map[string]schemas.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	adv, err := ix.bleve.Advanced()
	if err != nil {
		return nil, fmt.Errorf("embedsearch: products: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("embedsearch: products: %w", err)
	}
	defer r.Close()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := r.Document(id)
		if err != nil {
			return nil, fmt.Errorf("embedsearch: get %s: %w", id, err)
		}
		if d == nil {
			continue
		}
		var src []byte
		d.VisitFields(func(f index.Field) {
			if f.Name() == fieldSource {
				src = f.Value()
			}
		})
		if src == nil {
			continue
		}
		p, err := ix.sources.decode(id, src)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

// Segments is the number of segments the index is made of now; it falls
// as background merging proceeds, so a benchmark can wait for it to settle.
func (ix *Index) Segments() uint64 {
	m, _ := ix.bleve.StatsMap()["index"].(map[string]any)
	var n uint64
	for _, k := range []string{"num_root_filesegments", "num_root_memorysegments"} {
		if v, ok := m[k].(uint64); ok {
			n += v
		}
	}
	return n
}

// Close waits for batches being written and for their persistence, then
// closes the index. Apply fails with ErrClosed afterwards.
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	ix.closed = true
	ix.stopWarming()
	ix.stopCounting()
	for ix.writes > 0 {
		ix.settled.Wait()
	}
	ix.mu.Unlock()
	ix.settled.Broadcast() // callers waiting on a product see the index closed

	<-ix.warmed
	<-ix.suggestCounted
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	ferr := ix.Flush(ctx)
	if err := ix.bleve.Close(); err != nil {
		return fmt.Errorf("embedsearch: close: %w", err)
	}
	return ferr
}
