package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Every event feedline publishes knows its envelope: the subject it goes
// to, the id that makes a second copy within the duplicate window a no-op
// (a stage republishing after a crash, a client retrying), and the
// metadata that lets a stage find the source position without decoding
// the payload. The runtime turns an event into a publish; nothing else
// builds a message.

// Metadata keys carried on pipeline messages.
const (
	HeaderPartner = "Feedline-Partner"
	HeaderUpload  = "Feedline-Upload"
	HeaderRow     = "Feedline-Row"
	HeaderBatch   = "Feedline-Batch"
	HeaderOrigin  = "Feedline-Origin" // the worker instance that published it
)

// MsgID builds the id of a deterministic message from its parts, joined by
// ":", so a republish after a crash is dropped as a duplicate.
func MsgID(parts ...any) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ":"
		}
		s += fmt.Sprint(p)
	}
	return s
}

// Subject is catalog.uploaded.<partner>.
func (ev UploadEvent) Subject() string { return Subject(SubjectUploaded, ev.Partner) }

// MsgID is the upload's id: an upload is announced once.
func (ev UploadEvent) MsgID() string { return ev.ID }

// Metadata names the partner and the upload.
func (ev UploadEvent) Metadata() map[string]string {
	return map[string]string{HeaderPartner: ev.Partner, HeaderUpload: ev.ID}
}

// Encode is the event's JSON.
func (ev UploadEvent) Encode() ([]byte, error) { return json.Marshal(ev) }

// RawSubject is where an upload's raw batches go:
// catalog.raw.<partner>.<upload>, so a finished upload's can be purged
// alone. Batches published before upload ids were in the subject are on
// catalog.raw.<partner>; they stay readable and expire with the stream.
func RawSubject(partner, upload string) string {
	return Subject(Subject(SubjectRaw, partner), upload)
}

// RawDecisionSubject is where a held upload's confirmation or cancellation
// goes: catalog.raw.<partner>.decision. No upload id (a ULID) is "decision".
func RawDecisionSubject(partner string) string {
	return Subject(Subject(SubjectRaw, partner), "decision")
}

// Subject is RawSubject of the batch's partner and upload, or
// RawDecisionSubject for a decision.
func (b *RawBatch) Subject() string {
	if b.Decision != "" {
		return RawDecisionSubject(b.Partner)
	}
	return RawSubject(b.Partner, b.Upload)
}

// MsgID is raw:<upload>:<batch>, raw:<upload>:end for the closing batch
// and raw:<upload>:<decision> for a decision.
func (b *RawBatch) MsgID() string {
	switch {
	case b.Decision != "":
		return MsgID("raw", b.Upload, b.Decision)
	case b.End != nil:
		return MsgID("raw", b.Upload, "end")
	}
	return MsgID("raw", b.Upload, b.Batch)
}

// Metadata names the partner and the upload and, unless the batch closes
// the upload, the batch and its first row.
func (b *RawBatch) Metadata() map[string]string {
	md := map[string]string{HeaderPartner: b.Partner, HeaderUpload: b.Upload}
	if b.End != nil {
		return md
	}
	md[HeaderBatch] = strconv.Itoa(b.Batch)
	if len(b.Rows) > 0 {
		md[HeaderRow] = strconv.FormatInt(b.Rows[0].Row, 10)
	}
	return md
}

// Encode is MarshalRawBatch.
func (b *RawBatch) Encode() ([]byte, error) { return MarshalRawBatch(b) }

// Subject is catalog.product.<partner>, the product log.
func (b *ProductBatch) Subject() string { return Subject(SubjectProduct, b.Partner) }

// MsgID is product:<upload>:<batch>, product:<upload>:end for the run
// summary, product:<upload>:compact:<sequence>:<upload_seq>:<at> for a
// compacted batch (two workers compacting alike write two).
func (b *ProductBatch) MsgID() string {
	if b.End != nil {
		return MsgID("product", b.Upload, "end")
	}
	if b.Compacted != 0 {
		return MsgID("product", b.Upload, "compact", b.Compacted, b.Seq, b.At.UnixNano())
	}
	return MsgID("product", b.Upload, b.Batch)
}

