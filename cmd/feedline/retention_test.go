package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// stored is what an upload keeps that a finished one stops needing.
type stored struct {
	raw  int  // raw batches on the upload's subject
	file bool // its file in the store
}

func (ts *testSystem) files() natskv.Files {
	ts.t.Helper()
	ctx := context.Background()
	store, err := ts.sys.bus.Objects(ctx, topology.ObjectUploads)
	if err != nil {
		ts.t.Fatal(err)
	}
	stream, err := ts.sys.bus.ObjectsStream(ctx, topology.ObjectUploads)
	if err != nil {
		ts.t.Fatal(err)
	}
	return natskv.Files{Store: store, Stream: stream}
}

func (ts *testSystem) kept(partner, id string) stored {
	ts.t.Helper()
	ctx := context.Background()
	var s stored
	n, err := ts.sys.bus.Replay(ctx, topology.StreamRaw, schemas.RawSubject(partner, id), func(*pipeline.Message) error { return nil })
	if err != nil {
		ts.t.Fatal(err)
	}
	s.raw = n
	u, err := ts.sys.ledger.Upload(ctx, id)
	if err != nil {
		ts.t.Fatal(err)
	}
	f, err := ts.files().Open(ctx, u.Object)
	if err == nil {
		s.file = true
		_ = f.Close()
	}
	return s
}

// sweepAt runs the file sweep as it would run at now, over every stored file.
func (ts *testSystem) sweepAt(now time.Time) sweep {
	ts.t.Helper()
	sw, err := ts.sys.sweepFiles(context.Background(), ts.files(), now, now)
	if err != nil {
		ts.t.Fatal(err)
	}
	return sw
}

