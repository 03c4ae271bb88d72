package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"feedline/connectors/decode"
	"feedline/schemas"
)

// errLint is a lint that found the mapping or the sample unusable; the
// report says why.
var errLint = errors.New("the mapping cannot be used on this sample")

// mappingLintCmd checks a mapping document and what it makes of a sample
// file, without a server: what POST /v1/partners/{partner}/mapping/preview
// answers.
func mappingLintCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mapping lint", flag.ContinueOnError)
	sample := fs.String("sample", "", "a sample of the partner's feed (the first 8 MiB and 10,000 rows are read)")
	format := fs.String("format", "", "the sample's format; detected when left out")
	delimiter := fs.String("delimiter", "", `CSV delimiter ("," ";" "|" or tab); detected when left out`)
	partner := fs.String("partner", "partner", "partner id the product ids are made with")
	asJSON := fs.Bool("json", false, "print the preview as the API answers it")
	path, rest := args[0], args[1:]
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), mappingUsage)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m schemas.Mapping
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("%s is not a mapping document: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		var me *schemas.MappingError
		if errors.As(err, &me) {
			fmt.Fprintf(stdout, "%s is not a valid mapping:\n", path)
			for _, p := range me.Problems {
				fmt.Fprintf(stdout, "  - %s\n", p)
			}
			return errLint
		}
		return err
	}
	if *sample == "" {
		fmt.Fprintf(stdout, "%s is a valid mapping (%d rules); give --sample FILE to see what it makes of a feed\n", path, len(m.Rules))
		return nil
	}
	var delim rune
	if *delimiter != "" {
		r, ok := map[string]rune{",": ',', "comma": ',', ";": ';', "semicolon": ';', "|": '|', "pipe": '|', "tab": '\t', "\t": '\t', `\t`: '\t'}[*delimiter]
		if !ok {
			return fmt.Errorf(`--delimiter %q: use ",", ";", "|" or tab`, *delimiter)
		}
		delim = r
	}
	f, err := os.Open(*sample)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, schemas.PreviewMaxBytes+1))
	if err != nil {
		return err
	}
	truncated := len(data) > schemas.PreviewMaxBytes
	if truncated {
		data = data[:schemas.PreviewMaxBytes]
	}
	kind, err := decode.DetectFormat(data[:min(len(data), decode.HeadSize)], *format, m.Resolve().Charset)
	if err != nil {
		fmt.Fprintf(stdout, "%s cannot be read as a product feed: %v\n", *sample, err)
		return errLint
	}
	pv, err := schemas.PreviewFile(schemas.PreviewRequest{
		Sample: data, Truncated: truncated, Kind: kind, Delimiter: delim, Mapping: m, Partner: *partner,
		Open: decode.Open, TempDir: os.TempDir(), Now: time.Now().UTC(),
	})
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", *sample, err)
		return errLint
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pv)
	}
	printPreview(stdout, *sample, pv)
	return nil
}

func printPreview(w io.Writer, name string, pv schemas.Preview) {
	c := pv.Counts
	cut := ""
	if pv.Truncated {
		cut = " (the sample is longer: only its start was read)"
	}
	fmt.Fprintf(w, "%s: %s, %d columns%s\n", name, strings.Join(strings.Fields(pv.Format+" "+pv.Compression+" "+pv.Charset), " "), len(pv.Columns), cut)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range []struct {
		name string
		n    int64
	}{{"rows read", c.Read}, {"valid", c.Valid}, {"rejected", c.Rejected}, {"excluded", c.Excluded}, {"deletions", c.Deletions},
		{"duplicates", c.Duplicates}, {"warnings", c.Warnings}} {
		fmt.Fprintf(tw, "%s\t%d\n", l.name, l.n)
	}
	_ = tw.Flush()
	if len(pv.Products) > 0 {
		fmt.Fprintf(w, "\nfirst products (%d):\n", len(pv.Products))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTITLE\tPRICE\tSALE\tBRAND\tCATEGORY\tAVAILABILITY")
		for _, p := range pv.Products {
			sale := ""
			if p.SalePrice != nil {
				sale = schemas.FormatPrice(*p.SalePrice, p.Currency)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, shortText(p.Title, 40), schemas.FormatPrice(p.Price, p.Currency), sale,
				p.Brand, strings.Join(p.Category, " > "), p.Availability)
		}
		_ = tw.Flush()
	}
	if len(pv.IssueSummary) > 0 {
		fmt.Fprintf(w, "\nissues (%d in all):\n", pv.IssueSummary.Total())
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCODE\tFIELD\tCOUNT\tFIRST ROWS")
		for _, e := range pv.IssueSummary {
			rows := make([]string, len(e.Rows))
			for i, r := range e.Rows {
				rows[i] = fmt.Sprint(r)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Severity, e.Code, e.Field, e.Count, strings.Join(rows, ", "))
		}
		_ = tw.Flush()
	}
	if len(pv.Rejections) > 0 {
		fmt.Fprintf(w, "\nrejected rows (first %d):\n", len(pv.Rejections))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ROW\tSOURCE ID\tCODE\tREASON")
		for _, r := range pv.Rejections {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, r.SourceID, r.Code, r.Reason)
		}
		_ = tw.Flush()
	}
}

// shortText cuts s to n characters for a table cell.
func shortText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
