package api

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// synonymLists are the synonym lists searches expand their text with: the
// global list and every partner's, compiled again whenever one changes
// (rarely), so a search only looks its words up.
type synonymLists struct {
	global   schemas.SynonymList
	mu       sync.Mutex
	partners map[string]schemas.SynonymList
	current  atomic.Pointer[schemas.Thesaurus]
}

func newSynonymLists(global schemas.SynonymList) *synonymLists {
	l := &synonymLists{global: global, partners: map[string]schemas.SynonymList{}}
	l.compile()
	return l
}

// set replaces a partner's list; an empty one removes it.
func (l *synonymLists) set(partner string, list schemas.SynonymList) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(list.Groups) == 0 {
		delete(l.partners, partner)
	} else {
		l.partners[partner] = list
	}
	l.compileLocked()
}

func (l *synonymLists) compile() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.compileLocked()
}

func (l *synonymLists) compileLocked() {
	l.current.Store(schemas.NewThesaurus(l.global, l.partners))
}

// thesaurus is the lists in effect now.
func (l *synonymLists) thesaurus() *schemas.Thesaurus { return l.current.Load() }

// RunSynonyms keeps the partners' synonym lists of every process in
// effect for this one's searches, until ctx ends: a list set through
// another API process arrives by the store's watch.
func (a *App) RunSynonyms(ctx context.Context) {
	s := a.server
	if s.cfg.Synonyms == nil {
		return
	}
	for ctx.Err() == nil {
		err := s.cfg.Synonyms.WatchSynonyms(ctx, s.synonyms.set, func() {})
		if err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("watching the partners' synonyms failed; watching again", "err", err)
			sleepCtx(ctx, 2*time.Second)
		}
	}
}

// synonymsView is a partner's synonym list as the API answers it.
type synonymsView struct {
	Groups [][]string `json:"groups"`
}

func viewSynonyms(l schemas.SynonymList) synonymsView {
	if l.Groups == nil {
		l.Groups = [][]string{}
	}
	return synonymsView(l)
}

// getSynonyms answers the partner's synonym list.
func (s *server) getSynonyms(c *fiber.Ctx) error {
	if s.cfg.Synonyms == nil {
		return notServed("This server keeps no synonym lists; send synonym requests to a server running the API with its partner store.")
	}
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	l, err := s.cfg.Synonyms.Synonyms(ctx, partner)
	if err != nil {
		return failed("read the partner's synonyms", err)
	}
	return c.JSON(viewSynonyms(l))
}

// putSynonyms replaces the partner's synonym list; searches use it at
// once, with nothing to reindex, and in the partner's products only.
func (s *server) putSynonyms(c *fiber.Ctx) error {
	if s.cfg.Synonyms == nil {
		return notServed("This server keeps no synonym lists; send synonym requests to a server running the API with its partner store.")
	}
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	var l schemas.SynonymList
	if err := readJSON(c, &l); err != nil {
		return err
	}
	if err := l.Validate(); err != nil {
		return invalidSynonyms(err)
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	if err := s.cfg.Synonyms.PutSynonyms(ctx, partner, l); err != nil {
		return failed("store the partner's synonyms", err)
	}
	s.synonyms.set(partner, l)
	return c.JSON(viewSynonyms(l))
}

// invalidSynonyms lists every problem of a synonym list.
func invalidSynonyms(err error) *problemError {
	var se *schemas.SynonymError
	if !errors.As(err, &se) {
		return unprocessable("invalid-synonyms", "Invalid synonyms", "The synonym list is not valid: %v. Fix it and PUT it again.", err)
	}
	p := unprocessable("invalid-synonyms", "Invalid synonyms",
		"The synonym list is not valid: %s. Fix it and PUT it again.", strings.Join(se.Problems, "; "))
	p.errors = se.Problems
	return p
}
