package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Partners implements schemas.PartnerStore.
type Partners struct {
	KV jetstream.KeyValue
}

// CreatePartner stores a new partner; schemas.ErrExists when the id is taken.
func (s Partners) CreatePartner(ctx context.Context, p schemas.Partner) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := s.KV.Create(ctx, p.ID, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("partner %s: %w", p.ID, schemas.ErrExists)
		}
		return fmt.Errorf("store partner %s: %w", p.ID, err)
	}
	return nil
}

// Partner reads one partner.
func (s Partners) Partner(ctx context.Context, id string) (schemas.Partner, error) {
	var p schemas.Partner
	if !validKey(id) {
		return p, fmt.Errorf("partner %q: %w", id, schemas.ErrNotFound)
	}
	err := getJSON(ctx, s.KV, id, &p)
	return p, err
}

// PutSettings stores a partner's settings beside its record.
func (s Partners) PutSettings(ctx context.Context, partner string, st schemas.PartnerSettings) error {
	return putJSON(ctx, s.KV, partner+".settings", st)
}

// Settings reads a partner's settings; zero when never set.
func (s Partners) Settings(ctx context.Context, partner string) (schemas.PartnerSettings, error) {
	var st schemas.PartnerSettings
	err := getJSON(ctx, s.KV, partner+".settings", &st)
	if errors.Is(err, schemas.ErrNotFound) {
		return st, nil
	}
	return st, err
}

// synonymsSuffix ends the key of a partner's synonym list.
const synonymsSuffix = ".synonyms"

// PutSynonyms stores a partner's synonym list beside its record
// (schemas.SynonymStore).
func (s Partners) PutSynonyms(ctx context.Context, partner string, l schemas.SynonymList) error {
	return putJSON(ctx, s.KV, partner+synonymsSuffix, l)
}

// Synonyms reads a partner's synonym list; empty when never set.
func (s Partners) Synonyms(ctx context.Context, partner string) (schemas.SynonymList, error) {
	var l schemas.SynonymList
	if !validKey(partner) {
		return l, nil
	}
	err := getJSON(ctx, s.KV, partner+synonymsSuffix, &l)
	if errors.Is(err, schemas.ErrNotFound) {
		return schemas.SynonymList{}, nil
	}
	return l, err
}

// WatchSynonyms calls fn with every partner's synonym list and every
// change (an empty list for a removed one), until ctx ends; ready is
// called once the lists present at the start were delivered.
func (s Partners) WatchSynonyms(ctx context.Context, fn func(partner string, l schemas.SynonymList), ready func()) error {
	w, err := s.KV.Watch(ctx, "*"+synonymsSuffix)
	if err != nil {
		return fmt.Errorf("watch the synonyms of bucket %s: %w", s.KV.Bucket(), err)
	}
	return followWatch(ctx, w, "the synonyms of bucket "+s.KV.Bucket(), ready, func(e jetstream.KeyValueEntry) {
		partner := strings.TrimSuffix(e.Key(), synonymsSuffix)
		var l schemas.SynonymList
		if e.Operation() == jetstream.KeyValuePut {
			if err := json.Unmarshal(e.Value(), &l); err != nil {
				return // not a list this version reads; its writer's version does
			}
		}
		fn(partner, l)
	})
}

// Mappings implements schemas.MappingStore. "<partner>.<version>" holds each
// version; "<partner>.current" the number of the newest.
type Mappings struct {
	KV jetstream.KeyValue
}

// PutMapping stores m as the partner's next version. Versions are claimed
// with create-if-absent, so concurrent writers never share a number.
func (s Mappings) PutMapping(ctx context.Context, partner string, m schemas.Mapping) (schemas.Mapping, error) {
	cur, err := s.current(ctx, partner)
	if err != nil && !errors.Is(err, schemas.ErrNotFound) {
		return m, err
	}
	for v := cur + 1; ; v++ {
		m.Version = v
		b, err := json.Marshal(m)
		if err != nil {
			return m, err
		}
		_, err = s.KV.Create(ctx, partner+"."+strconv.Itoa(v), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return m, fmt.Errorf("store mapping %s v%d: %w", partner, v, err)
		}
		break
	}
	// Move "current" forward only; a slower writer never moves it back.
	for {
		e, err := s.KV.Get(ctx, partner+".current")
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.KV.Create(ctx, partner+".current", []byte(strconv.Itoa(m.Version)))
		case err != nil:
			return m, fmt.Errorf("read current mapping of %s: %w", partner, err)
		default:
			have, _ := strconv.Atoi(string(e.Value()))
			if have >= m.Version {
				return m, nil
			}
			_, err = s.KV.Update(ctx, partner+".current", []byte(strconv.Itoa(m.Version)), e.Revision())
		}
		if err == nil {
			return m, nil
		}
		if !conflict(err) {
			return m, fmt.Errorf("advance current mapping of %s: %w", partner, err)
		}
	}
}

func (s Mappings) current(ctx context.Context, partner string) (int, error) {
	e, err := s.KV.Get(ctx, partner+".current")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("mapping of %s: %w", partner, schemas.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read current mapping of %s: %w", partner, err)
	}
	return strconv.Atoi(string(e.Value()))
}

// Mapping reads one version; 0 means the current one.
func (s Mappings) Mapping(ctx context.Context, partner string, version int) (schemas.Mapping, error) {
	var m schemas.Mapping
	if !validKey(partner) {
		return m, fmt.Errorf("mapping of %q: %w", partner, schemas.ErrNotFound)
	}
	if version == 0 {
		v, err := s.current(ctx, partner)
		if err != nil {
			return m, err
		}
		version = v
	}
	err := getJSON(ctx, s.KV, partner+"."+strconv.Itoa(version), &m)
	return m, err
}
