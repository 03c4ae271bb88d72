package schemas

import (
	"fmt"
	"time"
)

// Subjects that chain the stages. <partner> is the partner id.
const (
	SubjectUploaded = "catalog.uploaded" // .<partner>: one UploadEvent per file
	SubjectRaw      = "catalog.raw"      // .<partner>.<upload>: RawBatch; .<partner>.decision: a held upload's confirmation or cancellation
	SubjectStaged   = "catalog.staged"   // .<partner>.<upload>: ProductBatch of a full upload not yet applied
	SubjectProduct  = "catalog.product"  // .<partner>: ProductBatch
	SubjectSearch   = "analytics.search" // SearchQueryEvent
	SubjectFeedRead = "analytics.feed"   // FeedReads, a second's worth
	SubjectDLQ      = "dlq"              // .<stage>: DeadLetter
)

// Subject builds "<prefix>.<token>".
func Subject(prefix, token string) string { return prefix + "." + token }

// Upload modes.
const (
	ModeFull  = "full"  // replaces the partner's catalog: absent products are deleted
	ModeDelta = "delta" // upserts and deletes only what it lists
)

// Upload formats. Detect picks one when the partner names none.
const (
	FormatCSV            = "csv"
	FormatTSV            = "tsv"
	FormatNDJSON         = "ndjson"
	FormatParquet        = "parquet"
	FormatGoogleMerchant = "google_merchant"
	// FormatGoogleMerchantXML is a Google Merchant RSS 2.0 or Atom 1.0 feed.
	FormatGoogleMerchantXML = "google_merchant_xml"
	FormatNaverEP           = "naver_ep"
)

// Formats lists every accepted upload format.
var Formats = []string{FormatCSV, FormatTSV, FormatNDJSON, FormatParquet, FormatGoogleMerchant, FormatGoogleMerchantXML, FormatNaverEP}

// Compressions of uploaded files, detected by content.
const (
	CompressionGzip  = "gzip"
	CompressionZip   = "zip"
	CompressionBzip2 = "bzip2"
)

// UploadEvent announces a stored file to the ingest stage.
type UploadEvent struct {
	ID             string    `json:"id"`
	Partner        string    `json:"partner"`
	Mode           string    `json:"mode"`
	Format         string    `json:"format"`
	Delimiter      string    `json:"delimiter,omitempty"`
	Compression    string    `json:"compression,omitempty"` // gzip, zip or bzip2: what the file was unpacked from
	Charset        string    `json:"charset,omitempty"`     // the text encoding found (or declared) in the file's head
	MappingVersion int       `json:"mapping_version"`
	Object         string    `json:"object"` // name in the "uploads" object store
	Size           int64     `json:"size"`
	Filename       string    `json:"filename,omitempty"`
	ReceivedAt     time.Time `json:"received_at"`
	// MaxDeletePercent holds a full upload that would delete more than this
	// share of the partner's live products; 100 never holds.
	MaxDeletePercent int `json:"max_delete_percent"`
	// Source is the URL a scheduled fetch took the file from; empty for
	// a file the partner pushed.
	Source string `json:"source,omitempty"`
	// RetryOf is the upload whose stored file this one processes again.
	RetryOf string `json:"retry_of,omitempty"`
}

// RawRow is one decoded source row; Values align with RawBatch.Columns and may
// be shorter than it (missing trailing values are empty).
type RawRow struct {
	Row    int64    `json:"r"`
	Values []string `json:"v"`
}

// RawBatch carries decoded rows of one upload from ingest to normalise. The
// batch with End set closes the upload and carries no rows.
type RawBatch struct {
	Upload         string    `json:"upload"`
	Partner        string    `json:"partner"`
	Mode           string    `json:"mode"`
	MappingVersion int       `json:"mapping_version"`
	UploadSeq      uint64    `json:"upload_seq"` // orders uploads; the base of product versions
	Batch          int       `json:"batch"`
	ReceivedAt     time.Time `json:"received_at"`
	Columns        []string  `json:"columns,omitempty"`
	Rows           []RawRow  `json:"rows,omitempty"`
	Rejections     []Issue   `json:"rejections,omitempty"` // rows the decoder could not read (errors)
	// RejectedRows are the decoder's best-effort values of rejected rows
	// (those it could split at all), so normalise can still tell which
	// product a rejected row was about; each Row equals its rejection's Row.
	RejectedRows []RawRow `json:"rejected_rows,omitempty"`
	// Superseded are rows of this batch that a later row of the same
	// product replaces: the last row of a product wins, the earlier ones
	// change nothing. Ingest finds them before it publishes anything.
	Superseded []Supersession `json:"superseded,omitempty"`
	End        *IngestTotal   `json:"end,omitempty"`
	// Decision, on a closing batch, confirms or cancels a held upload.
	Decision string `json:"decision,omitempty"`
}

