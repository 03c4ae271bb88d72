package schemas

import (
	"fmt"
	"sort"
)

// UploadProgress is every record an upload's stages wrote so far.
type UploadProgress struct {
	Upload    UploadEvent
	Ingest    *IngestRecord
	Normalise map[int]NormaliseRecord
	Deletes   *DeleteRecord
	Index     map[int]IndexRecord
	Failures  []FailureRecord
}

// Status folds the progress records into what a partner sees. The upload is
// done once ingest finished, every raw batch was normalised, a full upload's
// deletions were decided, and the index applied every product batch.
func (p UploadProgress) Status() UploadStatus {
	u := p.Upload
	s := UploadStatus{
		ID: u.ID, Partner: u.Partner, Mode: u.Mode, Format: u.Format, MappingVersion: u.MappingVersion,
		ReceivedAt: u.ReceivedAt, Size: u.Size, State: StateReceived, Rejections: []Rejection{},
	}
	batches := make([]int, 0, len(p.Normalise))
	for b := range p.Normalise {
		batches = append(batches, b)
	}
	sort.Ints(batches)
	for _, b := range batches {
		r := p.Normalise[b]
		s.Counts.Read += r.Read
		s.Counts.Accepted += r.Accepted
		s.Counts.Unchanged += r.Unchanged
		s.Counts.Rejected += r.Rejected
		for _, rej := range r.Rejections {
			if len(s.Rejections) < MaxReportedRejections {
				s.Rejections = append(s.Rejections, rej)
			}
		}
	}
	sort.SliceStable(s.Rejections, func(i, j int) bool { return s.Rejections[i].Row < s.Rejections[j].Row })
	for _, r := range p.Index {
		s.Counts.Indexed += r.Indexed
		s.Counts.Deleted += r.Deleted
	}
	if p.Ingest != nil || len(p.Normalise) > 0 {
		s.State = StateProcessing
	}
	if p.Ingest == nil {
		return s
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
	if p.Ingest.Rows > s.Counts.Read && len(p.Normalise) >= p.Ingest.Batches {
		// Rows the decoder read that no batch carried cannot happen; keep
		// the larger figure so the report never under-counts.
		s.Counts.Read = p.Ingest.Rows
	}
	if len(p.Normalise) < p.Ingest.Batches {
		return s
	}
	want := p.Ingest.Batches
	if u.Mode == ModeFull {
		if p.Deletes == nil {
			return s
		}
		want += p.Deletes.Batches
	}
	s.Normalised = true
	if len(p.Index) >= want {
		s.State = StateDone
	}
	return s
}
