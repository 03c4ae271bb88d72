package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"feedline/pipeline"
	"feedline/schemas"
)

// decodeNDJSON lets NDJSON answers be checked line by line against the
// array schema the document gives them.
func decodeNDJSON() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		var out []any
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				return nil, fmt.Errorf("line %d: %w", len(out)+1, err)
			}
			out = append(out, v)
		}
		return out, sc.Err()
	})
}

// recordIssues records an upload whose batches found issues, the way
// normalise leaves it: counts in the ledger, each issue on the issue log.
func recordIssues(t *testing.T, e *env, id string, batches, perBatch int) {
	t.Helper()
	ctx := context.Background()
	if err := e.ledger.Create(ctx, schemas.UploadEvent{ID: id, Partner: "acme", Mode: schemas.ModeDelta, Format: "csv", MappingVersion: 1}); err != nil {
		t.Fatal(err)
	}
	pub := e.bus.Publisher()
	for b := range batches {
		rec := schemas.NormaliseRecord{Read: int64(perBatch)}
		ib := schemas.IssueBatch{Upload: id, Partner: "acme", Batch: b}
		for i := range perBatch {
			row := int64(b*perBatch + i + 1)
			is := schemas.Issue{Row: row, SourceID: fmt.Sprint("sku-", row), Field: "price", Code: schemas.CodePriceUnparseable,
				Severity: schemas.SeverityError, Reason: `price "abc" is not a number`}
			if i%4 == 0 {
				is = schemas.Issue{Row: row, SourceID: fmt.Sprint("sku-", row), Field: "gtin", Code: schemas.CodeGTINCheckDigit,
					Severity: schemas.SeverityWarning, Reason: `gtin "4006381333932" has check digit 2 but its digits give 1; it is dropped`}
				rec.Accepted++
				rec.Warnings++
			} else {
				rec.Rejected++
			}
			ib.Issues = append(ib.Issues, is)
			rec.Issues.Add(is)
		}
		data, _ := json.Marshal(ib)
		if _, err := pub.Publish(ctx, pipeline.Outgoing{Subject: schemas.IssuesSubject("acme", id), MsgID: schemas.MsgID("issues", id, b, 0), Data: data}); err != nil {
			t.Fatal(err)
		}
		if err := e.ledger.RecordNormalise(ctx, id, b, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ledger.RecordIngest(ctx, id, schemas.IngestRecord{Rows: int64(batches * perBatch), Batches: batches}); err != nil {
		t.Fatal(err)
	}
}

func TestUploadIssuesListEveryIssue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	other := e.createPartner(t, "other")
	recordIssues(t, e, "u1", 5, 1000)
	call := func(target, key string, want int) response {
		t.Helper()
		req := request(http.MethodGet, target, key, nil)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != want {
			t.Fatalf("GET %s: %d %s, want %d", target, r.StatusCode, r.body, want)
		}
		return r
	}

	var st schemas.UploadStatus
	call("/v1/uploads/u1", key, 200).decode(t, &st)
	if st.Counts.Warnings != 1250 || len(st.IssueSummary) != 2 || st.IssueSummary[0].Count != 3750 || st.IssueSummary[1].Count != 1250 {
		t.Errorf("status counts %+v, summary %+v", st.Counts, st.IssueSummary)
	}

	r := call("/v1/uploads/u1/issues", key, 200)
	if ct := r.Header.Get("Content-Type"); ct != contentTypeNDJSON {
		t.Errorf("Content-Type %q", ct)
	}
	lines := bytes.Split(bytes.TrimSpace(r.body), []byte("\n"))
	if len(lines) != 5000 {
		t.Fatalf("%d issues listed, want 5000", len(lines))
	}
	var first schemas.Issue
	if err := json.Unmarshal(lines[0], &first); err != nil || first.Row != 1 || first.Code != schemas.CodeGTINCheckDigit || first.Severity != schemas.SeverityWarning {
		t.Errorf("first issue %s (%v)", lines[0], err)
	}
	r = call("/v1/uploads/u1/issues?severity=warning", key, 200)
	if n := bytes.Count(r.body, []byte("\n")); n != 1250 {
		t.Errorf("%d warnings listed, want 1250", n)
	}
	r = call("/v1/uploads/u1/issues?code=price_unparseable&format=csv", testAdminKey, 200)
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3751 || strings.Join(recs[0], ",") != "row,source_id,field,code,severity,reason" || recs[1][0] != "2" || recs[1][5] != `price "abc" is not a number` {
		t.Errorf("csv: %d records (%v), first %v", len(recs), err, recs[:min(len(recs), 2)])
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.Contains(r.Header.Get("Content-Disposition"), "u1-issues.csv") {
		t.Errorf("csv headers %v", r.Header)
	}

	call("/v1/uploads/u1/issues", other, 404)
	call("/v1/uploads/nope/issues", key, 404)
	call("/v1/uploads/u1/issues", "", 401)
	call("/v1/uploads/u1/issues?format=xml", key, 400)
	call("/v1/uploads/u1/issues?severity=fatal", key, 400)

	// An upload without issues lists none; in CSV, just the header.
	if err := e.ledger.Create(context.Background(), schemas.UploadEvent{ID: "clean", Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
		t.Fatal(err)
	}
	if r := call("/v1/uploads/clean/issues", key, 200); len(r.body) != 0 {
		t.Errorf("clean upload lists %q", r.body)
	}
	if r := call("/v1/uploads/clean/issues?format=csv", key, 200); string(r.body) != "row,source_id,field,code,severity,reason\n" {
		t.Errorf("clean upload in CSV: %q", r.body)
	}

	// Counted issues whose list has expired answer 410 with the reason.
	if err := e.ledger.Create(context.Background(), schemas.UploadEvent{ID: "old", Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
		t.Fatal(err)
	}
	var rec schemas.NormaliseRecord
	rec.Issues.Add(schemas.Issue{Row: 1, Field: "title", Code: schemas.CodeMissingTitle, Severity: schemas.SeverityError})
	if err := e.ledger.RecordNormalise(context.Background(), "old", 0, rec); err != nil {
		t.Fatal(err)
	}
	if p := call("/v1/uploads/old/issues", key, 410).problem(t); !strings.Contains(p.Detail, "30 days") {
		t.Errorf("expired list: %s", p.Detail)
	}
}

// gatedIssues is the real issue log that, after yielding the first part of
// a list, waits until the client has received the answer's first line: an
// answer built whole before sending would never arrive, and the gate times
// out.
type gatedIssues struct {
	schemas.IssueLog
	after    int
	open     chan struct{}
	yielded  atomic.Int64
	timedOut atomic.Bool
}

func (g *gatedIssues) Each(ctx context.Context, partner, upload string, fn func(schemas.Issue) error) error {
	return g.IssueLog.Each(ctx, partner, upload, func(i schemas.Issue) error {
		if g.yielded.Add(1) == int64(g.after) {
			select {
			case <-g.open:
			case <-time.After(10 * time.Second):
				g.timedOut.Store(true)
			}
		}
		return fn(i)
	})
}

// The list of 50,000 issues of an upload is complete, and its answer
// starts before the list is read: the client gets the first lines while
// the server has read only the first thousand issues of the log.
func TestUploadIssuesStream(t *testing.T) {
	t.Parallel()
	gate := &gatedIssues{after: 1000, open: make(chan struct{})}
	e := newEnv(t, func(c *Config) {
		gate.IssueLog = c.Issues
		c.Issues = gate
	})
	key := e.createPartner(t, "acme")
	recordIssues(t, e, "big", 50, 1000)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.Shutdown() })
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v1/uploads/big/issues", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ContentLength >= 0 {
		t.Fatalf("status %d, content length %d: want 200 streamed without a length", res.StatusCode, res.ContentLength)
	}
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() {
		t.Fatalf("no first line: %v", sc.Err())
	}
	if got := gate.yielded.Load(); got > int64(gate.after) {
		t.Errorf("the server had read %d issues when the first line arrived; it should wait at %d", got, gate.after)
	}
	close(gate.open)
	n, rows := 1, map[int64]bool{}
	for sc.Scan() {
		var i schemas.Issue
		if err := json.Unmarshal(sc.Bytes(), &i); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		rows[i.Row] = true
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if gate.timedOut.Load() {
		t.Error("the first line did not arrive before the server read past its first thousand issues: the answer does not stream")
	}
	if n != 50_000 || len(rows) != 49_999 { // the first line was not parsed into rows
		t.Errorf("%d issues listed (%d distinct rows after the first), want 50000", n, len(rows))
	}
}
