package schemas

import (
	"context"
	"fmt"
	"time"
)

// Upload states reported to partners.
const (
	StateReceived   = "received"
	StateProcessing = "processing"
	StateDone       = "done"
	StateFailed     = "failed"
	// StateHeld is a full upload that would delete more of the catalog than
	// its partner allows; nothing of it is applied until it is confirmed.
	StateHeld      = "held"
	StateCancelled = "cancelled" // cancelled by its partner: nothing more of it is applied
)

// Finished reports whether an upload in this state will change no more:
// it is done, failed, cancelled or held for its partner's decision.
func Finished(state string) bool {
	return state == StateDone || state == StateFailed || state == StateCancelled || state == StateHeld
}

// Decisions on a held upload.
const (
	DecisionConfirm = "confirm"
	DecisionCancel  = "cancel"
)

// DefaultMaxDeletePercent is the share of a partner's live products a full
// upload may delete before it is held.
const DefaultMaxDeletePercent = 30

// Counts add up: Read = Accepted + Unchanged + Rejected + Excluded.
// Warnings counts the rows with a warning and no error: each is accepted
// or unchanged. Excluded rows are those the mapping's exclude rules left
// out; a full upload does not list them.
type Counts struct {
	Read      int64 `json:"read"`
	Accepted  int64 `json:"accepted"`
	Unchanged int64 `json:"unchanged"`
	Rejected  int64 `json:"rejected"`
	Excluded  int64 `json:"excluded"`
	Warnings  int64 `json:"warnings"`
	Indexed   int64 `json:"indexed"`
	Deleted   int64 `json:"deleted"`
}

// MaxReportedRejections caps the rejected rows an upload status lists; the
// issue summary counts every issue and the issue list holds them all.
const MaxReportedRejections = 100

// UploadStatus is what GET /v1/uploads/{id} answers.
type UploadStatus struct {
	ID             string    `json:"id"`
	Partner        string    `json:"partner"`
	Mode           string    `json:"mode"`
	Format         string    `json:"format"`
	Compression    string    `json:"compression,omitempty"`
	Charset        string    `json:"charset,omitempty"`
	MappingVersion int       `json:"mapping_version"`
	State          string    `json:"state"`
	Normalised     bool      `json:"normalised"` // every row is mapped; indexing may still run
	Error          string    `json:"error,omitempty"`
	ReceivedAt     time.Time `json:"received_at"`
	Size           int64     `json:"size"`
	Counts         Counts    `json:"counts"`
	Hold           *Hold     `json:"hold,omitempty"`
	Filename       string    `json:"filename,omitempty"`
	Source         string    `json:"source,omitempty"`   // the URL a scheduled fetch took it from
	RetryOf        string    `json:"retry_of,omitempty"` // the upload whose file it processes again
	// Cancellation says when the partner cancelled an unfinished upload,
	// and whether what was normalised before had reached the catalog.
	Cancellation *Cancellation `json:"cancellation,omitempty"`
	// WaitingFor names the stage an unfinished upload waits for when that
	// stage has not started on it: it is behind (Waiting.Pending messages
	// before it) or not running.
	WaitingFor string   `json:"waiting_for,omitempty"`
	Waiting    *Waiting `json:"waiting,omitempty"`
	// IssueSummary counts every issue of the upload by code, field and
	// severity; GET /v1/uploads/{id}/issues lists each one.
	IssueSummary IssueSummary `json:"issue_summary"`
	Rejections   []Issue      `json:"rejections"` // the first rejected rows, at most MaxReportedRejections
}

// Hold is why a full upload waits: the deletions it would make.
type Hold struct {
	WouldDelete      int64     `json:"would_delete"`
	Live             int64     `json:"live"` // the partner's live products when it was held
	Percent          float64   `json:"percent"`
	MaxDeletePercent int       `json:"max_delete_percent"`
	Decision         string    `json:"decision,omitempty"` // confirm or cancel, once decided
	DecidedAt        time.Time `json:"decided_at,omitzero"`
}

