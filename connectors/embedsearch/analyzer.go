package embedsearch

import (
	"bytes"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
)

// newTextAnalyzer builds the analyser of title, brand and description, used
// at indexing and at query time alike. It follows bleve's cjk analyzer
// (unicode tokenizer, width folding, lowercase, CJK bigrams) with two
// differences:
//
//   - Hangul is bigrammed too. bleve's cjk_bigram only bigrams tokens typed
//     Ideographic and the unicode tokenizer types Hangul as letters, so
//     "무선이어폰" would stay one term that "이어폰" cannot find.
//   - An English plural stemmer follows, so "earbud" finds "earbuds". A
//     second, English-analysed copy of every text field queried in a
//     disjunction would do the same at twice the analysis work per product;
//     the plural stemmer only touches words ending in "s", so Korean passes
//     through unchanged and words such as "running" are not over-stemmed the
//     way the "en" analyzer's Porter stemmer would.
//
// Width folding and stemming run only on the tokens they can change: the
// stock filters allocate for every token, which showed in indexing profiles.
// The chain is built in code rather than registered with bleve, whose
// registry is process-wide; changing it changes the terms in the index, so
// it goes with a new schemaVersion.
func newTextAnalyzer() analysis.Analyzer {
	return &analysis.DefaultAnalyzer{
		Tokenizer: unicodetok.NewUnicodeTokenizer(),
		TokenFilters: []analysis.TokenFilter{
			onlyWhere{cjk.NewCJKWidthFilter(), hasWideForm},
			lowercase.NewLowerCaseFilter(),
			cjkBigrams{},
			onlyWhere{en.NewEnglishPluralStemmerFilter(), mayBePlural},
		},
	}
}

// onlyWhere runs a per-token filter on the tokens that match.
type onlyWhere struct {
	filter analysis.TokenFilter
	match  func(term []byte) bool
}

func (o onlyWhere) Filter(in analysis.TokenStream) analysis.TokenStream {
	for i, tok := range in {
		if o.match(tok.Term) {
			o.filter.Filter(in[i : i+1])
		}
	}
	return in
}

// hasWideForm reports whether term may hold a fullwidth or halfwidth form
// (U+FF00–U+FFEF, whose UTF-8 starts with 0xEF).
func hasWideForm(term []byte) bool { return bytes.IndexByte(term, 0xEF) >= 0 }

// mayBePlural matches what the plural stemmer can change: three or more
// letters ending in "s".
func mayBePlural(term []byte) bool { return len(term) >= 3 && term[len(term)-1] == 's' }

// cjkBigrams turns runs of CJK characters (Han, Kana, Hangul) into
// overlapping bigrams, or a unigram for a lone character, as cjk_bigram does.
// A token mixing Hangul with Latin letters or digits ("갤럭시s24") is split at
// the script change so only the Hangul part is bigrammed. Other tokens pass
// through untouched.
type cjkBigrams struct{}

// cjkChar is one character of a CJK run: its bytes are term[off:end] of tok.
type cjkChar struct {
	tok      *analysis.Token
	off, end int
}

func (cjkBigrams) Filter(in analysis.TokenStream) analysis.TokenStream {
	if !slices.ContainsFunc(in, isCJKToken) {
		return in
	}
	out := make(analysis.TokenStream, 0, len(in)+8)
	var run []cjkChar
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			c := run[0]
			out = append(out, cjkToken(c.tok.Term[c.off:c.end], c, c, analysis.Single))
		default:
			for i := 1; i < len(run); i++ {
				a, b := run[i-1], run[i]
				var term []byte
				if a.tok == b.tok {
					term = a.tok.Term[a.off:b.end]
				} else {
					term = append(append(make([]byte, 0, (a.end-a.off)+(b.end-b.off)), a.tok.Term[a.off:a.end]...), b.tok.Term[b.off:b.end]...)
				}
				out = append(out, cjkToken(term, a, b, analysis.Double))
			}
		}
		run = run[:0]
	}
	add := func(c cjkChar) {
		if n := len(run); n > 0 {
			last := run[n-1]
			if last.tok != c.tok && last.tok.End != c.tok.Start {
				flush() // not adjacent in the source text
			}
		}
		run = append(run, c)
	}
	for _, tok := range in {
		switch {
		case tok.Type == analysis.Ideographic:
			for off, r := range string(tok.Term) {
				add(cjkChar{tok, off, off + utf8.RuneLen(r)})
			}
		case tok.Type == analysis.AlphaNumeric && hasHangul(tok.Term):
			start := 0
			for off, r := range string(tok.Term) {
				if !isHangul(r) {
					continue
				}
				if off > start {
					flush()
					out = append(out, partToken(tok, start, off))
				}
				end := off + utf8.RuneLen(r)
				add(cjkChar{tok, off, end})
				start = end
			}
			if start < len(tok.Term) {
				flush()
				out = append(out, partToken(tok, start, len(tok.Term)))
			}
		default:
			flush()
			out = append(out, tok)
		}
	}
	flush()
	for i, tok := range out {
		tok.Position = i + 1
	}
	return out
}

func isCJKToken(tok *analysis.Token) bool {
	return tok.Type == analysis.Ideographic || (tok.Type == analysis.AlphaNumeric && hasHangul(tok.Term))
}

func cjkToken(term []byte, first, last cjkChar, typ analysis.TokenType) *analysis.Token {
	return &analysis.Token{
		Term:  term,
		Start: first.tok.Start + first.off,
		End:   last.tok.Start + last.end,
		Type:  typ,
	}
}

// partToken is the non-Hangul part term[from:to] of a mixed-script token.
func partToken(tok *analysis.Token, from, to int) *analysis.Token {
	return &analysis.Token{
		Term:  tok.Term[from:to],
		Start: tok.Start + from,
		End:   tok.Start + to,
		Type:  analysis.AlphaNumeric,
	}
}

// hasHangul reports whether b holds a Hangul character; bytes below 0xE1
// cannot start one, which keeps the common Latin case to a byte scan.
func hasHangul(b []byte) bool {
	for i := 0; i < len(b); {
		if b[i] < 0xE1 {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if isHangul(r) {
			return true
		}
		i += n
	}
	return false
}

func isHangul(r rune) bool {
	return r >= 0x1100 && unicode.Is(unicode.Hangul, r)
}
