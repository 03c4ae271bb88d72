package schemas

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Synonyms are applied when a search runs, never at indexing: a changed
// list takes effect on the next search, with nothing to reindex. A global
// list applies to every product; a partner's list to its own products
// only, so one shop's "노트북 = laptop" does not change what another's
// products are found by.

// Bounds of one synonym list: a list is read on every change and kept in
// memory by every process that serves search.
const (
	SynonymMaxGroups    = 2000 // groups in a list
	SynonymMaxTerms     = 16   // terms in a group
	SynonymMaxTermRunes = 64   // characters in a term
	SynonymMaxWords     = 4    // words in a term
	// SynonymMaxAlternatives bounds the alternatives one query word gets,
	// over every list: each is a clause of the query.
	SynonymMaxAlternatives = 32
)

// SynonymList is a list of synonym groups: any term of a group finds what
// the others find. A term is one or more words ("wireless earbuds").
type SynonymList struct {
	Groups [][]string `json:"groups"`
}

// ErrInvalidSynonyms marks a synonym list that breaks its rules.
var ErrInvalidSynonyms = errorString("the synonym list is not valid")

// Validate checks a list's bounds: groups of two or more distinct terms,
// none empty, each term of at most SynonymMaxWords words and
// SynonymMaxTermRunes characters.
func (l SynonymList) Validate() error {
	var problems []string
	if len(l.Groups) > SynonymMaxGroups {
		problems = append(problems, fmt.Sprintf("%d groups: want at most %d", len(l.Groups), SynonymMaxGroups))
	}
	for i, g := range l.Groups {
		if len(problems) >= 20 {
			break
		}
		if len(g) < 2 || len(g) > SynonymMaxTerms {
			problems = append(problems, fmt.Sprintf("group %d has %d terms: want 2 to %d", i+1, len(g), SynonymMaxTerms))
			continue
		}
		var seen []string
		for _, t := range g {
			norm := NormalizeSynonym(t)
			switch {
			case norm == "":
				problems = append(problems, fmt.Sprintf("group %d has an empty term", i+1))
			case utf8.RuneCountInString(t) > SynonymMaxTermRunes:
				problems = append(problems, fmt.Sprintf("group %d: term %q is longer than %d characters", i+1, t, SynonymMaxTermRunes))
			case strings.Count(norm, " ")+1 > SynonymMaxWords:
				problems = append(problems, fmt.Sprintf("group %d: term %q has more than %d words", i+1, t, SynonymMaxWords))
			case slices.Contains(seen, norm):
				problems = append(problems, fmt.Sprintf("group %d lists %q twice", i+1, t))
			}
			seen = append(seen, norm)
		}
	}
	if len(problems) > 0 {
		return &SynonymError{Problems: problems}
	}
	return nil
}

// SynonymError lists what is wrong with a synonym list.
type SynonymError struct{ Problems []string }

func (e *SynonymError) Error() string { return strings.Join(e.Problems, "; ") }
func (e *SynonymError) Unwrap() error { return ErrInvalidSynonyms }

// NormalizeSynonym is a term as synonyms are looked up: its words (as a
// search splits them), fullwidth forms folded, lower case, one space
// apart.
func NormalizeSynonym(term string) string {
	words := ParseText(term, nil, nil).Words
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = foldWord(w.Text)
	}
	return strings.Join(parts, " ")
}

func foldWord(s string) string { return strings.ToLower(width.Fold.String(s)) }

// ReadSynonyms reads a synonym file: one group a line, its terms separated
// by commas; blank lines and lines starting with # are skipped. The list
// is validated.
func ReadSynonyms(r io.Reader) (SynonymList, error) {
	var l SynonymList
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(l.Groups) == SynonymMaxGroups {
			return l, fmt.Errorf("line %d: more than %d groups: %w", n, SynonymMaxGroups, ErrInvalidSynonyms)
		}
		var g []string
		for _, t := range strings.Split(line, ",") {
			g = append(g, strings.TrimSpace(t))
		}
		if err := (SynonymList{Groups: [][]string{g}}).Validate(); err != nil {
			return l, fmt.Errorf("line %d: %w", n, err)
		}
		l.Groups = append(l.Groups, g)
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("read synonyms: %w", err)
	}
	return l, l.Validate()
}