// HoldRecord is written by normalise when it holds a full upload; it keeps
// what the closing step needs to run again once the upload is confirmed.
type HoldRecord struct {
	WouldDelete      int64       `json:"would_delete"`
	Live             int64       `json:"live"`
	MaxDeletePercent int         `json:"max_delete_percent"`
	UploadSeq        uint64      `json:"upload_seq"`
	End              IngestTotal `json:"end"`
	At               time.Time   `json:"at"`
}

// Cancellation is an unfinished upload its partner cancelled. Applied says
// whether the changes counted as accepted reached the catalog: a full
// upload staged until it closed applied none of them, others applied what
// was normalised before the cancellation.
type Cancellation struct {
	At      time.Time `json:"at"`
	Applied bool      `json:"applied"`
}

// CancelRecord is a partner's cancellation of an unfinished upload; the
// first stands.
type CancelRecord struct {
	At time.Time `json:"at"`
}

// Waiting is how far a stage an upload waits for is behind.
type Waiting struct {
	Stage string `json:"stage"`
	// Pending counts the messages queued for the stage that no worker has
	// taken yet, the upload's own among them; InProgress those taken and
	// not yet done.
	Pending    int64 `json:"pending"`
	InProgress int64 `json:"in_progress"`
	// Running says whether any worker of the stage is taking messages.
	Running bool `json:"running"`
}

// DecisionRecord is a partner's answer to a held upload; the first stands.
type DecisionRecord struct {
	Decision string    `json:"decision"`
	At       time.Time `json:"at"`
}

// Exceeds reports whether deleting would of live products is more than
// maxPercent of them.
func Exceeds(would, live int64, maxPercent int) bool {
	return maxPercent < 100 && live > 0 && would*100 > int64(maxPercent)*live
}

// IngestRecord is written by ingest when it finished (or failed) decoding a
// file. Seq is the stream sequence of the upload event it decoded, the one
// its raw batches carry: another event for the same upload is a replay.
type IngestRecord struct {
	Rows    int64  `json:"rows"`
	Batches int    `json:"batches"`
	Seq     uint64 `json:"seq,omitempty"`
	Error   string `json:"error,omitempty"`
	// Charset is the text encoding the whole file was read in, which text
	// past the head the API saw may decide.
	Charset string `json:"charset,omitempty"`
}

// NormaliseRecord is what normalise counted in one raw batch; the first
// record of a batch counts, so a redelivered batch never counts twice.
type NormaliseRecord struct {
	Read       int64        `json:"read"`
	Accepted   int64        `json:"accepted"`
	Unchanged  int64        `json:"unchanged"`
	Rejected   int64        `json:"rejected"`
	Excluded   int64        `json:"excluded,omitempty"` // rows the mapping's rules left out
	Warnings   int64        `json:"warnings,omitempty"` // rows kept with a warning
	Rejections []Issue      `json:"rejections,omitempty"`
	Issues     IssueSummary `json:"issues,omitempty"` // every issue of the batch, counted
}

// DeleteRecord is written when a full upload's absent products were deleted.
type DeleteRecord struct {
	Batches int   `json:"batches"`
	Deleted int64 `json:"deleted"`
}

// IndexRecord is what the index applied of one product batch; counted once.
type IndexRecord struct {
	Indexed int64 `json:"indexed"`
	Deleted int64 `json:"deleted"`
	// Rejections are changes the search backend refused for good; each is
	// also a dead-letter entry.
	Rejections []Issue `json:"rejections,omitempty"`
}

