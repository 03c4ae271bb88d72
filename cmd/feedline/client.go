package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// apiClient talks to a feedline API as a partner or an admin.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newClient(base, key string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{}}
}

// problem is an RFC 9457 answer.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s (%d): %s", p.Title, p.Status, p.Detail)
	}
	return fmt.Sprintf("%s (%d)", p.Title, p.Status)
}

// do sends a file (or nothing) and decodes a 2xx JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, body io.Reader, size int64, out any) error {
	return c.send(ctx, method, path, body, size, "application/octet-stream", out)
}

// retries is how often a request the API answered 503 or 429 (with
// Retry-After: it tells the client to come back) is sent again, when its
// body can be read again from where it started.
const retries = 5

// send makes a request, again after a 503 or 429 when it can; an error
// answer comes back as a *problem.
func (c *apiClient) send(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, out any) error {
	seeker, _ := body.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	for attempt := 0; ; attempt++ {
		wait, err := c.sendOnce(ctx, method, path, body, size, contentType, out)
		if wait == 0 || attempt == retries || (body != nil && seeker == nil) {
			return err
		}
		slog.Warn("the API asks to retry", "path", path, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if seeker != nil {
			if _, serr := seeker.Seek(start, io.SeekStart); serr != nil {
				return err
			}
		}
	}
}

// sendOnce makes one request; wait > 0 when the API asked to retry.
func (c *apiClient) sendOnce(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, out any) (wait time.Duration, _ error) {
	var rb io.Reader
	if body != nil {
		rb = io.NopCloser(body) // the transport closes what it is given; a retry reads the file again
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rb)
	if err != nil {
		return 0, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if res.StatusCode >= 300 {
		p := &problem{Status: res.StatusCode, Title: res.Status}
		_ = json.Unmarshal(data, p)
		if res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests {
			wait = retryAfter(res.Header.Get("Retry-After"))
		}
		return wait, p
	}
	if out != nil {
		return 0, json.Unmarshal(data, out)
	}
	return 0, nil
}

// retryAfter reads a Retry-After header in seconds, bounded to a minute;
// none (or a date) waits two seconds.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	switch {
	case err != nil || n < 1:
		return 2 * time.Second
	case n > 60:
		return time.Minute
	}
	return time.Duration(n) * time.Second
}

func partnerCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 || args[0] != "add" {
		return errors.New("usage: feedline partner add ID")
	}
	fs := flag.NewFlagSet("partner add", flag.ContinueOnError)
	apiURL := fs.String("api", env("FEEDLINE_API", "http://127.0.0.1:8080"), "API base URL")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	admin := os.Getenv("FEEDLINE_ADMIN_KEY")
	if admin == "" {
		return errors.New("FEEDLINE_ADMIN_KEY is not set: partners are created with the admin key")
	}
	body, _ := json.Marshal(map[string]string{"id": args[1]})
	var out struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	c := newClient(*apiURL, admin)
	req := bytes.NewReader(body)
	if err := c.doJSON(ctx, http.MethodPost, "/v1/partners", req, &out); err != nil {
		return err
	}
	fmt.Fprintln(stdout, out.APIKey)
	return nil
}

// doJSON sends a JSON document.
func (c *apiClient) doJSON(ctx context.Context, method, path string, body *bytes.Reader, out any) error {
	return c.send(ctx, method, path, body, body.Size(), "application/json", out)
}

const mappingUsage = `usage:
  feedline mapping set PARTNER FILE|-
  feedline mapping lint MAPPING.json --sample FILE [--format F] [--delimiter D] [--partner P] [--json]`

func mappingCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) >= 2 && args[0] == "lint" {
		return mappingLintCmd(args[1:], stdout)
	}
	if len(args) < 3 || args[0] != "set" {
		return errors.New(mappingUsage)
	}
	fs := flag.NewFlagSet("mapping set", flag.ContinueOnError)
	apiURL := fs.String("api", env("FEEDLINE_API", "http://127.0.0.1:8080"), "API base URL")
	key := fs.String("key", env("FEEDLINE_API_KEY", os.Getenv("FEEDLINE_ADMIN_KEY")), "partner API key (or the admin key)")
	if err := fs.Parse(args[3:]); err != nil {
		return err
	}
	var doc []byte
	var err error
	if args[2] == "-" {
		doc, err = io.ReadAll(os.Stdin)
	} else {
		doc, err = os.ReadFile(args[2])
	}
	if err != nil {
		return err
	}
	var out schemas.Mapping
	if err := newClient(*apiURL, *key).doJSON(ctx, http.MethodPut, "/v1/partners/"+url.PathEscape(args[1])+"/mapping", bytes.NewReader(doc), &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mapping of %s is now version %d\n", args[1], out.Version)
	return nil
}

func pushCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	partner := fs.String("partner", env("FEEDLINE_PARTNER", ""), "partner id")
	mode := fs.String("mode", "full", "full (replaces the catalog) or delta")
	format := fs.String("format", "", "file format; detected when empty: "+strings.Join(schemas.Formats, ", "))
	apiURL := fs.String("api", env("FEEDLINE_API", "http://127.0.0.1:8080"), "API base URL")
	key := fs.String("key", env("FEEDLINE_API_KEY", ""), "partner API key")
	wait := fs.Duration("wait", 30*time.Minute, "how long to follow processing")
	quiet := fs.Bool("quiet", false, "no progress bars")
	confirm := fs.Bool("confirm", false, "confirm the upload if it is held because it would delete more of the catalog than allowed")
	issuesFile := fs.String("issues", "", "write every issue of the upload to this file (CSV when it ends in .csv, else NDJSON)")
	// Flags may follow the file name.
	var file string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			return fmt.Errorf("one file at a time (got %q and %q)", file, fs.Arg(0))
		}
		file, rest = fs.Arg(0), fs.Args()[1:]
	}
	if file == "" || *partner == "" {
		return errors.New("usage: feedline push FILE --partner P [--mode full|delta] [--format F] [--confirm] [--issues FILE]")
	}
	if *key == "" {
		*key = os.Getenv("FEEDLINE_ADMIN_KEY")
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	q := url.Values{"mode": {*mode}, "filename": {filepath.Base(file)}}
	if *format != "" {
		q.Set("format", *format)
	}
	var body io.Reader = f
	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("uploading "+filepath.Base(file)), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
		body = io.TeeReader(f, bar)
	}
	c := newClient(*apiURL, *key)
	var accepted struct {
		UploadID string `json:"upload_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/partners/"+url.PathEscape(*partner)+"/uploads?"+q.Encode(), body, st.Size(), &accepted); err != nil {
		return err
	}
	if bar != nil {
		_ = bar.Finish()
	}
	fmt.Fprintf(stderr, "upload %s accepted\n", accepted.UploadID)
	status, err := follow(ctx, c, accepted.UploadID, *wait, *quiet, stderr)
	if err != nil {
		return err
	}
	if status.State == schemas.StateHeld && *confirm {
		fmt.Fprintf(stderr, "upload %s held: %s; confirming\n", status.ID, holdClause(status.Hold))
		if err := decide(ctx, c, status.ID, schemas.DecisionConfirm); err != nil {
			return err
		}
		if status, err = follow(ctx, c, accepted.UploadID, *wait, *quiet, stderr); err != nil {
			return err
		}
	}
	printReport(stdout, status)
	if *issuesFile != "" {
		n, err := saveIssues(ctx, c, status.ID, *issuesFile)
		if err != nil {
			return fmt.Errorf("write the issues of upload %s: %w", status.ID, err)
		}
		fmt.Fprintf(stderr, "%d issues written to %s\n", n, *issuesFile)
	}
	switch status.State {
	case schemas.StateFailed:
		return fmt.Errorf("upload %s failed: %s", status.ID, status.Error)
	case schemas.StateHeld:
		return fmt.Errorf("upload %s is held, nothing of it is applied: %s; confirm it with feedline upload confirm %s (or push again with --confirm), or cancel it with feedline upload cancel %s",
			status.ID, holdClause(status.Hold), status.ID, status.ID)
	}
	return nil
}

func holdClause(h *schemas.Hold) string {
	if h == nil {
		return "no hold recorded"
	}
	return fmt.Sprintf("it would delete %d of %d live products (%.1f%%, more than the %d%% allowed)", h.WouldDelete, h.Live, h.Percent, h.MaxDeletePercent)
}

func decide(ctx context.Context, c *apiClient, id, decision string) error {
	return c.do(ctx, http.MethodPost, "/v1/uploads/"+url.PathEscape(id)+"/"+decision, nil, -1, nil)
}

// uploadCmd confirms or cancels a held upload.
func uploadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := errors.New("usage: feedline upload confirm|cancel UPLOAD_ID")
	if len(args) == 0 {
		return usage
	}
	decision := args[0]
	if decision != schemas.DecisionConfirm && decision != schemas.DecisionCancel {
		return usage
	}
	fs := flag.NewFlagSet("upload "+decision, flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", env("FEEDLINE_API", "http://127.0.0.1:8080"), "API base URL")
	key := fs.String("key", env("FEEDLINE_API_KEY", os.Getenv("FEEDLINE_ADMIN_KEY")), "partner API key")
	wait := fs.Duration("wait", 30*time.Minute, "how long to follow processing")
	quiet := fs.Bool("quiet", false, "no progress bar")
	// The id may come before or after the flags.
	rest, id := args[1:], ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 || id == "" {
		return usage
	}
	c := newClient(*apiURL, *key)
	if err := decide(ctx, c, id, decision); err != nil {
		return err
	}
	status, err := follow(ctx, c, id, *wait, *quiet, stderr)
	if err != nil {
		return err
	}
	printReport(stdout, status)
	if status.State == schemas.StateFailed {
		return fmt.Errorf("upload %s failed: %s", status.ID, status.Error)
	}
	return nil
}

// follow polls the upload until it is done or failed.
func follow(ctx context.Context, c *apiClient, id string, wait time.Duration, quiet bool, stderr io.Writer) (schemas.UploadStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var bar *progressbar.ProgressBar
	if !quiet {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSpinnerType(14),
			progressbar.OptionSetDescription("processing"), progressbar.OptionThrottle(200*time.Millisecond))
	}
	for {
		var s schemas.UploadStatus
		if err := c.do(ctx, http.MethodGet, "/v1/uploads/"+url.PathEscape(id), nil, -1, &s); err != nil {
			return s, err
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("%s: read %d, accepted %d, unchanged %d, rejected %d, warnings %d, indexed %d, deleted %d",
				s.State, s.Counts.Read, s.Counts.Accepted, s.Counts.Unchanged, s.Counts.Rejected, s.Counts.Warnings, s.Counts.Indexed, s.Counts.Deleted))
			_ = bar.Add(1)
		}
		if s.State == schemas.StateDone || s.State == schemas.StateFailed || s.State == schemas.StateHeld || s.State == schemas.StateCancelled {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stderr)
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("upload %s still %s after %s: %w", id, s.State, wait, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func printReport(w io.Writer, s schemas.UploadStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "upload\t%s\n", s.ID)
	fmt.Fprintf(tw, "partner\t%s\n", s.Partner)
	fmt.Fprintf(tw, "mode / format\t%s / %s (mapping v%d)\n", s.Mode, s.Format, s.MappingVersion)
	fmt.Fprintf(tw, "state\t%s\n", s.State)
	if s.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", s.Error)
	}
	c := s.Counts
	fmt.Fprintf(tw, "rows read\t%d\n", c.Read)
	fmt.Fprintf(tw, "accepted\t%d\n", c.Accepted)
	fmt.Fprintf(tw, "unchanged\t%d\n", c.Unchanged)
	fmt.Fprintf(tw, "rejected\t%d\n", c.Rejected)
	if c.Excluded > 0 {
		fmt.Fprintf(tw, "excluded\t%d\n", c.Excluded)
	}
	fmt.Fprintf(tw, "warnings\t%d\n", c.Warnings)
	fmt.Fprintf(tw, "indexed\t%d\n", c.Indexed)
	fmt.Fprintf(tw, "deleted\t%d\n", c.Deleted)
	if h := s.Hold; h != nil {
		fmt.Fprintf(tw, "held\t%s\n", holdClause(h))
		if h.Decision != "" {
			fmt.Fprintf(tw, "decision\t%s at %s\n", h.Decision, h.DecidedAt.Format(time.RFC3339))
		}
	}
	_ = tw.Flush()
	if len(s.IssueSummary) > 0 {
		fmt.Fprintf(w, "\nissues (%d in all; every one with --issues FILE or GET /v1/uploads/%s/issues):\n", s.IssueSummary.Total(), s.ID)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCODE\tFIELD\tCOUNT\tFIRST ROWS")
		for _, e := range s.IssueSummary {
			rows := make([]string, len(e.Rows))
			for i, r := range e.Rows {
				rows[i] = strconv.FormatInt(r, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Severity, e.Code, e.Field, e.Count, strings.Join(rows, ", "))
		}
		_ = tw.Flush()
	}
	if len(s.Rejections) == 0 {
		return
	}
	fmt.Fprintf(w, "\nrejected rows (first %d):\n", len(s.Rejections))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tSOURCE ID\tCODE\tREASON")
	for _, r := range s.Rejections {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, r.SourceID, r.Code, r.Reason)
	}
	_ = tw.Flush()
}

// saveIssues streams the upload's issue list into path: CSV when the name
// ends in .csv, else NDJSON. It returns how many issues it wrote.
func saveIssues(ctx context.Context, c *apiClient, id, path string) (int64, error) {
	q := ""
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		q = "?format=csv"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/uploads/"+url.PathEscape(id)+"/issues"+q, nil)
	if err != nil {
		return 0, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p := &problem{Status: res.StatusCode, Title: res.Status}
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = json.Unmarshal(data, p)
		return 0, p
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	lines := &lineCounter{w: f}
	_, err = io.Copy(lines, res.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	n := lines.n
	if q != "" && n > 0 {
		n-- // the header line
	}
	return n, err
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.n += int64(bytes.Count(p[:n], []byte("\n")))
	return n, err
}

func dlqCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "replay" {
		return dlqReplayCmd(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	stage := fs.String("stage", "", "only this stage's entries")
	limit := fs.Int("limit", 50, "most entries to print")
	cfg, err := parseSettings(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	filter := schemas.SubjectDLQ + ".>"
	if *stage != "" {
		filter = schemas.Subject(schemas.SubjectDLQ, *stage)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTAGE\tPARTNER\tUPLOAD\tROW\tATTEMPTS\tERROR")
	n := 0
	errStop := errors.New("limit reached")
	_, err = bus.Replay(ctx, topology.StreamDLQ, filter, func(m *pipeline.Message) error {
		var d schemas.DeadLetter
		if json.Unmarshal(m.Data, &d) != nil {
			return nil
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.At.Format(time.RFC3339), d.Stage, d.Source.Partner, d.Source.Upload, d.Source.Row, d.Attempts, d.Error)
		n++
		if n >= *limit {
			return errStop
		}
		return nil
	})
	_ = tw.Flush()
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
