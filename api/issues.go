package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// Media types of an upload's issue list.
const (
	contentTypeNDJSON = "application/x-ndjson"
	contentTypeCSV    = "text/csv; charset=utf-8"
)

// flushEvery is how many issues are written between flushes to the client,
// so the answer arrives as it is read, in pieces of a few tens of KiB.
const flushEvery = 256

// uploadIssues streams every issue of an upload to the partner that owns
// it, as NDJSON or CSV: read from the issue log part by part and written as
// read, so a list of any length never sits in memory whole.
func (s *server) uploadIssues(c *fiber.Ctx) error {
	id := c.Params("id")
	format := c.Query("format", "ndjson")
	if format != "ndjson" && format != "csv" {
		return invalidParameter("format %q: use ndjson (the default) or csv.", format)
	}
	severity := c.Query("severity")
	if severity != "" && severity != schemas.SeverityError && severity != schemas.SeverityWarning {
		return invalidParameter("severity %q: use error or warning, or leave it out for both.", severity)
	}
	code := c.Query("code")
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.cfg.Ledger.Status(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) || (err == nil && !principalOf(c).mayActFor(st.Partner)) {
		return notFound("No upload %q is visible to this key; check the id in the Location header of the upload's answer.", id)
	}
	if err != nil {
		return failed("read the upload status", err)
	}
	if s.cfg.Issues == nil {
		return notServed("This server keeps no issue lists; ask a server running the API with its issue log.")
	}
	// The index's refusals live in the upload record (the first ones);
	// everything else is in the issue log.
	var refused []schemas.Issue
	logged := st.IssueSummary.Total()
	for _, r := range st.Rejections {
		if r.Code == schemas.CodeIndexRefused {
			refused = append(refused, r)
		}
	}
	for _, e := range st.IssueSummary {
		if e.Code == schemas.CodeIndexRefused {
			logged -= e.Count
		}
	}
	if logged > 0 {
		stored, err := s.cfg.Issues.Stored(ctx, st.Partner, id)
		if err != nil {
			return failed("read the upload's issues", err)
		}
		if !stored {
			return problem(fiber.StatusGone, "issues-expired", "Issue list expired",
				"The %d issues of upload %s are counted in its issue_summary, but the list of each is kept %d days and is gone; upload the file again for a new list.",
				logged, id, int(s.cfg.IssueRetention.Hours()/24))
		}
	}
	keep := func(i schemas.Issue) bool {
		return (severity == "" || i.Severity == severity) && (code == "" || i.Code == code)
	}
	if format == "csv" {
		c.Set(fiber.HeaderContentType, contentTypeCSV)
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s-issues.csv"`, id))
	} else {
		c.Set(fiber.HeaderContentType, contentTypeNDJSON)
	}
	partner := st.Partner
	// The body is written after the handler returns; the request's own
	// deadline is for the status read above.
	streamCtx := context.WithoutCancel(c.UserContext())
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		write := issueWriter(w, format)
		n := 0
		emit := func(i schemas.Issue) error {
			if !keep(i) {
				return nil
			}
			if err := write(i); err != nil {
				return err
			}
			if n++; n%flushEvery == 0 {
				return w.Flush()
			}
			return nil
		}
		err := s.cfg.Issues.Each(streamCtx, partner, id, emit)
		for _, r := range refused {
			if err != nil {
				break
			}
			err = emit(r)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			// The status line is sent: the client sees a list cut short.
			s.cfg.Log.Warn("the issue list of an upload was cut short", "upload", id, "written", n, "err", err)
		}
	})
	return nil
}

// issueColumns head an issue list in CSV.
var issueColumns = []string{"row", "source_id", "field", "code", "severity", "reason"}

// issueWriter writes issues one by one in the chosen format; a CSV list
// starts with its header, also when it is empty.
func issueWriter(w *bufio.Writer, format string) func(schemas.Issue) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write(issueColumns) // a failed write shows at the next one
		return func(i schemas.Issue) error {
			if err := cw.Write([]string{strconv.FormatInt(i.Row, 10), i.SourceID, i.Field, i.Code, i.Severity, i.Reason}); err != nil {
				return err
			}
			cw.Flush()
			return cw.Error()
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return func(i schemas.Issue) error { return enc.Encode(i) }
}