// Supersession says row Row is replaced by the later row By of the same product.
type Supersession struct {
	Row int64 `json:"r"`
	By  int64 `json:"by"`
}

// IngestTotal is what ingest knows once the whole file is decoded.
type IngestTotal struct {
	Rows    int64 `json:"rows"`
	Batches int   `json:"batches"`
}

// ChangeKind says what a ProductChange does to the catalog.
type ChangeKind string

// The two changes: a product written whole, or removed.
const (
	ChangeUpsert ChangeKind = "upsert"
	ChangeDelete ChangeKind = "delete"
)

// PriceChange carries the old and new effective price of a product.
type PriceChange struct {
	Old      int64  `json:"old"`
	New      int64  `json:"new"`
	Currency string `json:"currency"`
}

// ProductChange is one canonical change. Version orders changes of one
// product; sinks drop a change older than what they hold.
type ProductChange struct {
	Kind    ChangeKind   `json:"kind"`
	ID      string       `json:"id"`
	Version uint64       `json:"version"`
	Row     int64        `json:"row,omitempty"`
	Product *Product     `json:"product,omitempty"` // set for upserts
	Price   *PriceChange `json:"price_change,omitempty"`
	New     bool         `json:"new,omitempty"` // first time this product is seen
}

// ProductBatch carries the changes one normalise step produced. Seen lists
// products the batch contained unchanged, so state rebuilt from the log
// knows which products a full upload still holds.
type ProductBatch struct {
	Upload  string          `json:"upload"`
	Partner string          `json:"partner"`
	Batch   int             `json:"batch"`
	Seq     uint64          `json:"upload_seq"`
	At      time.Time       `json:"at"`
	Changes []ProductChange `json:"changes,omitempty"`
	Seen    []string        `json:"seen,omitempty"`
	End     *UploadRun      `json:"end,omitempty"`
	// Compacted, when set, is the product log sequence of the first batch
	// this one replaces: compaction rewrote the changes still current of
	// older batches (At is then when). They were recorded and announced
	// when first made, so history and news skip it.
	Compacted uint64 `json:"compacted,omitempty"`
}

// UploadRun summarises one finished upload; it closes the upload's product stream.
type UploadRun struct {
	Upload         string    `json:"upload"`
	Partner        string    `json:"partner"`
	Mode           string    `json:"mode"`
	Format         string    `json:"format"`
	MappingVersion int       `json:"mapping_version"`
	ReceivedAt     time.Time `json:"received_at"`
	FinishedAt     time.Time `json:"finished_at"`
	Counts         Counts    `json:"counts"`
}

// SearchQueryEvent records one search for analytics.
type SearchQueryEvent struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Query   string    `json:"query"`
	Filters string    `json:"filters"`
	Sort    string    `json:"sort"`
	Results int64     `json:"results"`
	TookMs  float64   `json:"took_ms"`
}

// DeadLetter is what a stage gave up on, with enough context to act on it.
type DeadLetter struct {
	Stage    string            `json:"stage"`
	Subject  string            `json:"subject"`
	Sequence uint64            `json:"sequence"`
	Error    string            `json:"error"`
	Attempts uint64            `json:"attempts"`
	Source   SourcePosition    `json:"source"`
	Headers  map[string]string `json:"headers,omitempty"`
	Payload  []byte            `json:"payload"`
	At       time.Time         `json:"at"`
}

// SourcePosition points back to the partner file a message came from.
type SourcePosition struct {
	Partner string `json:"partner,omitempty"`
	Upload  string `json:"upload,omitempty"`
	Row     int64  `json:"row,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

// ValidateChanges checks what every search backend relies on: an id, a
// known kind, and an upsert's product matching its id.
func ValidateChanges(changes []ProductChange) error {
	for i := range changes {
		c := &changes[i]
		if c.ID == "" {
			return fmt.Errorf("change %d has no product id", i)
		}
		switch c.Kind {
		case ChangeUpsert:
			if c.Product == nil {
				return fmt.Errorf("upsert %s has no product", c.ID)
			}
			if c.Product.ID != "" && c.Product.ID != c.ID {
				return fmt.Errorf("upsert %s carries product %s", c.ID, c.Product.ID)
			}
		case ChangeDelete:
		default:
			return fmt.Errorf("change %s has unknown kind %q", c.ID, c.Kind)
		}
	}
	return nil
}

// SubjectIssues carries every issue of an upload, one IssueBatch per raw
// batch (or part of one): catalog.issues.<partner>.<upload>.
const SubjectIssues = "catalog.issues"

// IssuesSubject is the subject of one upload's issues.
func IssuesSubject(partner, upload string) string {
	return Subject(Subject(SubjectIssues, partner), upload)
}
