package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"feedline/schemas"
)

const lifecycleCSV = "id,title,price,currency\nSKU-1,Trail shoe,89.99,EUR\n"

// lifecycleEnv is an app with the ledger as upload list and in-flight
// slots, at most maxInFlight uploads of a partner in flight.
func lifecycleEnv(t *testing.T, maxInFlight int) (*env, *conformance, string) {
	t.Helper()
	e := newEnv(t, func(c *Config) {
		c.Uploads, c.MaxInFlight = nil, maxInFlight
	})
	e.cfg.Uploads, e.cfg.Slots = e.ledger, e.ledger
	e.app = New(e.cfg)
	key := e.createPartner(t, "acme")
	e.putMapping(t, "acme", key, map[string]any{"fields": map[string]string{"id": "id", "title": "title", "price": "price", "currency": "currency"}})
	return e, newConformance(t), key
}

func (e *env) call(t *testing.T, v *conformance, req *http.Request, want int) response {
	t.Helper()
	r := e.send(t, req)
	v.check(t, req, r)
	if r.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL, r.StatusCode, r.body, want)
	}
	return r
}

func (e *env) push(t *testing.T, v *conformance, key string, want int) string {
	t.Helper()
	req := request(http.MethodPost, "/v1/partners/acme/uploads?mode=delta&filename=feed.csv", key, strings.NewReader(lifecycleCSV))
	req.Header.Set("Content-Type", "text/csv")
	r := e.call(t, v, req, want)
	var acc uploadAccepted
	if want == http.StatusAccepted {
		r.decode(t, &acc)
	}
	return acc.UploadID
}

// fail records an upload as ingest leaves one it could not read.
func (e *env) fail(t *testing.T, id string) {
	t.Helper()
	if err := e.ledger.RecordIngest(context.Background(), id, schemas.IngestRecord{Error: "the file cannot be read: columns"}); err != nil {
		t.Fatal(err)
	}
}

func TestListUploads(t *testing.T) {
	t.Parallel()
	e, v, key := lifecycleEnv(t, 0)
	other := e.createPartner(t, "other")
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, e.push(t, v, key, 202))
	}
	e.fail(t, ids[2])
	var all []uploadListItem
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/partners/acme/uploads?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page uploadList
		e.call(t, v, request(http.MethodGet, path, key, nil), 200).decode(t, &page)
		all = append(all, page.Uploads...)
		if page.NextCursor == "" {
			if pages != 2 {
				t.Errorf("%d pages of 3 for 7 uploads", pages+1)
			}
			break
		}
		cursor = page.NextCursor
	}
	if len(all) != 7 {
		t.Fatalf("listed %d uploads, want 7", len(all))
	}
	for i, it := range all {
		if want := ids[6-i]; it.ID != want {
			t.Errorf("item %d is %s, want %s (newest first)", i, it.ID, want)
		}
		if it.Filename != "feed.csv" || it.Partner != "acme" {
			t.Errorf("item %+v", it)
		}
	}
	if all[4].State != schemas.StateFailed || all[0].State != schemas.StateReceived {
		t.Errorf("states %s %s", all[4].State, all[0].State)
	}
	var page uploadList
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads", testAdminKey, nil), 200).decode(t, &page)
	if len(page.Uploads) != 7 || page.NextCursor != "" {
		t.Errorf("default page: %d, %q", len(page.Uploads), page.NextCursor)
	}
	e.call(t, v, request(http.MethodGet, "/v1/partners/other/uploads", other, nil), 200).decode(t, &page)
	if len(page.Uploads) != 0 {
		t.Errorf("another partner sees %d uploads", len(page.Uploads))
	}
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads", other, nil), 403)
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads?cursor=zz", key, nil), 400)
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads?limit=101", key, nil), 400)
	e.call(t, v, request(http.MethodGet, "/v1/partners/ghost/uploads", testAdminKey, nil), 404)
}

func TestUploadsInFlightAreLimited(t *testing.T) {
	t.Parallel()
	e, v, key := lifecycleEnv(t, 2)
	first := e.push(t, v, key, 202)
	e.push(t, v, key, 202)
	req := request(http.MethodPost, "/v1/partners/acme/uploads", key, strings.NewReader(lifecycleCSV))
	req.Header.Set("Content-Type", "text/csv")
	r := e.call(t, v, req, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") != "30" || !strings.Contains(r.problem(t).Detail, "2 uploads received or processing") {
		t.Errorf("429: Retry-After %q, %s", r.Header.Get("Retry-After"), r.body)
	}
	// A refused upload was not stored and is not listed.
	var page uploadList
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads", key, nil), 200).decode(t, &page)
	if len(page.Uploads) != 2 {
		t.Errorf("%d uploads listed after a refusal", len(page.Uploads))
	}
	// One finishes: the next is accepted; so is an upload refused for
	// what it is, without taking a slot.
	e.fail(t, first)
	req = request(http.MethodPost, "/v1/partners/acme/uploads", key, strings.NewReader(""))
	req.Header.Set("Content-Type", "text/csv")
	e.call(t, v, req, 422)
	e.push(t, v, key, 202)
	e.push(t, v, key, 429)
}