// Metadata names the partner, the upload and the batch.
func (b *ProductBatch) Metadata() map[string]string {
	return map[string]string{HeaderPartner: b.Partner, HeaderUpload: b.Upload, HeaderBatch: strconv.Itoa(b.Batch)}
}

// Encode is MarshalProductBatch.
func (b *ProductBatch) Encode() ([]byte, error) { return MarshalProductBatch(b) }

// StagedSubject is where a full upload's changes wait until it closes:
// catalog.staged.<partner>.<upload>.
func StagedSubject(partner, upload string) string {
	return Subject(Subject(SubjectStaged, partner), upload)
}

// StagedBatch is a product batch of a full upload that waits on its staged
// subject, not yet on the product log.
type StagedBatch struct{ *ProductBatch }

// Subject is StagedSubject of the batch's partner and upload.
func (b StagedBatch) Subject() string { return StagedSubject(b.Partner, b.Upload) }

// MsgID is staged:<upload>:<batch>.
func (b StagedBatch) MsgID() string { return MsgID("staged", b.Upload, b.Batch) }

// Subject is IssuesSubject of the batch's partner and upload.
func (b *IssueBatch) Subject() string { return IssuesSubject(b.Partner, b.Upload) }

// MsgID is issues:<upload>:<batch>:<part>.
func (b *IssueBatch) MsgID() string { return MsgID("issues", b.Upload, b.Batch, b.Part) }

// Metadata names the partner, the upload and the raw batch.
func (b *IssueBatch) Metadata() map[string]string {
	return map[string]string{HeaderPartner: b.Partner, HeaderUpload: b.Upload, HeaderBatch: strconv.Itoa(b.Batch)}
}

// Encode is the batch's JSON.
func (b *IssueBatch) Encode() ([]byte, error) { return json.Marshal(b) }

// Subject is analytics.search.
func (ev SearchQueryEvent) Subject() string { return SubjectSearch }

// MsgID is the event's id.
func (ev SearchQueryEvent) MsgID() string { return ev.ID }

// Metadata is none: a search has no source position.
func (ev SearchQueryEvent) Metadata() map[string]string { return nil }

// Encode is the event's JSON.
func (ev SearchQueryEvent) Encode() ([]byte, error) { return json.Marshal(ev) }

// Subject is social.post.<user> for posts and their deletions,
// social.follow.<user> for follows and unfollows: one shopper's writes
// of a kind stay in order.
func (ev SocialEvent) Subject() string {
	if ev.Kind == SocialPost || ev.Kind == SocialPostDelete {
		return Subject(SubjectPost, ev.User)
	}
	return Subject(SubjectFollow, ev.User)
}

// MsgID is the event's ULID, so a retried write is stored once.
func (ev SocialEvent) MsgID() string { return ev.ID }

// Metadata is none: a shopper write has no source position.
func (ev SocialEvent) Metadata() map[string]string { return nil }

// Encode is the event's JSON.
func (ev SocialEvent) Encode() ([]byte, error) { return json.Marshal(ev) }

// FeedReads are feed reads gathered for a moment and published together
// on analytics.feed, each a FeedEventRow of kind feed_read.
type FeedReads []FeedEventRow

// Subject is analytics.feed.
func (r FeedReads) Subject() string { return SubjectFeedRead }

// MsgID is reads:<first event id>.
func (r FeedReads) MsgID() string {
	if len(r) == 0 {
		return ""
	}
	return MsgID("reads", r[0].EventID)
}

// Metadata is none.
func (r FeedReads) Metadata() map[string]string { return nil }

// Encode is the JSON array of the rows.
func (r FeedReads) Encode() ([]byte, error) { return json.Marshal([]FeedEventRow(r)) }
