package decode

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"feedline/schemas"
)

// charsetWindow is how much text, from its first byte that is not ASCII,
// decides a file's encoding. A file whose first non-ASCII text comes late
// (a one-row EUC-KR file, Korean titles in every third row after English
// ones) is decided by that text, never by the ASCII before it.
const charsetWindow = 64 << 10

// decoding is how the bytes of a file become UTF-8.
type decoding struct {
	charset string            // the canonical name, "" while undecided
	enc     encoding.Encoding // nil for UTF-8
}

// encodingOf maps a canonical charset name to its decoder.
func encodingOf(charset string) (decoding, error) {
	switch charset {
	case schemas.CharsetUTF8:
		return decoding{charset: charset}, nil
	case schemas.CharsetEUCKR:
		return decoding{charset: charset, enc: korean.EUCKR}, nil
	case schemas.CharsetWindows1252:
		return decoding{charset: charset, enc: charmap.Windows1252}, nil
	case schemas.CharsetUTF16LE:
		return decoding{charset: charset, enc: unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)}, nil
	case schemas.CharsetUTF16BE:
		return decoding{charset: charset, enc: unicode.UTF16(unicode.BigEndian, unicode.UseBOM)}, nil
	}
	return decoding{}, fmt.Errorf("%w: charset %q is not one feedline reads; use utf-8, euc-kr, windows-1252 or utf-16", ErrEncoding, charset)
}

// chooseDecoding decides, from the head of a file, how it is read: the
// charset the partner declared wins, then a byte order mark, then UTF-16's
// NUL bytes, then an XML declaration's encoding. Otherwise the charset is
// left undecided ("") for the text itself to decide (decideCharset).
func chooseDecoding(head []byte, declared string) (decoding, error) {
	if declared != "" {
		c, ok := schemas.CanonicalCharset(declared)
		if !ok {
			return decoding{}, fmt.Errorf("%w: the mapping's charset %q is not one feedline reads; use utf-8, euc-kr, windows-1252 or utf-16", ErrEncoding, declared)
		}
		if c == schemas.CharsetUTF16 {
			// The byte order mark decides, little-endian without one.
			d := decoding{charset: schemas.CharsetUTF16LE, enc: unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)}
			if bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
				d.charset = schemas.CharsetUTF16BE
			}
			return d, nil
		}
		return encodingOf(c)
	}
	switch {
	case bytes.HasPrefix(head, []byte(utf8BOM)):
		return encodingOf(schemas.CharsetUTF8)
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return encodingOf(schemas.CharsetUTF16LE)
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return encodingOf(schemas.CharsetUTF16BE)
	}
	if bytes.IndexByte(head, 0) >= 0 && looksUTF16(head) {
		// Latin text in UTF-16 has a NUL in every other byte: the high
		// byte first (even offsets) in big-endian.
		even := 0
		for i := 0; i < len(head); i += 2 {
			if head[i] == 0 {
				even++
			}
		}
		if even*2 > len(head)/2 {
			return encodingOf(schemas.CharsetUTF16BE)
		}
		return encodingOf(schemas.CharsetUTF16LE)
	}
	if c := xmlEncoding(head); c != "" {
		return encodingOf(c)
	}
	return decoding{}, nil
}

// xmlDeclaration finds the encoding an XML declaration names.
var xmlDeclaration = regexp.MustCompile(`^\s*<\?xml[^>]*\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']`)

func xmlEncoding(head []byte) string {
	m := xmlDeclaration.FindSubmatch(head[:min(len(head), 256)])
	if m == nil {
		return ""
	}
	c, _ := schemas.CanonicalCharset(string(m[1]))
	if c == schemas.CharsetUTF16 {
		return "" // told by the bytes, not a name
	}
	return c
}

