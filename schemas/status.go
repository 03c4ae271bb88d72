package schemas

import (
	"fmt"
	"slices"
	"sort"
)

// NormaliseTotals sums the normalised batches of an upload, each counted once.
type NormaliseTotals struct {
	Batches    int          `json:"batches"`
	Read       int64        `json:"read"`
	Accepted   int64        `json:"accepted"`
	Unchanged  int64        `json:"unchanged"`
	Rejected   int64        `json:"rejected"`
	Excluded   int64        `json:"excluded,omitempty"`
	Warnings   int64        `json:"warnings,omitempty"`
	Rejections []Issue      `json:"rejections,omitempty"` // the lowest rows, at most MaxReportedRejections
	Issues     IssueSummary `json:"issues,omitempty"`     // every issue, counted
}

// Add counts one batch's record.
func (t *NormaliseTotals) Add(r NormaliseRecord) {
	t.Batches++
	t.Read += r.Read
	t.Accepted += r.Accepted
	t.Unchanged += r.Unchanged
	t.Rejected += r.Rejected
	t.Excluded += r.Excluded
	t.Warnings += r.Warnings
	t.Rejections = mergeRejections(t.Rejections, r.Rejections)
	t.Issues.Merge(r.Issues)
}

// IndexTotals sums the product batches the index applied, each counted once.
type IndexTotals struct {
	Batches    int     `json:"batches"`
	Indexed    int64   `json:"indexed"`
	Deleted    int64   `json:"deleted"`
	Rejected   int64   `json:"rejected,omitempty"`
	Rejections []Issue `json:"rejections,omitempty"` // the lowest rows, at most MaxReportedRejections
}

// Add counts one batch's record.
func (t *IndexTotals) Add(r IndexRecord) {
	t.Batches++
	t.Indexed += r.Indexed
	t.Deleted += r.Deleted
	t.Rejected += int64(len(r.Rejections))
	t.Rejections = mergeRejections(t.Rejections, r.Rejections)
}

// mergeRejections keeps the lowest rows of both lists, at most
// MaxReportedRejections.
func mergeRejections(have, add []Issue) []Issue {
	if len(add) == 0 {
		return have
	}
	have = append(have, add...)
	sort.SliceStable(have, func(i, j int) bool { return have[i].Row < have[j].Row })
	if len(have) > MaxReportedRejections {
		have = have[:MaxReportedRejections]
	}
	return have
}

// UploadProgress is what an upload's stages recorded so far.
type UploadProgress struct {
	Upload    UploadEvent
	Ingest    *IngestRecord
	Normalise NormaliseTotals
	Deletes   *DeleteRecord
	Index     IndexTotals
	Failures  []FailureRecord
	Hold      *HoldRecord
	Decision  *DecisionRecord
	Cancel    *CancelRecord
	Staged    *bool // whether a full upload's changes wait in the staging stream
}

// Status folds the progress into what a partner sees. The upload is done
// once ingest finished, every raw batch was normalised, a full upload's
// deletions were decided, and the index applied every product batch.
func (p UploadProgress) Status() (s UploadStatus) {
	u, n := p.Upload, p.Normalise
	s = UploadStatus{
		ID: u.ID, Partner: u.Partner, Mode: u.Mode, Format: u.Format, MappingVersion: u.MappingVersion,
		ReceivedAt: u.ReceivedAt, Size: u.Size, State: StateReceived,
		// A row the search backend refused counts as rejected, not
		// accepted, so read = accepted + unchanged + rejected still holds.
		Counts: Counts{
			Read: n.Read, Accepted: n.Accepted - p.Index.Rejected, Unchanged: n.Unchanged, Rejected: n.Rejected + p.Index.Rejected,
			Excluded: n.Excluded, Warnings: n.Warnings, Indexed: p.Index.Indexed, Deleted: p.Index.Deleted,
		},
		Compression: u.Compression, Charset: u.Charset, Filename: u.Filename, Source: u.Source, RetryOf: u.RetryOf,
		Rejections: mergeRejections(append([]Issue{}, n.Rejections...), p.Index.Rejections),
	}
	if c := p.Cancel; c != nil {
		// What normalise published before the cancellation stays applied
		// (the product log is the source of truth); the rest never is.
		defer func() {
			s.State, s.Normalised = StateCancelled, false
			s.Cancellation = &Cancellation{At: c.At, Applied: p.Staged == nil || !*p.Staged}
		}()
	}
	summary := slices.Clone(n.Issues)
	for _, r := range p.Index.Rejections {
		summary.Add(r)
	}
	s.IssueSummary = summary.Sorted()
	if s.IssueSummary == nil {
		s.IssueSummary = IssueSummary{}
	}
	if p.Ingest != nil || n.Batches > 0 {
		s.State = StateProcessing
	}
	if p.Ingest == nil {
		return s
	}
	if p.Ingest.Charset != "" {
		s.Charset = p.Ingest.Charset
	}
	if p.Ingest.Error != "" {
		s.State, s.Error = StateFailed, p.Ingest.Error
		return s
	}
	if len(p.Failures) > 0 {
		f := p.Failures[0]
		s.State = StateFailed
		s.Error = fmt.Sprintf("stage %s gave up on batch %d (%d failure(s) in all; see feedline dlq): %s", f.Stage, f.Batch, len(p.Failures), f.Error)
		return s
	}
	if n.Batches < p.Ingest.Batches {
		return s
	}
	if h := p.Hold; h != nil {
		s.Hold = &Hold{WouldDelete: h.WouldDelete, Live: h.Live, MaxDeletePercent: h.MaxDeletePercent,
			Percent: float64(h.WouldDelete*1000/max(h.Live, 1)) / 10}
		if d := p.Decision; d != nil {
			s.Hold.Decision, s.Hold.DecidedAt = d.Decision, d.At
		}
		switch {
		case p.Decision == nil:
			s.State = StateHeld
			return s
		case p.Decision.Decision == DecisionCancel:
			s.State = StateCancelled
			return s
		}
	}
	want := p.Ingest.Batches
	if u.Mode == ModeFull {
		if p.Deletes == nil {
			return s
		}
		want += p.Deletes.Batches
	}
	s.Normalised = true
	if p.Index.Batches >= want {
		s.State = StateDone
	}
	return s
}
