package topology

import (
	"strings"
	"testing"

	"feedline/pipeline"
	"feedline/schemas"
)

// matches reports whether a NATS subject filter ("a.b.>", "a.*.c") takes subject.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// Every event feedline publishes lands in exactly one declared stream: the
// one its readers read.
func TestEveryEventLandsInTheStreamItsReadersRead(t *testing.T) {
	batch := &schemas.ProductBatch{Upload: "u1", Partner: "acme", Batch: 1}
	cases := []struct {
		ev     pipeline.Event
		stream string
	}{
		{schemas.UploadEvent{ID: "u1", Partner: "acme"}, StreamUploads},
		{&schemas.RawBatch{Upload: "u1", Partner: "acme"}, StreamRaw},
		{&schemas.RawBatch{Upload: "u1", Partner: "acme", End: &schemas.IngestTotal{}, Decision: schemas.DecisionCancel}, StreamRaw},
		{batch, StreamProducts},
		{schemas.StagedBatch{ProductBatch: batch}, StreamStaged},
		{schemas.SearchQueryEvent{ID: "s1"}, StreamAnalytics},
		{schemas.FeedReads{{EventID: "r1"}}, StreamAnalytics},
		{schemas.SocialEvent{ID: "e1", Kind: schemas.SocialPost, User: "alice"}, StreamSocial},
		{schemas.SocialEvent{ID: "e2", Kind: schemas.SocialFollow, User: "alice"}, StreamSocial},
	}
	streams := Feedline().Streams
	in := func(subject string) []string {
		var names []string
		for _, st := range streams {
			for _, f := range st.Subjects {
				if matches(f, subject) {
					names = append(names, st.Name)
				}
			}
		}
		return names
	}
	for _, tc := range cases {
		if got := in(tc.ev.Subject()); len(got) != 1 || got[0] != tc.stream {
			t.Errorf("%s lands in %v, want [%s]", tc.ev.Subject(), got, tc.stream)
		}
	}
	if got := in(schemas.Subject(schemas.SubjectDLQ, "normalise")); len(got) != 1 || got[0] != StreamDLQ {
		t.Errorf("dead letters land in %v, want [%s]", got, StreamDLQ)
	}
	// Raw batches published before the upload id was in their subject are
	// still read from RAW.
	if got := in(schemas.Subject(schemas.SubjectRaw, "acme")); len(got) != 1 || got[0] != StreamRaw {
		t.Errorf("raw batches of earlier releases land in %v, want [%s]", got, StreamRaw)
	}
	// An upload's raw batches are purged by their subject: it takes none
	// of the partner's decisions nor another upload's batches.
	upload := "01jf3k6v0c8m2r9q4t7w5x1y2z" // upload ids are lower-case ULIDs
	raw := schemas.RawSubject("acme", upload)
	for _, other := range []string{schemas.RawDecisionSubject("acme"), schemas.RawSubject("acme", "01jf3k6v0c8m2r9q4t7w5x1y30"), schemas.RawSubject("acme-eu", upload)} {
		if matches(raw, other) || matches(other, raw) {
			t.Errorf("purging %s would take %s", raw, other)
		}
	}
	if (&schemas.RawBatch{Upload: upload, Partner: "acme", Batch: 3}).Subject() != raw {
		t.Errorf("raw batch subject is not RawSubject %s", raw)
	}

	// Upload issues have a stream of their own, kept by the store that reads them.
	if got := in(schemas.IssuesSubject("acme", "u1")); len(got) != 0 {
		t.Errorf("issues land in %v, want none of these streams", got)
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"catalog.raw.>", "catalog.raw.acme", true},
		{"catalog.raw.>", "catalog.raw", false},
		{"catalog.raw.>", "catalog.rawx.acme", false},
		{"social.>", "social.post.alice", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
	} {
		if got := matches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("matches(%q, %q) = %v", tc.filter, tc.subject, got)
		}
	}
}

// Upload issues land in the stream Stores declares beside the stages', and
// no name is declared twice.
func TestStoresHoldTheIssuesStreamAndTheSourcesBucket(t *testing.T) {
	st := Stores()
	if len(st.Streams) != 1 || st.Streams[0].Name != StreamIssues || !matches(st.Streams[0].Subjects[0], schemas.IssuesSubject("acme", "u1")) ||
		st.Streams[0].MaxAge != IssueRetention || st.Streams[0].Duplicates != DuplicateWindow {
		t.Errorf("issues stream %+v", st.Streams)
	}
	if len(st.Buckets) != 1 || st.Buckets[0].Name != BucketSources {
		t.Errorf("buckets %+v", st.Buckets)
	}
	seen := map[string]bool{}
	for _, n := range append(Feedline().StreamNames(), st.StreamNames()...) {
		if seen[n] {
			t.Errorf("%s declared twice", n)
		}
		seen[n] = true
	}
}
