package embedsearch

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/s2"

	"feedline/schemas"
)

// The stored product (the JSON a hit is hydrated from) was half of the
// index on disk. One product's JSON is too short to compress well alone,
// but a partner's products share their keys, URL shapes and words, so each
// partner's are compressed against an S2 dictionary trained on its own
// first large batch: about 4 × smaller, and still microseconds to decode.
const (
	// sourceDictFormat starts a compressed stored product: the format
	// byte, the dictionary's id as a uvarint, then the S2 block. A stored
	// product starting with '{' is plain JSON (a partner seen only in
	// small batches before any dictionary existed).
	sourceDictFormat = 0x01
	// minDictSamples is the fewest products of one partner in a batch that
	// train its dictionary; fewer would fit the dictionary to a handful.
	minDictSamples = 256
	// dictSamples bounds what one training reads (about 1 MB of JSON).
	dictSamples = 2000
	// maxDictBytes bounds one dictionary, kept in memory for the index's
	// life, and maxSourceDicts how many there are; partners beyond that
	// share the first one.
	maxDictBytes   = 32 << 10
	maxSourceDicts = 256
)

var sourceDictsKey = []byte("feedline:source-dicts")

func sourceDictKey(id uint32) []byte {
	return []byte("feedline:source-dict:" + strconv.FormatUint(uint64(id), 10))
}

// sourceCodec encodes and decodes stored products. Decoding reads an
// immutable snapshot of the dictionaries, so searches never wait for a
// training.
type sourceCodec struct {
	mu    sync.Mutex // one training and manifest write at a time
	dicts atomic.Pointer[sourceDicts]
}

type sourceDicts struct {
	byID      map[uint32]*s2.Dict
	byPartner map[string]uint32
	first     uint32 // the lowest id; 0 when there is none
	manifest  []sourceDictEntry
}

// sourceDictEntry is one dictionary in the manifest kept in the index's
// internal storage; the dictionary itself is under sourceDictKey(ID).
type sourceDictEntry struct {
	ID      uint32 `json:"id"`
	Partner string `json:"partner"`
}

func newSourceCodec() *sourceCodec {
	c := &sourceCodec{}
	c.dicts.Store(&sourceDicts{byID: map[uint32]*s2.Dict{}, byPartner: map[string]uint32{}})
	return c
}

// internalStore is the part of the index the codec keeps its dictionaries
// in.
type internalStore interface {
	GetInternal(key []byte) ([]byte, error)
}

// errDictMissing says a stored product names a dictionary the index does
// not hold; the index must then be rebuilt from the log.
var errDictMissing = errors.New("its compression dictionary is missing")

// load reads the dictionaries an existing index was written with.
func (c *sourceCodec) load(st internalStore) error {
	raw, err := st.GetInternal(sourceDictsKey)
	if err != nil || raw == nil {
		return err
	}
	var manifest []sourceDictEntry
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return fmt.Errorf("read the compression dictionaries' manifest: %w", err)
	}
	next := &sourceDicts{byID: map[uint32]*s2.Dict{}, byPartner: map[string]uint32{}}
	for _, e := range manifest {
		b, err := st.GetInternal(sourceDictKey(e.ID))
		if err != nil {
			return err
		}
		d := s2.NewDict(b)
		if d == nil {
			return fmt.Errorf("dictionary %d of partner %s: %w", e.ID, e.Partner, errDictMissing)
		}
		next.add(e, d)
	}
	c.dicts.Store(next)
	return nil
}

func (s *sourceDicts) add(e sourceDictEntry, d *s2.Dict) {
	s.byID[e.ID] = d
	s.byPartner[e.Partner] = e.ID
	if s.first == 0 || e.ID < s.first {
		s.first = e.ID
	}
	s.manifest = append(s.manifest, e)
}

// encode is the stored form of p.
func (c *sourceCodec) encode(p *schemas.Product) ([]byte, error) {
	src, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	ds := c.dicts.Load()
	id, ok := ds.byPartner[p.Partner]
	if !ok {
		id = ds.first
	}
	d := ds.byID[id]
	if d == nil {
		return src, nil
	}
	out := binary.AppendUvarint([]byte{sourceDictFormat}, uint64(id))
	return append(out, d.Encode(nil, src)...), nil
}

