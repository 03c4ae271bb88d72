package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// publishIssues stores the issues of one batch as normalise does.
func publishIssues(t *testing.T, bus *pipeline.Bus, b schemas.IssueBatch) {
	t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.Publisher()
	if _, err := pub.Publish(context.Background(), pipeline.Outgoing{Subject: schemas.IssuesSubject(b.Partner, b.Upload),
		MsgID: schemas.MsgID("issues", b.Upload, b.Batch, b.Part), Data: data}); err != nil {
		t.Fatal(err)
	}
}

// The whole list of 50,000 issues comes back, each once, though parts were
// delivered twice (inside and past the duplicate window), and another
// upload's issues are not mixed in. (That the API's answer streams is
// TestUploadIssuesStream's.)
func TestIssuesListsEveryIssueOnceAndStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBus(t)
	if err := b.Declare(ctx, topology.Stores()); err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, topology.StreamIssues)
	if err != nil {
		t.Fatal(err)
	}
	log := Issues{Stream: st}
	if ok, err := log.Stored(ctx, "acme", "u1"); err != nil || ok {
		t.Fatalf("stored before anything was published: %v %v", ok, err)
	}
	const batches, perBatch = 50, 1000
	reason := fmt.Sprintf("price %q is not a number", "abc-definitely-not-a-price-at-all")
	for n := range batches {
		ib := schemas.IssueBatch{Upload: "u1", Partner: "acme", Batch: n}
		for i := range perBatch {
			ib.Issues = append(ib.Issues, schemas.Issue{Row: int64(n*perBatch + i + 1), SourceID: fmt.Sprint("sku-", n*perBatch+i), Field: "price",
				Code: schemas.CodePriceUnparseable, Severity: schemas.SeverityError, Reason: reason})
		}
		publishIssues(t, b, ib)
		if n%10 == 0 {
			publishIssues(t, b, ib) // within the duplicate window: dropped by JetStream
		}
	}
	// A redelivery after the duplicate window: stored again, skipped by the reader.
	again := schemas.IssueBatch{Upload: "u1", Partner: "acme", Batch: 7, Issues: []schemas.Issue{{Row: 7001, Code: schemas.CodePriceUnparseable}}}
	data, _ := json.Marshal(again)
	if _, err := b.JetStream().Publish(ctx, schemas.IssuesSubject("acme", "u1"), data); err != nil {
		t.Fatal(err)
	}
	publishIssues(t, b, schemas.IssueBatch{Upload: "u2", Partner: "acme", Issues: []schemas.Issue{{Row: 1, Code: schemas.CodeMissingTitle}}})

	if ok, err := log.Stored(ctx, "acme", "u1"); err != nil || !ok {
		t.Fatalf("stored = %v, %v", ok, err)
	}
	rows := map[int64]bool{}
	n := 0
	err = log.Each(ctx, "acme", "u1", func(i schemas.Issue) error {
		if rows[i.Row] {
			t.Fatalf("row %d listed twice", i.Row)
		}
		rows[i.Row] = true
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != batches*perBatch || !rows[1] || !rows[batches*perBatch] {
		t.Fatalf("listed %d issues, want %d", n, batches*perBatch)
	}

	// The reader stops at fn's error.
	stop := errors.New("enough")
	n = 0
	if err := log.Each(ctx, "acme", "u1", func(schemas.Issue) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("stopping: %v after %d", err, n)
	}
	// An upload without issues lists none.
	if err := log.Each(ctx, "acme", "u3", func(schemas.Issue) error { return errors.New("called") }); err != nil {
		t.Errorf("no issues: %v", err)
	}
	// The stream as topology declares it: the retention the API names, a
	// duplicate window over a crashed worker's republish, 8 MiB messages.
	cfg := st.CachedInfo().Config
	if cfg.MaxAge != topology.IssueRetention || cfg.Replicas != 1 || cfg.Subjects[0] != "catalog.issues.>" ||
		cfg.Duplicates != 20*time.Minute || cfg.MaxMsgSize != 8<<20 {
		t.Errorf("stream config %+v", cfg)
	}
}