// SynonymStore keeps each partner's synonym list with its configuration.
type SynonymStore interface {
	PutSynonyms(ctx context.Context, partner string, l SynonymList) error
	Synonyms(ctx context.Context, partner string) (SynonymList, error) // empty when never set
	// WatchSynonyms calls fn with every partner's list and every change
	// (an empty list for a removed one) until ctx ends, and ready once
	// the lists present at the start were delivered.
	WatchSynonyms(ctx context.Context, fn func(partner string, l SynonymList), ready func()) error
}

// Thesaurus is the synonym lists in effect, compiled for lookups; it does
// not change once built, so searches share it.
type Thesaurus struct {
	entries  map[string]*synonymEntry // normalised term → its alternatives
	maxWords int
}

type synonymEntry struct {
	global   []string            // normalised terms, of the global list
	partners map[string][]string // partner → normalised terms of its list
}

// NewThesaurus compiles the global list and the partners' lists, which
// are expected to be valid.
func NewThesaurus(global SynonymList, partners map[string]SynonymList) *Thesaurus {
	th := &Thesaurus{entries: map[string]*synonymEntry{}}
	add := func(g []string, partner string) {
		norm := make([]string, 0, len(g))
		for _, t := range g {
			if n := NormalizeSynonym(t); n != "" && !slices.Contains(norm, n) {
				norm = append(norm, n)
			}
		}
		for _, t := range norm {
			e := th.entries[t]
			if e == nil {
				e = &synonymEntry{}
				th.entries[t] = e
			}
			th.maxWords = max(th.maxWords, strings.Count(t, " ")+1)
			for _, other := range norm {
				if other == t {
					continue
				}
				if partner == "" {
					e.global = appendNew(e.global, other)
					continue
				}
				if e.partners == nil {
					e.partners = map[string][]string{}
				}
				e.partners[partner] = appendNew(e.partners[partner], other)
			}
		}
	}
	for _, g := range global.Groups {
		add(g, "")
	}
	for p, l := range partners {
		for _, g := range l.Groups {
			add(g, p)
		}
	}
	return th
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Len is the number of terms that have synonyms.
func (th *Thesaurus) Len() int {
	if th == nil {
		return 0
	}
	return len(th.entries)
}

// SynonymMatch is a run of query words, Words [From, To), that a synonym
// list names, and what else they may match.
type SynonymMatch struct {
	From, To     int
	Alternatives []SynonymAlternative
}

// SynonymAlternative is another term the words may match: in every
// product when Partners is empty, else only in those partners' products.
type SynonymAlternative struct {
	Term     string   `json:"t"`
	Partners []string `json:"p,omitempty"`
}

// match finds synonym matches in words, longest first, left to right,
// keeping alternatives of the partners searched (every partner when none
// is named), at most SynonymMaxAlternatives per match.
func (th *Thesaurus) match(words []QueryWord, partners []string) []SynonymMatch {
	if len(th.entries) == 0 {
		return nil
	}
	var out []SynonymMatch
	for i := 0; i < len(words); {
		n := min(th.maxWords, len(words)-i)
		for ; n > 0; n-- {
			parts := make([]string, n)
			for j := range n {
				parts[j] = foldWord(words[i+j].Text)
			}
			e := th.entries[strings.Join(parts, " ")]
			if e == nil {
				continue
			}
			if alts := e.alternatives(partners); len(alts) > 0 {
				out = append(out, SynonymMatch{From: i, To: i + n, Alternatives: alts})
				break
			}
		}
		if n == 0 {
			n = 1
		}
		i += n
	}
	return out
}

func (e *synonymEntry) alternatives(partners []string) []SynonymAlternative {
	byTerm := map[string][]string{}
	var global []string
	for _, t := range e.global {
		global = append(global, t)
		byTerm[t] = nil
	}
	for p, terms := range e.partners {
		if len(partners) > 0 && !slices.Contains(partners, p) {
			continue
		}
		for _, t := range terms {
			if slices.Contains(global, t) {
				continue // every product finds it already
			}
			byTerm[t] = append(byTerm[t], p)
		}
	}
	out := make([]SynonymAlternative, 0, len(byTerm))
	for t, ps := range byTerm {
		slices.Sort(ps)
		out = append(out, SynonymAlternative{Term: t, Partners: ps})
	}
	// Global alternatives first, then by term, so the bound keeps the same ones.
	slices.SortFunc(out, func(a, b SynonymAlternative) int {
		if (len(a.Partners) == 0) != (len(b.Partners) == 0) {
			if len(a.Partners) == 0 {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Term, b.Term)
	})
	return out[:min(len(out), SynonymMaxAlternatives)]
}