// decode is the product stored as src under the document id.
func (c *sourceCodec) decode(id string, src []byte) (schemas.Product, error) {
	if len(src) == 0 {
		return schemas.Product{}, fmt.Errorf("embedsearch: document %s has no stored product", id)
	}
	if src[0] == sourceDictFormat {
		n, size := binary.Uvarint(src[1:])
		if size <= 0 {
			return schemas.Product{}, fmt.Errorf("embedsearch: decode %s: a malformed dictionary id", id)
		}
		d := c.dicts.Load().byID[uint32(n)]
		if d == nil {
			return schemas.Product{}, fmt.Errorf("embedsearch: decode %s: dictionary %d: %w", id, n, errDictMissing)
		}
		plain, err := d.Decode(nil, src[1+size:])
		if err != nil {
			return schemas.Product{}, fmt.Errorf("embedsearch: decode %s: %w", id, err)
		}
		src = plain
	}
	var p schemas.Product
	if err := json.Unmarshal(src, &p); err != nil {
		return schemas.Product{}, fmt.Errorf("embedsearch: decode %s: %w", id, err)
	}
	return p, nil
}

// learn trains a dictionary for each partner that has none yet and brings
// at least minDictSamples products in changes, and stores it (and the
// manifest naming it) on disk before any product is encoded with it.
func (c *sourceCodec) learn(ctx context.Context, ix *Index, changes []schemas.ProductChange) error {
	byPartner := map[string][]*schemas.Product{}
	ds := c.dicts.Load()
	if len(ds.byID) >= maxSourceDicts {
		return nil
	}
	for i := range changes {
		p := changes[i].Product
		if p == nil {
			continue
		}
		if _, ok := ds.byPartner[p.Partner]; !ok {
			byPartner[p.Partner] = append(byPartner[p.Partner], p)
		}
	}
	partners := make([]string, 0, len(byPartner))
	for partner, ps := range byPartner {
		if len(ps) >= minDictSamples {
			partners = append(partners, partner)
		}
	}
	if len(partners) == 0 {
		return nil
	}
	slices.Sort(partners)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, partner := range partners {
		if err := c.train(ctx, ix, partner, byPartner[partner]); err != nil {
			return err
		}
	}
	return nil
}

// train adds partner's dictionary; c.mu is held.
func (c *sourceCodec) train(ctx context.Context, ix *Index, partner string, ps []*schemas.Product) error {
	cur := c.dicts.Load()
	if _, ok := cur.byPartner[partner]; ok || len(cur.byID) >= maxSourceDicts {
		return nil // another batch trained it meanwhile
	}
	step := max(1, len(ps)/dictSamples)
	samples := make([][]byte, 0, min(len(ps), dictSamples))
	for i := 0; i < len(ps) && len(samples) < dictSamples; i += step {
		b, err := json.Marshal(ps[i])
		if err != nil {
			return err
		}
		samples = append(samples, b)
	}
	raw, err := dict.BuildS2Dict(samples, dict.Options{MaxDictSize: maxDictBytes, HashBytes: 6})
	if err != nil {
		// Products too alike or too few to learn from stay as they are.
		return nil
	}
	d := s2.NewDict(raw)
	if d == nil {
		return nil
	}
	e := sourceDictEntry{ID: 1, Partner: partner}
	for _, m := range cur.manifest {
		e.ID = max(e.ID, m.ID+1)
	}
	manifest, err := json.Marshal(append(slices.Clip(cur.manifest), e))
	if err != nil {
		return err
	}
	if err := ix.setInternal(ctx, sourceDictKey(e.ID), raw); err != nil {
		return fmt.Errorf("store the compression dictionary of %s: %w", partner, err)
	}
	if err := ix.setInternal(ctx, sourceDictsKey, manifest); err != nil {
		return fmt.Errorf("store the compression dictionaries' manifest: %w", err)
	}
	next := &sourceDicts{byID: map[uint32]*s2.Dict{}, byPartner: map[string]uint32{}}
	for _, m := range cur.manifest {
		next.add(m, cur.byID[m.ID])
	}
	next.add(e, d)
	c.dicts.Store(next)
	return nil
}
