// Package topology is feedline's layout on JetStream: the streams that
// chain the stages, the buckets of small state and the store of uploaded
// files, and how long each keeps what it holds. The runtime (package
// pipeline) declares whatever it is given; this is what feedline gives it.
// Stages name the streams they read from here, and the process that starts
// them declares Feedline.
package topology

import (
	"time"

	"feedline/pipeline"
	"feedline/schemas"
)

// Stream names.
const (
	StreamUploads   = "UPLOADS"
	StreamRaw       = "RAW"
	StreamProducts  = "PRODUCTS"
	StreamAnalytics = "ANALYTICS"
	StreamDLQ       = "DLQ"
	StreamSocial    = "SOCIAL"
	StreamStaged    = "STAGED"
)

// StreamIssues holds every issue of every upload, apart from the chain of
// stages: normalise publishes an upload's issue lists, the API reads them
// back (natskv.Issues).
const StreamIssues = "ISSUES"

// IssueRetention is how long an upload's issue list is kept; its counts,
// in the upload record, stay.
const IssueRetention = 30 * 24 * time.Hour

// StagedRetention is how long a held upload's changes wait for its
// partner's confirmation.
const StagedRetention = 30 * 24 * time.Hour

// Buckets of small state kept in JetStream.
const (
	BucketUploads  = "uploads"  // key-value: upload records and per-batch progress
	BucketPartners = "partners" // key-value: partners and hashed keys
	BucketMappings = "mappings" // key-value: every mapping version
	ObjectUploads  = "uploads"  // object store: the uploaded files
	BucketPosts    = "posts"    // key-value: post content, the durable home every instance reads
	BucketRequests = "requests" // key-value: first answers to writes sent with an Idempotency-Key
	BucketReaders  = "readers"  // key-value: each shopper's last feed read, restored before feeds are replayed
	BucketSources  = "sources"  // key-value: partner feeds fetched on a schedule, with the lease of the instance fetching each
)

// IdempotencyWindow is how long a write's Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// DuplicateWindow is how long JetStream remembers message ids: a crashed
// stage republishing within it creates no duplicate.
const DuplicateWindow = 20 * time.Minute

// Feedline is every stream, bucket and object store feedline needs.
// PRODUCTS is kept forever: it is the source of truth every derived store
// is rebuilt from.
//
// The streams that grow with the catalog and its traffic, and the store of
// uploaded files, are compressed: their JSON rows and text files shrink to
// a fraction on disk, for CPU spent once per filled block. UPLOADS and DLQ
// hold one small message per upload or per failure and are left as they are.
func Feedline() pipeline.Topology {
	week := 7 * 24 * time.Hour
	stream := func(name, subject string, maxAge time.Duration) pipeline.StreamSpec {
		return pipeline.StreamSpec{Name: name, Subjects: []string{subject + ".>"}, MaxAge: maxAge, Duplicates: DuplicateWindow}
	}
	compressed := func(s pipeline.StreamSpec) pipeline.StreamSpec {
		s.Compressed = true
		return s
	}
	return pipeline.Topology{
		Streams: []pipeline.StreamSpec{
			stream(StreamUploads, schemas.SubjectUploaded, 30*24*time.Hour),
			compressed(stream(StreamRaw, schemas.SubjectRaw, week)),
			compressed(stream(StreamProducts, schemas.SubjectProduct, 0)),
			compressed(stream(StreamAnalytics, "analytics", 30*24*time.Hour)),
			stream(StreamDLQ, schemas.SubjectDLQ, 30*24*time.Hour),
			// Shopper writes are kept forever: feeds and the follow graph
			// are rebuilt from them.
			compressed(stream(StreamSocial, "social", 0)),
			// A full upload's changes wait here until the upload closes,
			// and a held one's until it is confirmed.
			compressed(stream(StreamStaged, schemas.SubjectStaged, StagedRetention)),
		},
		Buckets: []pipeline.BucketSpec{
			{Name: BucketUploads, Description: "upload records and per-batch progress", MaxValueSize: 1 << 20},
			{Name: BucketPartners, Description: "partners and hashed API keys"},
			{Name: BucketMappings, Description: "every version of every partner mapping"},
			// Posts and feed reads are read in batches: a moment's lag
			// shows an older feed, never a wrong decision.
			{Name: BucketPosts, Description: "post content by post id", ReplicaReads: true},
			{Name: BucketRequests, Description: "first answers to idempotent writes", TTL: IdempotencyWindow},
			{Name: BucketReaders, Description: "last feed read by shopper", ReplicaReads: true},
		},
		ObjectStores: []pipeline.ObjectStoreSpec{
			{Name: ObjectUploads, Description: "uploaded partner files", Compressed: true},
		},
	}
}

// Stores is what the connectors read directly, beside the chain of stages:
// the stream of upload issues and the bucket of fetched partner feeds.
// Declare it with Feedline.
func Stores() pipeline.Topology {
	return pipeline.Topology{
		Streams: []pipeline.StreamSpec{
			// The duplicate window drops a batch's issues published again
			// soon after a crash; readers skip a part they saw, for a
			// redelivery after the window.
			// Compressed: a file of bad rows writes an issue per row.
			{Name: StreamIssues, Subjects: []string{schemas.SubjectIssues + ".>"}, MaxAge: IssueRetention, Duplicates: DuplicateWindow, Compressed: true},
		},
		Buckets: []pipeline.BucketSpec{
			// One record per partner is the state; every write is
			// compare-and-set on its revision.
			{Name: BucketSources, Description: "partner feeds fetched on a schedule", ReplicaReads: true},
		},
	}
}
