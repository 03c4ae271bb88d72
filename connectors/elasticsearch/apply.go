package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8/esutil"
	json "github.com/goccy/go-json"

	"feedline/schemas"
)

// Apply writes changes with external versioning, so per product the
// cluster keeps the highest version whatever the order of arrival. Within
// the call, only each product's highest version is sent (the first listed
// among equals); the others count as Stale, or like that change when their
// version is the same. A change whose version the index already holds
// counts as Indexed or Deleted, so a replay reports the same numbers; one
// older than it is Stale. Items the cluster answers 429 or 5xx are sent again
// with backoff; if they keep failing Apply returns an error wrapping
// schemas.ErrUnavailable. Items refused for good (a mapping error, say) go to
// Rejected and the rest of the call stands.
func (ix *Index) Apply(ctx context.Context, changes []schemas.ProductChange) (schemas.ApplyResult, error) {
	var res schemas.ApplyResult
	if len(changes) == 0 {
		return res, nil
	}
	if err := schemas.ValidateChanges(changes); err != nil {
		return res, fmt.Errorf("elasticsearch: %w", err)
	}
	if ix.conn.open() {
		return res, fmt.Errorf("elasticsearch: apply: %w: circuit open", schemas.ErrUnavailable)
	}
	enc, _ := ix.encoders.Get().(*docEncoder)
	if enc == nil {
		enc = new(docEncoder)
	}
	call, err := newApplyCall(changes, enc)
	if err != nil {
		return res, err
	}
	pending := call.sendable()
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if attempt > ix.cfg.MaxRetries {
				err := fmt.Errorf("%d changes still failing after %d attempts, last: %s: %w",
					len(pending), attempt, call.outcomes[pending[0]].reason, schemas.ErrUnavailable)
				ix.conn.reportFailure(err)
				return schemas.ApplyResult{}, fmt.Errorf("elasticsearch: apply: %w", err)
			}
			if err := sleep(ctx, ix.cfg.RetryBackoff(attempt)); err != nil {
				return schemas.ApplyResult{}, err
			}
			if ix.conn.open() {
				return schemas.ApplyResult{}, fmt.Errorf("elasticsearch: apply: %w: circuit open", schemas.ErrUnavailable)
			}
		}
		if err := ix.send(ctx, call, pending); err != nil {
			return schemas.ApplyResult{}, err
		}
		pending = call.retries(pending)
	}
	// Every item was read by now; on the error paths above a bulk worker
	// may still read the documents, so their buffer is not reused.
	enc.reset()
	ix.encoders.Put(enc)
	return call.result(ix.log), nil
}

