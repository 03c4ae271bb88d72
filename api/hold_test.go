package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

func TestPartnerSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxDeletePercent = 25 })
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	other := e.createPartner(t, "other")
	for _, tc := range []struct {
		method, body, key string
		want              int
		has               string
	}{
		{http.MethodGet, "", key, 200, `"max_delete_percent":null,"effective_max_delete_percent":25`},
		{http.MethodPut, `{"max_delete_percent": 5}`, key, 200, `"max_delete_percent":5,"effective_max_delete_percent":5`},
		{http.MethodGet, "", testAdminKey, 200, `"max_delete_percent":5,"effective_max_delete_percent":5`},
		{http.MethodPut, `{"max_delete_percent": -1}`, key, 422, "0 to 100"},
		{http.MethodPut, `{"max_delete_percent": "lots"}`, key, 400, "max_delete_percent"},
		{http.MethodPut, `{"max_delete": 5}`, key, 400, "max_delete"},
		{http.MethodGet, "", other, 403, ""},
		{http.MethodPut, `{"max_delete_percent": null}`, key, 200, `"max_delete_percent":null,"effective_max_delete_percent":25`},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req := request(tc.method, "/v1/partners/acme/settings", tc.key, nil)
		if body != nil {
			req = request(tc.method, "/v1/partners/acme/settings", tc.key, body)
		}
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != tc.want || !strings.Contains(string(r.body), tc.has) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.body, r.StatusCode, r.body, tc.want, tc.has)
		}
	}
}

// heldUpload records an upload the way normalise leaves one it held.
func heldUpload(t *testing.T, e *env, id string) {
	t.Helper()
	ctx := context.Background()
	l := e.ledger
	if err := l.Create(ctx, schemas.UploadEvent{ID: id, Partner: "acme", Mode: schemas.ModeFull, Format: "csv", MappingVersion: 1, MaxDeletePercent: 30}); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordIngest(ctx, id, schemas.IngestRecord{Rows: 10, Batches: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordNormalise(ctx, id, 0, schemas.NormaliseRecord{Read: 10, Accepted: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordHold(ctx, id, schemas.HoldRecord{WouldDelete: 90, Live: 100, MaxDeletePercent: 30, UploadSeq: 7, End: schemas.IngestTotal{Rows: 10, Batches: 1}}); err != nil {
		t.Fatal(err)
	}
}

func TestHeldUploadDecisions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	other := e.createPartner(t, "other")
	heldUpload(t, e, "held1")
	heldUpload(t, e, "held2")
	if err := e.ledger.Create(context.Background(), schemas.UploadEvent{ID: "plain", Partner: "acme", Mode: schemas.ModeDelta}); err != nil {
		t.Fatal(err)
	}
	send := func(path, key string, want int) response {
		t.Helper()
		req := request(http.MethodPost, path, key, nil)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != want {
			t.Errorf("POST %s: %d %s, want %d", path, r.StatusCode, r.body, want)
		}
		return r
	}
	req := request(http.MethodGet, "/v1/uploads/held1", key, nil)
	r := e.send(t, req)
	v.check(t, req, r)
	if !strings.Contains(string(r.body), `"state":"held"`) || !strings.Contains(string(r.body), `"would_delete":90`) {
		t.Errorf("held upload status: %s", r.body)
	}
	send("/v1/uploads/held1/confirm", other, 404)
	send("/v1/uploads/nope/confirm", key, 404)
	send("/v1/uploads/plain/confirm", key, 409)
	send("/v1/uploads/held1/confirm", key, 202)
	send("/v1/uploads/held1/confirm", key, 202) // the same decision again
	if p := send("/v1/uploads/held1/cancel", key, 409).problem(t); !strings.Contains(p.Detail, "confirmed") {
		t.Errorf("cancel after confirm: %s", p.Detail)
	}
	send("/v1/uploads/held2/cancel", testAdminKey, 202)
	st, err := e.ledger.Status(context.Background(), "held2")
	if err != nil || st.State != schemas.StateCancelled {
		t.Errorf("after cancel: %s %v", st.State, err)
	}

	// Each decision went to normalise once, as a closing batch of the upload.
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.bus.Replay(ctx, topology.StreamRaw, "catalog.raw.acme.decision", func(m *pipeline.Message) error {
		var rb schemas.RawBatch
		if err := schemas.UnmarshalRawBatch(m.Data, &rb); err != nil {
			return err
		}
		if rb.End == nil || rb.UploadSeq != 7 || rb.End.Batches != 1 || rb.Mode != schemas.ModeFull {
			t.Errorf("decision batch: %+v", rb)
		}
		got[rb.Upload] += rb.Decision
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got["held1"] != schemas.DecisionConfirm || got["held2"] != schemas.DecisionCancel || len(got) != 2 {
		t.Errorf("decisions published: %v", got)
	}
}
