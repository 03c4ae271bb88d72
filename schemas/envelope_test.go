package schemas

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// event is what the runtime asks of everything it publishes.
type event interface {
	Subject() string
	MsgID() string
	Metadata() map[string]string
	Encode() ([]byte, error)
}

// The subjects and ids are stored in the log and compared by JetStream's
// duplicate window across worker versions: they must not drift.
func TestEventsKnowTheirEnvelope(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	batch := &ProductBatch{Upload: "u1", Partner: "acme", Batch: 3, Seq: 7, At: at}
	cases := []struct {
		name    string
		ev      event
		subject string
		id      string
		md      map[string]string
	}{
		{"upload", UploadEvent{ID: "u1", Partner: "acme", Mode: ModeFull}, "catalog.uploaded.acme", "u1",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1"}},
		{"raw batch", &RawBatch{Upload: "u1", Partner: "acme", Batch: 2, Rows: []RawRow{{Row: 2001}, {Row: 2002}}}, "catalog.raw.acme.u1", "raw:u1:2",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "2", HeaderRow: "2001"}},
		{"raw batch of rejections only", &RawBatch{Upload: "u1", Partner: "acme", Batch: 0, Rejections: []Issue{{Row: 1}}}, "catalog.raw.acme.u1", "raw:u1:0",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "0"}},
		{"raw end", &RawBatch{Upload: "u1", Partner: "acme", Batch: 4, End: &IngestTotal{Rows: 10, Batches: 4}}, "catalog.raw.acme.u1", "raw:u1:end",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1"}},
		{"decision", &RawBatch{Upload: "u1", Partner: "acme", Batch: 4, End: &IngestTotal{Batches: 4}, Decision: DecisionConfirm}, "catalog.raw.acme.decision", "raw:u1:" + DecisionConfirm,
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1"}},
		{"product batch", batch, "catalog.product.acme", "product:u1:3",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "3"}},
		{"run summary", &ProductBatch{Upload: "u1", Partner: "acme", Batch: -1, End: &UploadRun{Upload: "u1"}}, "catalog.product.acme", "product:u1:end",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "-1"}},
		{"staged batch", StagedBatch{batch}, "catalog.staged.acme.u1", "staged:u1:3",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "3"}},
		{"issues", &IssueBatch{Upload: "u1", Partner: "acme", Batch: 5, Part: 1}, "catalog.issues.acme.u1", "issues:u1:5:1",
			map[string]string{HeaderPartner: "acme", HeaderUpload: "u1", HeaderBatch: "5"}},
		{"search", SearchQueryEvent{ID: "s1", Query: "shoe"}, "analytics.search", "s1", nil},
		{"post", SocialEvent{ID: "e1", Kind: SocialPost, User: "alice"}, "social.post.alice", "e1", nil},
		{"post deleted", SocialEvent{ID: "e2", Kind: SocialPostDelete, User: "alice"}, "social.post.alice", "e2", nil},
		{"follow", SocialEvent{ID: "e3", Kind: SocialFollow, User: "alice", Target: "shop:acme"}, "social.follow.alice", "e3", nil},
		{"unfollow", SocialEvent{ID: "e4", Kind: SocialUnfollow, User: "alice", Target: "user:bob"}, "social.follow.alice", "e4", nil},
		{"feed reads", FeedReads{{EventID: "r1"}, {EventID: "r2"}}, "analytics.feed", "reads:r1", nil},
	}
	for _, tc := range cases {
		if got := tc.ev.Subject(); got != tc.subject {
			t.Errorf("%s: subject %q, want %q", tc.name, got, tc.subject)
		}
		if got := tc.ev.MsgID(); got != tc.id {
			t.Errorf("%s: id %q, want %q", tc.name, got, tc.id)
		}
		if got := tc.ev.Metadata(); !reflect.DeepEqual(got, tc.md) {
			t.Errorf("%s: metadata %v, want %v", tc.name, got, tc.md)
		}
		if _, err := tc.ev.Encode(); err != nil {
			t.Errorf("%s: encode: %v", tc.name, err)
		}
	}
}

// Each event encodes as the readers decode it.
func TestEventsEncodeAsTheirReadersDecode(t *testing.T) {
	raw := &RawBatch{Upload: "u1", Partner: "acme", Batch: 1, Columns: []string{"id"}, Rows: []RawRow{{Row: 2, Values: []string{"SKU-1"}}}}
	data, err := raw.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var gotRaw RawBatch
	if err := UnmarshalRawBatch(data, &gotRaw); err != nil || !reflect.DeepEqual(gotRaw.Rows, raw.Rows) || gotRaw.Upload != "u1" {
		t.Errorf("raw batch decoded as %+v (%v)", gotRaw, err)
	}
	staged := StagedBatch{&ProductBatch{Upload: "u1", Partner: "acme", Batch: 1, Seen: []string{"acme:SKU-1"}}}
	data, err = staged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var gotProducts ProductBatch
	if err := UnmarshalProductBatch(data, &gotProducts); err != nil || !reflect.DeepEqual(gotProducts.Seen, staged.Seen) {
		t.Errorf("staged batch decoded as %+v (%v)", gotProducts, err)
	}
	reads := FeedReads{{EventID: "r1", Kind: FeedEventFeedRead, UserID: "alice", Items: 3}}
	data, err = reads.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var rows []FeedEventRow
	if err := json.Unmarshal(data, &rows); err != nil || len(rows) != 1 || rows[0] != reads[0] {
		t.Errorf("feed reads decoded as %+v (%v) from %s", rows, err, data)
	}
}