// UploadLedger keeps each upload's metadata and per-batch progress. Every
// record is keyed by (upload, stage, batch), so replays are idempotent.
type UploadLedger interface {
	Create(ctx context.Context, u UploadEvent) error
	// Discard removes the record of an upload that was never announced.
	Discard(ctx context.Context, id string) error
	Upload(ctx context.Context, id string) (UploadEvent, error)
	RecordIngest(ctx context.Context, upload string, r IngestRecord) error
	Ingested(ctx context.Context, upload string) (IngestRecord, error) // ErrNotFound before ingest finished
	// RecordNormalise counts a batch once: a redelivered batch changes nothing.
	RecordNormalise(ctx context.Context, upload string, batch int, r NormaliseRecord) error
	// RecordStored marks a recorded batch's products stored in the log, so
	// the upload's close never overtakes a batch still being published.
	RecordStored(ctx context.Context, upload string, batch int) error
	// NormalisedBatches counts the batches recorded and stored.
	NormalisedBatches(ctx context.Context, upload string) (int, error)
	RecordDeletes(ctx context.Context, upload string, r DeleteRecord) (DeleteRecord, error)
	// RecordStaging notes once whether a full upload's changes wait in the
	// staging stream until it closes; the first answer stands.
	RecordStaging(ctx context.Context, upload string, staged bool) (bool, error)
	// RecordHold notes that a full upload is held; the first record stands.
	RecordHold(ctx context.Context, upload string, r HoldRecord) (HoldRecord, error)
	Held(ctx context.Context, upload string) (HoldRecord, error) // ErrNotFound when not held
	// Decide records the first decision on a held upload and returns it.
	Decide(ctx context.Context, upload string, d DecisionRecord) (DecisionRecord, error)
	RecordIndex(ctx context.Context, upload string, batch int, r IndexRecord) error
	// RecordFailure notes that a stage gave up on part of the upload.
	RecordFailure(ctx context.Context, upload string, r FailureRecord) error
	// RecordCancel notes a partner's cancellation; the first stands.
	RecordCancel(ctx context.Context, upload string, r CancelRecord) (CancelRecord, error)
	// Cancelled reports whether the upload was cancelled: its stages apply nothing more of it.
	Cancelled(ctx context.Context, upload string) (bool, error)
	Status(ctx context.Context, id string) (UploadStatus, error)
}

// UploadList pages through a partner's uploads, newest first.
type UploadList interface {
	// ListUploads returns up to limit upload ids from cursor ("" for the
	// newest) and the cursor of the next page ("" at the end).
	ListUploads(ctx context.Context, partner, cursor string, limit int) (ids []string, next string, err error)
}

// ErrBusy is a partner with as many uploads in flight as it may have.
var ErrBusy = errorString("too many uploads in flight")

// UploadSlots bounds the uploads a partner has in flight (received or
// processing: not finished, not held).
type UploadSlots interface {
	// Reserve takes a slot for upload id, or fails with ErrBusy when
	// limit uploads of the partner are in flight.
	Reserve(ctx context.Context, partner, id string, limit int) error
	// Release frees the slot of an upload that was never announced.
	Release(ctx context.Context, partner, id string) error
}

// FailureRecord says a stage dead-lettered part of an upload.
type FailureRecord struct {
	Stage string `json:"stage"`
	Batch int    `json:"batch"`
	Error string `json:"error"`
}

// Partner is a shop that pushes product files.
type Partner struct {
	ID        string    `json:"id"`
	KeyHash   string    `json:"key_hash"`
	CreatedAt time.Time `json:"created_at"`
}

// PartnerSettings are what a partner tunes about how its uploads are applied.
type PartnerSettings struct {
	// MaxDeletePercent overrides the service's share of live products a
	// full upload may delete before it is held; nil keeps the default.
	MaxDeletePercent *int `json:"max_delete_percent"`
}

// Validate checks the settings a partner sent.
func (s PartnerSettings) Validate() error {
	if p := s.MaxDeletePercent; p != nil && (*p < 0 || *p > 100) {
		return fmt.Errorf("max_delete_percent %d: want 0 to 100 (100 never holds an upload)", *p)
	}
	return nil
}

// PartnerStore keeps partners, their hashed API keys and their settings.
type PartnerStore interface {
	CreatePartner(ctx context.Context, p Partner) error // ErrExists when taken
	Partner(ctx context.Context, id string) (Partner, error)
	PutSettings(ctx context.Context, partner string, s PartnerSettings) error
	Settings(ctx context.Context, partner string) (PartnerSettings, error) // zero when never set
}

// MappingStore keeps every version of every partner's mapping.
type MappingStore interface {
	// PutMapping stores m as the partner's next version and returns it with Version set.
	PutMapping(ctx context.Context, partner string, m Mapping) (Mapping, error)
	// Mapping returns one version; version 0 means the current one.
	Mapping(ctx context.Context, partner string, version int) (Mapping, error)
}
