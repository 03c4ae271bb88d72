package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Preview limits: what a mapping preview reads of a sample and shows.
const (
	PreviewMaxBytes   = 8 << 20 // of the sample file; the rest is not read
	PreviewMaxRows    = 10_000
	PreviewProducts   = 20 // canonical products shown
	PreviewRejections = 20 // rejected rows listed
)

// Preview is what a mapping makes of a sample file, computed without
// storing anything: the first products, every issue counted, and the counts.
type Preview struct {
	Format      string   `json:"format"`
	Compression string   `json:"compression,omitempty"`
	Charset     string   `json:"charset,omitempty"`
	Columns     []string `json:"columns"`
	// Truncated says the sample was longer than the preview reads; the
	// counts are of the part read.
	Truncated    bool          `json:"truncated"`
	Counts       PreviewCounts `json:"counts"`
	Products     []Product     `json:"products"`
	IssueSummary IssueSummary  `json:"issue_summary"`
	Rejections   []Issue       `json:"rejections"`
}

// PreviewCounts add up: Read = Valid + Rejected + Excluded + Deletions +
// Duplicates. Warnings counts valid rows with a warning.
type PreviewCounts struct {
	Read       int64 `json:"read"`
	Valid      int64 `json:"valid"`
	Rejected   int64 `json:"rejected"`
	Excluded   int64 `json:"excluded"`
	Deletions  int64 `json:"deletions"`
	Duplicates int64 `json:"duplicates"` // rows a later row of the same id replaces
	Warnings   int64 `json:"warnings"`
}

// PreviewRequest is a sample file and how to read and map it.
type PreviewRequest struct {
	Sample    []byte // at most PreviewMaxBytes; Truncated says more was sent
	Truncated bool
	Kind      FileKind // what DetectFormat made of the sample's head
	Delimiter rune     // the one the partner named; 0 = Kind's
	Mapping   Mapping
	Partner   string
	Open      OpenDecoder
	TempDir   string
	Now       time.Time
}

// PreviewFile decodes the sample and maps every row as an upload would,
// without a catalog to compare with: a row is valid, rejected, excluded, a
// deletion, or replaced by a later row of the same id. Errors are the
// file's: columns that do not fit the mapping (ErrColumnsMismatch), or a
// file the decoder gives up on.
func PreviewFile(req PreviewRequest) (Preview, error) {
	p := Preview{Truncated: req.Truncated, Products: []Product{}, Rejections: []Issue{}, IssueSummary: IssueSummary{}}
	sample := req.Sample
	if req.Truncated {
		// A row cut by the cap would only be reported broken.
		if i := bytes.LastIndexByte(sample, '\n'); i > 0 {
			sample = sample[:i+1]
		}
	}
	kind := req.Kind
	p.Format, p.Compression, p.Charset = kind.Format, kind.Compression, kind.Charset
	delim := kind.Delimiter
	if req.Delimiter != 0 {
		delim = req.Delimiter
	}
	dec, err := req.Open(bytes.NewReader(sample), DecoderOptions{Format: kind.Format, Delimiter: delim, Quoted: req.Mapping.Quoted,
		Charset: req.Mapping.Resolve().Charset, TempDir: req.TempDir, MaxBytes: PreviewMaxBytes * 64})
	if err != nil {
		if req.Truncated {
			return p, fmt.Errorf("%w (the sample was cut at %d bytes; send a shorter one, or one not packed)", err, PreviewMaxBytes)
		}
		return p, err
	}
	defer dec.Close()
	type read struct {
		row RawRow
		bad *RowError
	}
	var rows []read
reading:
	for len(rows) < PreviewMaxRows {
		row, err := dec.Next()
		var rowErr *RowError
		switch {
		case errors.Is(err, io.EOF):
			break reading
		case errors.As(err, &rowErr):
			rows = append(rows, read{row: RawRow{Row: rowErr.Row, Values: rowErr.Values}, bad: rowErr})
		case err != nil && req.Truncated && len(rows) > 0:
			break reading // a packed sample cut short: keep what was read
		case err != nil:
			return p, fmt.Errorf("the sample cannot be read after %d rows: %w", len(rows), err)
		default:
			rows = append(rows, read{row: row})
		}
	}
	if len(rows) == PreviewMaxRows {
		if _, err := dec.Next(); !errors.Is(err, io.EOF) {
			p.Truncated = true
		}
	}
	p.Columns = append([]string{}, dec.Columns()...)
	if err := req.Mapping.CheckColumns(p.Columns); err != nil {
		return p, err
	}
	if c, ok := dec.(interface{ Charset() string }); ok && c.Charset() != "" {
		p.Charset = c.Charset()
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now().UTC()
	}
	rm := NewRowMapper(req.Mapping, req.Partner, p.Columns, now)
	last := map[string]int64{}
	for _, r := range rows {
		if sku := rm.SourceID(r.row); sku != "" {
			last[sku] = r.row.Row
		}
	}
	var summary IssueSummary
	reject := func(i Issue) {
		p.Counts.Rejected++
		if len(p.Rejections) < PreviewRejections {
			p.Rejections = append(p.Rejections, i)
		}
	}
	for _, r := range rows {
		p.Counts.Read++
		if r.bad != nil {
			code := r.bad.Code
			if code == "" {
				code = CodeRowUnreadable
			}
			i := Issue{Row: r.bad.Row, SourceID: rm.SourceID(r.row), Code: code, Severity: SeverityError, Reason: r.bad.Reason}
			summary.Add(i)
			reject(i)
			continue
		}
		sku := rm.SourceID(r.row)
		if by := last[sku]; sku != "" && by != r.row.Row {
			p.Counts.Duplicates++
			p.Counts.Warnings++
			summary.Add(Issue{Row: r.row.Row, SourceID: sku, Field: "id", Code: CodeDuplicateID, Severity: SeverityWarning,
				Reason: fmt.Sprintf("id %q appears again on row %d; the last row of a product is used, this one changes nothing", sku, by)})
			continue
		}
		if rm.Excluded(r.row) {
			p.Counts.Excluded++
			continue
		}
		if _, del := rm.Deleted(r.row); del {
			p.Counts.Deletions++
			continue
		}
		// An update row is shown as the whole product it would have to
		// be, with no catalog to take the rest from.
		prod, issues := rm.Map(r.row)
		for _, i := range issues {
			summary.Add(i)
		}
		if HasError(issues) {
			for _, i := range issues {
				if i.IsError() {
					reject(i)
					break
				}
			}
			continue
		}
		p.Counts.Valid++
		if len(issues) > 0 {
			p.Counts.Warnings++
		}
		if len(p.Products) < PreviewProducts {
			p.Products = append(p.Products, prod)
		}
	}
	if s := summary.Sorted(); s != nil {
		p.IssueSummary = s
	}
	return p, nil
}
