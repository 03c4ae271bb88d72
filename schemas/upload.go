package schemas

import (
	"context"
	"time"
)

// Upload states reported to partners.
const (
	StateReceived   = "received"
	StateProcessing = "processing"
	StateDone       = "done"
	StateFailed     = "failed"
)

// Counts add up: Read = Accepted + Unchanged + Rejected.
type Counts struct {
	Read      int64 `json:"read"`
	Accepted  int64 `json:"accepted"`
	Unchanged int64 `json:"unchanged"`
	Rejected  int64 `json:"rejected"`
	Indexed   int64 `json:"indexed"`
	Deleted   int64 `json:"deleted"`
}

// MaxReportedRejections caps the rejections an upload status lists.
const MaxReportedRejections = 100

// UploadStatus is what GET /v1/uploads/{id} answers.
type UploadStatus struct {
	ID             string      `json:"id"`
	Partner        string      `json:"partner"`
	Mode           string      `json:"mode"`
	Format         string      `json:"format"`
	MappingVersion int         `json:"mapping_version"`
	State          string      `json:"state"`
	Normalised     bool        `json:"normalised"` // every row is mapped; indexing may still run
	Error          string      `json:"error,omitempty"`
	ReceivedAt     time.Time   `json:"received_at"`
	Size           int64       `json:"size"`
	Counts         Counts      `json:"counts"`
	Rejections     []Rejection `json:"rejections"`
}

// IngestRecord is written by ingest when it finished (or failed) decoding a
// file. Seq is the stream sequence of the upload event it decoded, the one
// its raw batches carry: another event for the same upload is a replay.
type IngestRecord struct {
	Rows    int64  `json:"rows"`
	Batches int    `json:"batches"`
	Seq     uint64 `json:"seq,omitempty"`
	Error   string `json:"error,omitempty"`
}

// NormaliseRecord is what normalise counted in one raw batch; the first
// record of a batch counts, so a redelivered batch never counts twice.
type NormaliseRecord struct {
	Read       int64       `json:"read"`
	Accepted   int64       `json:"accepted"`
	Unchanged  int64       `json:"unchanged"`
	Rejected   int64       `json:"rejected"`
	Rejections []Rejection `json:"rejections,omitempty"`
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
	Rejections []Rejection `json:"rejections,omitempty"`
}

// UploadLedger keeps each upload's metadata and per-batch progress. Every
// record is keyed by (upload, stage, batch), so replays are idempotent.
type UploadLedger interface {
	Create(ctx context.Context, u UploadEvent) error
	Upload(ctx context.Context, id string) (UploadEvent, error)
	RecordIngest(ctx context.Context, upload string, r IngestRecord) error
	Ingested(ctx context.Context, upload string) (IngestRecord, error) // ErrNotFound before ingest finished
	// RecordNormalise counts a batch once: a redelivered batch changes nothing.
	RecordNormalise(ctx context.Context, upload string, batch int, r NormaliseRecord) error
	NormalisedBatches(ctx context.Context, upload string) (int, error)
	RecordDeletes(ctx context.Context, upload string, r DeleteRecord) (DeleteRecord, error)
	RecordIndex(ctx context.Context, upload string, batch int, r IndexRecord) error
	// RecordFailure notes that a stage gave up on part of the upload.
	RecordFailure(ctx context.Context, upload string, r FailureRecord) error
	Status(ctx context.Context, id string) (UploadStatus, error)
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

// PartnerStore keeps partners and their hashed API keys.
type PartnerStore interface {
	CreatePartner(ctx context.Context, p Partner) error // ErrExists when taken
	Partner(ctx context.Context, id string) (Partner, error)
}

// MappingStore keeps every version of every partner's mapping.
type MappingStore interface {
	// PutMapping stores m as the partner's next version and returns it with Version set.
	PutMapping(ctx context.Context, partner string, m Mapping) (Mapping, error)
	// Mapping returns one version; version 0 means the current one.
	Mapping(ctx context.Context, partner string, version int) (Mapping, error)
}