func TestCancelUnfinishedUpload(t *testing.T) {
	t.Parallel()
	e, v, key := lifecycleEnv(t, 1)
	other := e.createPartner(t, "other")
	ctx := context.Background()
	id := e.push(t, v, key, 202)
	e.push(t, v, key, 429)
	if err := e.ledger.RecordNormalise(ctx, id, 0, schemas.NormaliseRecord{Read: 1, Accepted: 1}); err != nil {
		t.Fatal(err)
	}
	e.call(t, v, request(http.MethodDelete, "/v1/uploads/"+id, other, nil), 404)
	var st schemas.UploadStatus
	e.call(t, v, request(http.MethodDelete, "/v1/uploads/"+id, key, nil), 200).decode(t, &st)
	if st.State != schemas.StateCancelled || st.Cancellation == nil || !st.Cancellation.Applied || st.Counts.Accepted != 1 {
		t.Errorf("cancelled: %s %+v %+v", st.State, st.Cancellation, st.Counts)
	}
	if c, err := e.ledger.Cancelled(ctx, id); err != nil || !c {
		t.Errorf("the ledger does not hold the cancellation: %v %v", c, err)
	}
	at := st.Cancellation.At
	e.call(t, v, request(http.MethodDelete, "/v1/uploads/"+id, key, nil), 200).decode(t, &st)
	if !st.Cancellation.At.Equal(at) {
		t.Errorf("a repeated cancellation moved its time")
	}
	// Its slot is free again.
	failed := e.push(t, v, key, 202)
	e.fail(t, failed)
	if p := e.call(t, v, request(http.MethodDelete, "/v1/uploads/"+failed, key, nil), 409).problem(t); !strings.Contains(p.Detail, "failed") {
		t.Errorf("cancel a failed upload: %s", p.Detail)
	}
	e.call(t, v, request(http.MethodDelete, "/v1/uploads/nope", key, nil), 404)

	// A held upload is cancelled as POST …/cancel does.
	heldUpload(t, e, "held1")
	e.call(t, v, request(http.MethodDelete, "/v1/uploads/held1", key, nil), 200).decode(t, &st)
	if st.State != schemas.StateCancelled || st.Hold == nil || st.Hold.Decision != schemas.DecisionCancel {
		t.Errorf("held upload after DELETE: %s %+v", st.State, st.Hold)
	}
}

func TestRetryFailedUpload(t *testing.T) {
	t.Parallel()
	e, v, key := lifecycleEnv(t, 0)
	ctx := context.Background()
	id := e.push(t, v, key, 202)
	e.call(t, v, request(http.MethodPost, "/v1/uploads/"+id+"/retry", key, nil), 409)
	e.fail(t, id)
	// The partner fixes its mapping and processes the stored file again.
	e.putMapping(t, "acme", key, map[string]any{"fields": map[string]string{"id": "id", "title": "title", "price": "price"}, "defaults": map[string]string{"currency": "EUR"}})
	r := e.call(t, v, request(http.MethodPost, "/v1/uploads/"+id+"/retry", key, nil), 202)
	var acc uploadAccepted
	r.decode(t, &acc)
	if acc.UploadID == id || r.Header.Get("Location") != "/v1/uploads/"+acc.UploadID {
		t.Fatalf("retry answered %s, Location %q", r.body, r.Header.Get("Location"))
	}
	ev, err := e.ledger.Upload(ctx, acc.UploadID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Object != id || ev.RetryOf != id || ev.MappingVersion != 2 || ev.Mode != schemas.ModeDelta || ev.Filename != "feed.csv" || ev.Size != int64(len(lifecycleCSV)) {
		t.Errorf("retry recorded as %+v", ev)
	}
	var st schemas.UploadStatus
	e.call(t, v, request(http.MethodGet, "/v1/uploads/"+acc.UploadID, key, nil), 200).decode(t, &st)
	if st.RetryOf != id || st.State != schemas.StateReceived {
		t.Errorf("retry status %+v", st)
	}
	// A file no longer stored cannot be processed again.
	if err := e.files.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if p := e.call(t, v, request(http.MethodPost, "/v1/uploads/"+id+"/retry", key, nil), 410).problem(t); !strings.Contains(p.Detail, "upload the file again") {
		t.Errorf("gone: %s", p.Detail)
	}
	other := e.createPartner(t, "other")
	e.call(t, v, request(http.MethodPost, "/v1/uploads/"+id+"/retry", other, nil), 404)
}
