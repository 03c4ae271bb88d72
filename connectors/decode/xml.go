package decode

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"feedline/schemas"
)

// merchantXML reads a Google Merchant feed in RSS 2.0 (<rss><channel><item>)
// or Atom 1.0 (<feed><entry>), token by token: one item is in memory at a
// time, never the document. Each item is a row; each element in it a column
// named by its local name, so <g:price> and <price> are both "price", with
// the g: element winning when an item has both. Nested elements are dotted
// columns (<g:shipping><g:price> is "shipping.price"); an element repeated in
// an item (g:additional_image_link, g:product_type, g:shipping) keeps every
// value, one per line. An element with no text but an href (Atom's <link
// href="…"/>) takes the href. Columns grow as new names appear and never
// reorder, as NDJSON's do.
type merchantXML struct {
	dec   *xml.Decoder
	max   int
	item  string // "item" (RSS) or "entry" (Atom)
	cols  []string
	index map[string]int
	row   int64
	err   error

	// merchant holds the prefixes bound to the Google Merchant namespace:
	// tokens are read raw (no namespace translation, which allocates per
	// token), so the decoder tracks the xmlns declarations it meets.
	merchant map[string]bool

	values []string
	fromG  []bool // whether the value came from a g: element
	set    []bool
	path   []string
	text   strings.Builder
	href   string
	leaf   []bool // per open element: no child element yet
	size   int
}

func newMerchantXML(r io.Reader, max int) (*merchantXML, error) {
	d := xml.NewDecoder(r)
	// Feeds in the wild hold HTML entities (&nbsp;) and stray ampersands:
	// read them as browsers do instead of failing the file. Tags are not
	// closed automatically: RSS's <link> is no HTML void element.
	d.Strict = false
	d.Entity = xml.HTMLEntity
	// The text is UTF-8 already, whatever the declaration says.
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	m := &merchantXML{dec: d, max: max, index: map[string]int{}, merchant: map[string]bool{}}
	for {
		tok, err := m.token()
		if err != nil {
			return nil, m.fatal(err, "before its root element")
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch strings.ToLower(se.Name.Local) {
			case "rss":
				m.item = "item"
			case "feed":
				m.item = "entry"
			default:
				return nil, fmt.Errorf("%w: the XML root is <%s>, not <rss> or <feed>; export the feed as Google Merchant RSS 2.0 or Atom 1.0", ErrUnsupported, se.Name.Local)
			}
			return m, nil
		}
	}
}

// token reads the next raw token, noting the prefixes a start element
// binds to the Google Merchant namespace.
func (m *merchantXML) token() (xml.Token, error) {
	tok, err := m.dec.RawToken()
	if se, ok := tok.(xml.StartElement); ok {
		for _, a := range se.Attr {
			if a.Name.Space == "xmlns" {
				m.merchant[a.Name.Local] = a.Value == merchantNS
			} else if a.Name.Space == "" && a.Name.Local == "xmlns" {
				m.merchant[""] = a.Value == merchantNS
			}
		}
	}
	return tok, err
}

// fatal turns a token error into the error that ends the file.
func (m *merchantXML) fatal(err error, where string) error {
	if err == io.EOF {
		return fmt.Errorf("%w: the XML feed ends %s; upload the whole file", ErrCorrupt, where)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: the XML is malformed at line %d (%s) %s; fix the feed's markup, or export it again", ErrCorrupt, se.Line, se.Msg, where)
	}
	return fmt.Errorf("reading the XML feed: %w", err)
}

func (m *merchantXML) Format() string    { return schemas.FormatGoogleMerchantXML }
func (m *merchantXML) Columns() []string { return m.cols[:len(m.cols):len(m.cols)] }

func (m *merchantXML) Close() error {
	if m.err == nil {
		m.err = errClosed
	}
	return nil
}

func (m *merchantXML) Next() (schemas.RawRow, error) {
	if m.err != nil {
		return schemas.RawRow{}, m.err
	}
	// Find the next item; the channel's own elements are skipped.
	for {
		tok, err := m.token()
		if err == io.EOF {
			m.err = io.EOF
			return schemas.RawRow{}, io.EOF
		}
		if err != nil {
			m.err = m.fatal(err, fmt.Sprintf("after item %d", m.row))
			return schemas.RawRow{}, m.err
		}
		if se, ok := tok.(xml.StartElement); ok && strings.EqualFold(se.Name.Local, m.item) {
			break
		}
	}
	m.row++
	if err := m.readItem(); err != nil {
		m.err = m.fatal(err, fmt.Sprintf("in item %d", m.row))
		return schemas.RawRow{}, m.err
	}
	if m.size > m.max {
		return schemas.RawRow{}, &schemas.RowError{Row: m.row, Code: schemas.CodeRowTooLong, Reason: fmt.Sprintf("item %d is %d bytes, the limit is %d", m.row, m.size, m.max)}
	}
	n := len(m.values)
	for n > 0 && !m.set[n-1] {
		n--
	}
	values := make([]string, n)
	copy(values, m.values[:n])
	return schemas.RawRow{Row: m.row, Values: values}, nil
}

// readItem reads one item to its end tag into m.values.
func (m *merchantXML) readItem() error {
	for i := range m.values {
		m.values[i], m.fromG[i], m.set[i] = "", false, false
	}
	m.path, m.leaf, m.size = m.path[:0], m.leaf[:0], 0
	m.text.Reset()
	for {
		tok, err := m.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(m.leaf) > 0 {
				m.leaf[len(m.leaf)-1] = false
			}
			m.path = append(m.path, strings.ToLower(t.Name.Local))
			m.leaf = append(m.leaf, true)
			m.text.Reset()
			m.href = ""
			for _, a := range t.Attr {
				if a.Name.Local == "href" {
					m.href = a.Value
				}
			}
			m.size += len(t.Name.Local)
		case xml.CharData:
			m.size += len(t)
			if m.size <= m.max && len(m.leaf) > 0 && m.leaf[len(m.leaf)-1] {
				m.text.Write(t)
			}
		case xml.EndElement:
			if len(m.path) == 0 {
				return nil // the item's own end tag
			}
			if m.leaf[len(m.leaf)-1] && m.size <= m.max {
				v := strings.TrimSpace(m.text.String())
				if v == "" {
					v = strings.TrimSpace(m.href)
				}
				if v != "" {
					m.put(strings.Join(m.path, "."), v, m.merchant[t.Name.Space])
				}
			}
			m.path, m.leaf = m.path[:len(m.path)-1], m.leaf[:len(m.leaf)-1]
			m.text.Reset()
			m.href = ""
		}
	}
}

// put sets a column of the item: a g: element wins over a plain one of the
// same name, and a repeated element adds a line.
func (m *merchantXML) put(name, v string, g bool) {
	i, ok := m.index[name]
	if !ok {
		i = len(m.cols)
		m.cols = append(m.cols, name)
		m.index[name] = i
	}
	for len(m.values) <= i {
		m.values, m.fromG, m.set = append(m.values, ""), append(m.fromG, false), append(m.set, false)
	}
	switch {
	case !m.set[i], g && !m.fromG[i]:
		m.values[i], m.fromG[i] = v, g
	case g == m.fromG[i]:
		m.values[i] += "\n" + v
	}
	m.set[i] = true
}