// A finished upload keeps its file and raw batches for the retention, then
// loses both while its record, issue list and products stay; a held upload
// keeps them until it is decided, and a failed one cannot be retried once
// its file is gone. Sweeping again, as a second instance would, changes
// nothing.
func TestFinishedUploadsLoseTheirFileAndRawBatchesAfterTheRetention(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	retention := ts.sys.cfg.UploadRetention
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, simpleMapping)
	done := ts.uploadOK("acme", key, simpleFeed(1, 20, map[int]string{4: "abc"}), "mode=full")
	if done.State != schemas.StateDone || done.Counts.Accepted != 19 || done.Counts.Rejected != 1 {
		t.Fatalf("first upload: %s %+v", done.State, done.Counts)
	}
	held := ts.uploadOK("acme", key, simpleFeed(1, 2, nil), "mode=full")
	if held.State != schemas.StateHeld {
		t.Fatalf("a feed of 2 of 19 products: %s, want held", held.State)
	}
	otherKey := ts.addPartner("beta")
	ts.setMapping("beta", otherKey, customMapping)
	corrupt := append([]byte("PAR1"), bytes.Repeat([]byte{0x15, 0x04, 0x15, 0x80}, 2000)...)
	failed := ts.uploadOK("beta", otherKey, append(corrupt, "PAR1"...), "")
	if failed.State != schemas.StateFailed {
		t.Fatalf("corrupt upload: %s, want failed", failed.State)
	}
	for _, u := range []schemas.UploadStatus{done, held} {
		if s := ts.kept("acme", u.ID); s.raw == 0 || !s.file {
			t.Fatalf("upload %s (%s) stored %+v before any sweep", u.ID, u.State, s)
		}
	}

	// Inside the retention everything stays.
	if sw := ts.sweepAt(time.Now().Add(retention / 2)); sw.Expired != 0 || sw.Files != 0 {
		t.Errorf("a sweep inside the retention removed %+v", sw)
	}
	if s := ts.kept("acme", done.ID); s.raw == 0 || !s.file {
		t.Errorf("inside the retention the done upload keeps %+v", s)
	}

	later := time.Now().Add(retention + time.Minute)
	if sw := ts.sweepAt(later); sw.Expired != 2 || sw.Files != 2 {
		t.Errorf("a sweep past the retention removed %+v, want the done and the failed upload's files", sw)
	}
	if s := ts.kept("acme", done.ID); s.raw != 0 || s.file {
		t.Errorf("past the retention the done upload keeps %+v", s)
	}
	if s := ts.kept("beta", failed.ID); s.raw != 0 || s.file {
		t.Errorf("past the retention the failed upload keeps %+v", s)
	}
	if s := ts.kept("acme", held.ID); s.raw == 0 || !s.file {
		t.Errorf("the held upload keeps %+v, want its raw batches and file", s)
	}
	if sw := ts.sweepAt(later); sw != (sweep{}) {
		t.Errorf("a second sweep removed %+v", sw)
	}

	// What stays: the record, the issue list, the products.
	if st := ts.status(done.ID, key); st.State != schemas.StateDone || st.Counts != done.Counts {
		t.Errorf("the done upload's record reads %s %+v, was %+v", st.State, st.Counts, done.Counts)
	}
	if r := ts.do("GET", "/v1/uploads/"+done.ID+"/issues", key, nil, ""); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"Q4"`)) {
		t.Errorf("issue list of the done upload: %d %s", r.Status, r.Body)
	}
	if got := ts.catalogIDs("acme"); len(got) != 19 || got["acme:Q7"] != "1007" {
		t.Errorf("search finds %d products (Q7 at %s), want the first upload's 19", len(got), got["acme:Q7"])
	}
	r := ts.do("POST", "/v1/uploads/"+failed.ID+"/retry", otherKey, nil, "")
	if r.Status != http.StatusGone {
		t.Errorf("retry of a failed upload whose file is gone: %d %s, want 410", r.Status, r.Body)
	}

	// Decided, the held upload's retention starts.
	cancelled := ts.do("POST", "/v1/uploads/"+held.ID+"/cancel", key, nil, "")
	if cancelled.Status != http.StatusOK && cancelled.Status != http.StatusAccepted {
		t.Fatalf("cancel the held upload: %d %s", cancelled.Status, cancelled.Body)
	}
	if st := ts.waitUpload(held.ID, key); st.State != schemas.StateCancelled {
		t.Fatalf("the held upload is %s after its cancellation", st.State)
	}
	if sw := ts.sweepAt(time.Now().Add(retention / 2)); sw.Expired != 0 {
		t.Errorf("a sweep inside the cancelled upload's retention removed %+v", sw)
	}
	if sw := ts.sweepAt(time.Now().Add(retention + time.Minute)); sw.Expired != 1 || sw.Files != 1 {
		t.Errorf("a sweep past the cancelled upload's retention removed %+v", sw)
	}
	if s := ts.kept("acme", held.ID); s.raw != 0 || s.file {
		t.Errorf("past its retention the cancelled upload keeps %+v", s)
	}
	if got := ts.catalogIDs("acme"); len(got) != 19 {
		t.Errorf("search finds %d products after the sweeps, want 19", len(got))
	}
}

// An upload still being processed keeps its file and raw batches however
// old it is: here the index stage does not run, so it never finishes.
func TestUnfinishedUploadsKeepTheirFileAndRawBatches(t *testing.T) {
	t.Parallel()
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { c.Stages = []string{"api", "ingest", "normalise"} })
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, simpleMapping)
	r := ts.upload("acme", key, simpleFeed(1, 20, nil), "mode=full")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)
	deadline := time.Now().Add(60 * time.Second)
	for st := ts.status(acc.UploadID, key); !st.Normalised; st = ts.status(acc.UploadID, key) {
		if time.Now().After(deadline) {
			t.Fatalf("upload not normalised: %s %+v", st.State, st.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := ts.status(acc.UploadID, key); st.State != schemas.StateProcessing {
		t.Fatalf("upload %s without an index stage, want processing", st.State)
	}
	if sw := ts.sweepAt(time.Now().Add(30 * 24 * time.Hour)); sw.Expired != 0 || sw.Files != 0 {
		t.Errorf("a sweep a month on removed %+v", sw)
	}
	if s := ts.kept("acme", acc.UploadID); s.raw == 0 || !s.file {
		t.Errorf("the unfinished upload keeps %+v, want its raw batches and file", s)
	}
}