// decideCharset names the encoding of text that starts at a file's first
// byte that is not ASCII: UTF-8 when its multi-byte sequences are (almost
// all) valid, EUC-KR (CP949) when the bytes pair up as Korean text does,
// else Windows-1252, in which every byte is a character. truncated says
// the window may end inside a character.
func decideCharset(window []byte, truncated bool) string {
	if truncated {
		for i := 1; i <= utf8.UTFMax && i <= len(window); i++ {
			if utf8.RuneStart(window[len(window)-i]) {
				if !utf8.FullRune(window[len(window)-i:]) {
					window = window[:len(window)-i]
				}
				break
			}
		}
	}
	valid, invalid := 0, 0
	for i := 0; i < len(window); {
		c := window[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(window[i:])
		if r == utf8.RuneError && size == 1 {
			invalid++
		} else {
			valid++
		}
		i += size
	}
	// A UTF-8 file with a few damaged rows stays UTF-8: those rows are
	// rejected one by one.
	if invalid == 0 || (valid > 0 && invalid*4 <= valid) {
		return schemas.CharsetUTF8
	}
	if looksCP949(window) {
		return schemas.CharsetEUCKR
	}
	return schemas.CharsetWindows1252
}

// looksCP949 reports whether the non-ASCII bytes pair up as CP949 (a superset
// of EUC-KR), the legacy encoding of Korean shopping feeds: pairs nearly
// everywhere, and mostly the Hangul syllables of KS X 1001 (lead 0xB0–0xC8,
// trail 0xA1–0xFE). Accented Latin letters, which also fall in CP949's
// extended range, come alone between ASCII letters, or as two upper-half
// bytes that are rarely both in the Hangul block.
func looksCP949(b []byte) bool {
	pairs, hangul, strays := 0, 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			continue
		}
		if c >= 0x81 && c <= 0xFE && i+1 < len(b) {
			t := b[i+1]
			if (t >= 0x41 && t <= 0x5A) || (t >= 0x61 && t <= 0x7A) || (t >= 0x81 && t <= 0xFE) {
				pairs++
				if c >= 0xB0 && c <= 0xC8 && t >= 0xA1 {
					hangul++
				}
				i++
				continue
			}
		}
		strays++
	}
	return pairs > 0 && strays*20 <= pairs && hangul*2 >= pairs
}

// looksUTF16 reports whether NULs sit mostly at every other byte, as in
// UTF-16 text of Latin characters.
func looksUTF16(b []byte) bool {
	var even, odd int
	for i, c := range b {
		if c == 0 {
			if i%2 == 0 {
				even++
			} else {
				odd++
			}
		}
	}
	pairs := len(b) / 2
	return pairs > 0 && (even*10 > pairs*7 || odd*10 > pairs*7) && (even == 0 || odd == 0 || even*10 < odd || odd*10 < even)
}

// decodeHead turns the head of a file into UTF-8 text as the decoder will
// see it, and names the charset ("" when the head is all ASCII and the
// encoding is still open).
func decodeHead(head []byte, declared string, truncated bool) ([]byte, string, error) {
	d, err := chooseDecoding(head, declared)
	if err != nil {
		return nil, "", err
	}
	if d.charset == "" {
		i := firstNonASCII(head)
		if i < 0 {
			return head, "", nil
		}
		if d, err = encodingOf(decideCharset(head[i:min(len(head), i+charsetWindow)], truncated || i+charsetWindow < len(head))); err != nil {
			return nil, "", err
		}
	}
	if d.enc == nil {
		return head, d.charset, nil
	}
	if truncated && (d.charset == schemas.CharsetUTF16LE || d.charset == schemas.CharsetUTF16BE) && len(head)%2 == 1 {
		head = head[:len(head)-1]
	}
	out, _, err := transform.Bytes(d.enc.NewDecoder(), head)
	if err != nil && len(out) == 0 {
		return nil, "", fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	return out, d.charset, nil
}

// textReader reads a file as UTF-8. A charset the head decides is applied
// from the first byte; an open one is decided by the file's first text that
// is not ASCII, however far in it comes: ASCII passes through unchanged
// until then (it is the same in every charset read here). Only the window
// that decides is held back; UTF-8 is read straight from the source.
type textReader struct {
	src     io.Reader
	out     io.Reader // once decided
	charset string
}

func newTextReader(src io.Reader, d decoding) *textReader {
	t := &textReader{src: src}
	if d.charset != "" {
		t.decide(d, nil)
	}
	return t
}

// decide reads on in d, after the bytes held back.
func (t *textReader) decide(d decoding, held []byte) {
	t.charset = d.charset
	r := t.src
	if len(held) > 0 {
		r = io.MultiReader(bytes.NewReader(held), t.src)
	}
	t.out = r
	if d.enc != nil {
		t.out = transform.NewReader(r, d.enc.NewDecoder())
	}
}

// Charset is the encoding decided so far ("" while the text is ASCII).
func (t *textReader) Charset() string { return t.charset }

func (t *textReader) Read(p []byte) (int, error) {
	if t.out != nil {
		return t.out.Read(p)
	}
	n, err := t.src.Read(p)
	i := firstNonASCII(p[:n])
	if i < 0 {
		return n, err
	}
	// The window that decides starts here: hold it back until decided.
	window := make([]byte, n-i, charsetWindow)
	copy(window, p[i:n])
	for err == nil && len(window) < charsetWindow {
		var m int
		m, err = t.src.Read(window[len(window):charsetWindow])
		window = window[:len(window)+m]
	}
	if err != nil && err != io.EOF {
		return i, err
	}
	d, derr := encodingOf(decideCharset(window, err == nil))
	if derr != nil {
		return i, derr
	}
	t.decide(d, window)
	if i > 0 {
		return i, nil
	}
	return t.out.Read(p)
}

// firstNonASCII is the index of b's first byte above 0x7F, or -1.
func firstNonASCII(b []byte) int {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return i
		}
	}
	return -1
}
