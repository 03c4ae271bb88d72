package main

import (
	"net/http"
	"testing"
	"time"

	"feedline/schemas"
)

// An upload whose next stage never ran says so in its status, with the
// backlog, instead of showing processing with no counts; once the stage
// runs, the upload finishes and the note is gone.
func TestUploadSaysWhichStageItWaitsFor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startTestSystemWith(t, dir, func(c *serveConfig) { c.Stages = []string{"api", "ingest"} })
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	r := ts.upload("acme", key, delimited(testCatalog, ","), "mode=full")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)

	deadline := time.Now().Add(30 * time.Second)
	var st schemas.UploadStatus
	for {
		st = ts.status(acc.UploadID, key)
		if st.WaitingFor == "normalise" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never said it waits for normalise: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Waiting == nil || st.Waiting.Running || st.Waiting.Stage != "normalise" {
		t.Errorf("waiting = %+v, want normalise, not running", st.Waiting)
	}
	if schemas.Finished(st.State) {
		t.Errorf("state %s: the upload cannot have finished without normalise", st.State)
	}
	ts.stop()

	ts = startTestSystem(t, dir)
	done := ts.waitUpload(acc.UploadID, key)
	if done.State != schemas.StateDone || done.Counts.Accepted != 5 || done.WaitingFor != "" || done.Waiting != nil {
		t.Errorf("after normalise ran: state %s counts %+v waiting_for %q %+v", done.State, done.Counts, done.WaitingFor, done.Waiting)
	}
}