// send adds the winners at positions pending to the bulk indexer and
// flushes it; every item's outcome is known when it returns nil.
func (ix *Index) send(ctx context.Context, call *applyCall, pending []int) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, k := range pending {
		call.outcomes[k] = outcome{state: outcomeMissing, reason: "no answer for the item"}
		call.readers[k].Reset(call.docs[k])
		err := ix.bulk.Add(ctx, esutil.BulkIndexerItem{
			Action:      "index",
			DocumentID:  call.changes[call.winners[k]].ID,
			Version:     &call.versions[k],
			VersionType: "external",
			Body:        &call.readers[k],
			OnSuccess:   call.onSuccess,
			OnFailure:   call.onFailure,
		})
		if err != nil {
			return fmt.Errorf("elasticsearch: apply: %w", err)
		}
	}
	if err := ix.bulk.Flush(ctx); err != nil {
		return fmt.Errorf("elasticsearch: apply: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type outcomeState uint8

const (
	outcomeMissing  outcomeState = iota // sent, no answer yet: retried
	outcomeApplied                      // written, or the version was already there
	outcomeStale                        // the index holds a newer version
	outcomeRejected                     // refused for good
	outcomeRetry                        // 429, 5xx or a failed request: retried
)

type outcome struct {
	state  outcomeState
	reason string
}

// applyCall is one Apply: the winning change per product, its encoded
// document and the outcome the cluster gave it. Winner k is
// changes[winners[k]]; bulk callbacks find k by document id.
type applyCall struct {
	changes  []schemas.ProductChange
	winnerOf []int // per change, its product's winner k
	winners  []int // per k, the change position
	pos      map[string]int
	docs     [][]byte
	versions []int64
	readers  []bytes.Reader

	mu       sync.Mutex // callbacks of several bulk workers
	outcomes []outcome
}

func newApplyCall(changes []schemas.ProductChange, enc *docEncoder) (*applyCall, error) {
	call := &applyCall{
		changes:  changes,
		winnerOf: make([]int, len(changes)),
		pos:      make(map[string]int, len(changes)),
	}
	for i := range changes {
		c := &changes[i]
		k, seen := call.pos[c.ID]
		if !seen {
			k = len(call.winners)
			call.pos[c.ID] = k
			call.winners = append(call.winners, i)
		} else if c.Version > changes[call.winners[k]].Version {
			call.winners[k] = i
		}
		call.winnerOf[i] = k
	}
	n := len(call.winners)
	call.docs = make([][]byte, n)
	call.versions = make([]int64, n)
	call.readers = make([]bytes.Reader, n)
	call.outcomes = make([]outcome, n)

	ends := make([]int, n)
	for k, i := range call.winners {
		c := &changes[i]
		if c.Version > math.MaxInt64 {
			call.outcomes[k] = outcome{outcomeRejected, fmt.Sprintf("version_out_of_range: version %d is above what Elasticsearch can store", c.Version)}
		} else {
			call.versions[k] = int64(c.Version)
			if err := enc.document(c); err != nil {
				return nil, fmt.Errorf("elasticsearch: encode %s: %w", c.ID, err)
			}
		}
		ends[k] = enc.buf.Len()
	}
	// Documents are sliced once the buffer has stopped growing.
	all, start := enc.buf.Bytes(), 0
	for k, end := range ends {
		call.docs[k] = all[start:end:end]
		start = end
	}
	return call, nil
}

// sendable lists the winners not already settled before sending.
func (call *applyCall) sendable() []int {
	out := make([]int, 0, len(call.winners))
	for k := range call.winners {
		if call.outcomes[k].state != outcomeRejected {
			out = append(out, k)
		}
	}
	return out
}

// retries lists the winners of pending that must be sent again.
func (call *applyCall) retries(pending []int) []int {
	var out []int
	for _, k := range pending {
		if s := call.outcomes[k].state; s == outcomeRetry || s == outcomeMissing {
			out = append(out, k)
		}
	}
	return out
}

func (call *applyCall) settle(id string, o outcome) {
	k, ok := call.pos[id]
	if !ok {
		return
	}
	call.mu.Lock()
	call.outcomes[k] = o
	call.mu.Unlock()
}

func (call *applyCall) onSuccess(_ context.Context, item esutil.BulkIndexerItem, _ esutil.BulkIndexerResponseItem) {
	call.settle(item.DocumentID, outcome{state: outcomeApplied})
}

func (call *applyCall) onFailure(_ context.Context, item esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
	if err != nil {
		// The whole bulk request failed: transport, circuit, or its status.
		call.settle(item.DocumentID, outcome{outcomeRetry, err.Error()})
		return
	}
	call.settle(item.DocumentID, classify(*item.Version, res))
}

// classify turns a failed bulk item into an outcome.
func classify(sent int64, res esutil.BulkIndexerResponseItem) outcome {
	reason := res.Error.Type + ": " + res.Error.Reason
	if res.Error.Type == "" {
		reason = fmt.Sprintf("status %d, result %q", res.Status, res.Result)
	}
	if res.Error.Cause.Type != "" {
		reason += " (caused by " + res.Error.Cause.Type + ": " + res.Error.Cause.Reason + ")"
	}
	switch {
	case res.Status == http.StatusConflict && res.Error.Type == "version_conflict_engine_exception":
		current, ok := currentVersion(res.Error.Reason)
		switch {
		case ok && current == sent:
			return outcome{state: outcomeApplied}
		case ok && current > sent:
			return outcome{state: outcomeStale}
		}
		// External versioning conflicts only with an equal or higher
		// version; without one to compare, the change is not applied.
		return outcome{outcomeStale, reason}
	case res.Status == http.StatusTooManyRequests || res.Status >= 500:
		return outcome{outcomeRetry, reason}
	default:
		// Any other refusal (a bad document, a 2xx carrying an error)
		// would be refused again.
		return outcome{outcomeRejected, reason}
	}
}

var conflictVersions = regexp.MustCompile(`current version \[(\d+)\] is higher or equal to the one provided \[(\d+)\]`)

// currentVersion reads the version the index holds from a version
// conflict's reason.
func currentVersion(reason string) (int64, bool) {
	m := conflictVersions.FindStringSubmatch(reason)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	return v, err == nil
}

// result counts every change by the outcome of its product's winner.
func (call *applyCall) result(log *slog.Logger) schemas.ApplyResult {
	var res schemas.ApplyResult
	for i := range call.changes {
		c := &call.changes[i]
		k := call.winnerOf[i]
		w := &call.changes[call.winners[k]]
		o := call.outcomes[k]
		if c.Version < w.Version {
			res.Stale++
			res.StaleAt = append(res.StaleAt, i)
			continue
		}
		switch o.state {
		case outcomeApplied:
			if c.Kind == schemas.ChangeDelete {
				res.Deleted++
			} else {
				res.Indexed++
			}
		case outcomeStale:
			if o.reason != "" && i == call.winners[k] {
				log.Warn("elasticsearch version conflict without versions, counted stale", "id", c.ID, "reason", o.reason)
			}
			res.Stale++
			res.StaleAt = append(res.StaleAt, i)
		default:
			res.Rejected = append(res.Rejected, schemas.RejectedChange{At: i, Reason: o.reason})
		}
	}
	slices.Sort(res.StaleAt)
	return res
}

// docEncoder writes index documents back to back into one buffer: the
// product JSON with the derived fields appended, or a tombstone.
type docEncoder struct {
	buf     bytes.Buffer
	enc     *json.Encoder
	scratch []byte
}

func (e *docEncoder) reset() {
	e.buf.Reset()
	e.scratch = e.scratch[:0]
}

func (e *docEncoder) document(c *schemas.ProductChange) error {
	if c.Kind == schemas.ChangeDelete {
		b := e.scratch[:0]
		b = append(b, `{"`+FieldID+`":`...)
		b = appendJSONString(b, c.ID)
		b = append(b, `,"`+FieldVersion+`":`...)
		b = strconv.AppendUint(b, c.Version, 10)
		b = append(b, `,"`+FieldDeleted+`":true}`...)
		e.buf.Write(b)
		e.scratch = b
		return nil
	}
	p := c.Product
	if p.ID == "" {
		// The id field is the sort tie-break, so every document has one.
		cp := *p
		cp.ID = c.ID
		p = &cp
	}
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
	}
	start := e.buf.Len()
	if err := e.enc.Encode(p); err != nil {
		e.buf.Truncate(start)
		return err
	}
	// Encode ends the object with "}\n": reopen it for the derived fields.
	e.buf.Truncate(e.buf.Len() - 2)
	b := e.scratch[:0]
	b = append(b, `,"`+FieldCategoryPaths+`":[`...)
	for i := range p.Category {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j, level := range p.Category[:i+1] {
			if j > 0 {
				b = append(b, schemas.CategorySeparator...)
			}
			b = appendJSONStringBody(b, level)
		}
		b = append(b, '"')
	}
	b = append(b, `],"`+FieldIdentifiers+`":[`...)
	for i, ident := range p.Identifiers() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, ident)
	}
	b = append(b, `],"`+FieldSuggest+`":[`...)
	for i, term := range p.SuggestTerms() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, term)
	}
	b = append(b, `],"`+FieldEffective+`":`...)
	b = strconv.AppendInt(b, p.EffectivePrice(), 10)
	b = append(b, `,"`+FieldDeleted+`":false}`...)
	e.buf.Write(b)
	e.scratch = b
	return nil
}

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONStringBody escapes s as the inside of a JSON string, replacing
// invalid UTF-8 as encoding/json does.
func appendJSONStringBody(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
