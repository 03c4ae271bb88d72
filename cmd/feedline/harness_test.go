package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"feedline/schemas"
)

const testAdminKey = "test-admin-key"

// testSystem is a whole feedline process started in the test binary.
type testSystem struct {
	t    *testing.T
	sys  *system
	base string
	dir  string
	// searchRetry, when set, is how long search rides out 503s (a backend
	// that failed a moment: "retry in a few seconds"); zero fails at once.
	searchRetry time.Duration
}

// testTokenKey signs the shoppers' tokens of test systems.
const testTokenKey = "test-token-key-0123456789"

func startTestSystem(t *testing.T, dir string) *testSystem {
	return startTestSystemWith(t, dir, nil)
}

// startTestSystemWith starts a system whose configuration tune may change.
func startTestSystemWith(t *testing.T, dir string, tune func(*serveConfig)) *testSystem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := serveConfig{
		DataDir:  dir,
		HTTP:     "127.0.0.1:0",
		AdminKey: testAdminKey,
		TokenKey: testTokenKey,
		Stages:   allStages,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tune != nil {
		tune(&cfg)
	}
	sys, err := startSystem(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testSystem{t: t, sys: sys, base: "http://" + sys.addr, dir: dir}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testSystem) stop() {
	if ts.sys == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.sys.Stop(ctx); err != nil {
		ts.t.Errorf("stop: %v", err)
	}
	ts.sys = nil
}

// natsListen is the client address of the test system's embedded NATS.
func (ts *testSystem) natsListen() string {
	return strings.TrimPrefix(ts.sys.bus.ClientURL(), "nats://")
}

// natsURL is the test system's embedded NATS with its credentials, as
// `feedline nats credentials --format url` prints it for other processes.
func (ts *testSystem) natsURL() string {
	ts.t.Helper()
	var out, errOut bytes.Buffer
	args := []string{"nats", "credentials", "--data", ts.dir, "--nats-listen", ts.natsListen(), "--format", "url"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		ts.t.Fatalf("feedline nats credentials exited %d: %s", code, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// response is one HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer is not JSON (%d): %v: %s", r.Status, err, r.Body)
	}
}

// problem decodes a problem+json answer and checks its media type.
func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("error answer has Content-Type %q, want application/problem+json: %s", ct, r.Body)
	}
	var p problem
	r.json(t, &p)
	if p.Status != r.Status || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem lacks status/title/detail: %s", r.Body)
	}
	return p
}

func (ts *testSystem) do(method, path, key string, body io.Reader, contentType string) response {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.base+path, body)
	if err != nil {
		ts.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// addPartner creates a partner and returns its key.
func (ts *testSystem) addPartner(id string) string {
	ts.t.Helper()
	r := ts.do("POST", "/v1/partners", testAdminKey, strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)), "application/json")
	if r.Status != http.StatusCreated {
		ts.t.Fatalf("create partner %s: %d %s", id, r.Status, r.Body)
	}
	var out struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	r.json(ts.t, &out)
	if out.ID != id || out.APIKey == "" {
		ts.t.Fatalf("create partner answered %s", r.Body)
	}
	return out.APIKey
}

func (ts *testSystem) setMapping(partner, key, doc string) {
	ts.t.Helper()
	r := ts.do("PUT", "/v1/partners/"+partner+"/mapping", key, strings.NewReader(doc), "application/json")
	if r.Status != http.StatusOK {
		ts.t.Fatalf("set mapping of %s: %d %s", partner, r.Status, r.Body)
	}
}

// upload pushes a file and returns the raw answer.
func (ts *testSystem) upload(partner, key string, file []byte, query string) response {
	ts.t.Helper()
	path := "/v1/partners/" + partner + "/uploads"
	if query != "" {
		path += "?" + query
	}
	return ts.do("POST", path, key, bytes.NewReader(file), "application/octet-stream")
}

// uploadOK pushes a file and waits until it is done.
func (ts *testSystem) uploadOK(partner, key string, file []byte, query string) schemas.UploadStatus {
	ts.t.Helper()
	r := ts.upload(partner, key, file, query)
	if r.Status != http.StatusAccepted {
		ts.t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(ts.t, &acc)
	return ts.waitUpload(acc.UploadID, key)
}

func (ts *testSystem) status(id, key string) schemas.UploadStatus {
	ts.t.Helper()
	r := ts.do("GET", "/v1/uploads/"+id, key, nil, "")
	// A 503 asks the client to come back, as a NATS cluster under load may
	// for a moment; a client that polls does.
	for deadline := time.Now().Add(15 * time.Second); r.Status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		r = ts.do("GET", "/v1/uploads/"+id, key, nil, "")
	}
	if r.Status != http.StatusOK {
		ts.t.Fatalf("status of %s: %d %s", id, r.Status, r.Body)
	}
	var s schemas.UploadStatus
	r.json(ts.t, &s)
	return s
}

func (ts *testSystem) waitUpload(id, key string) schemas.UploadStatus {
	ts.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		s := ts.status(id, key)
		switch s.State {
		case schemas.StateDone, schemas.StateFailed, schemas.StateHeld, schemas.StateCancelled:
			return s
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("upload %s still %s after 120s: %+v", id, s.State, s.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// decide confirms or cancels a held upload and waits for what follows.
func (ts *testSystem) decide(id, key, decision string) schemas.UploadStatus {
	ts.t.Helper()
	r := ts.do("POST", "/v1/uploads/"+id+"/"+decision, key, nil, "")
	if r.Status != http.StatusAccepted {
		ts.t.Fatalf("%s upload %s: %d %s", decision, id, r.Status, r.Body)
	}
	return ts.waitUpload(id, key)
}

// search runs GET /v1/search with the given query parameters.
func (ts *testSystem) search(q url.Values) schemas.SearchResult {
	ts.t.Helper()
	r := ts.do("GET", "/v1/search?"+q.Encode(), "", nil, "")
	for deadline := time.Now().Add(ts.searchRetry); r.Status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		ts.t.Logf("search %s: %s; retrying", q.Encode(), r.Body)
		time.Sleep(200 * time.Millisecond)
		r = ts.do("GET", "/v1/search?"+q.Encode(), "", nil, "")
	}
	if r.Status != http.StatusOK {
		ts.t.Fatalf("search %s: %d %s", q.Encode(), r.Status, r.Body)
	}
	var res schemas.SearchResult
	r.json(ts.t, &res)
	return res
}

// allProducts walks every page of a partner's products, in every currency:
// a price sort would keep only the default currency's.
func (ts *testSystem) allProducts(partner string) map[string]schemas.Product {
	ts.t.Helper()
	out := map[string]schemas.Product{}
	q := url.Values{"partner": {partner}, "limit": {"100"}, "sort": {"newest"}}
	for {
		res := ts.search(q)
		for _, p := range res.Hits {
			if _, dup := out[p.ID]; dup {
				ts.t.Fatalf("product %s on two pages", p.ID)
			}
			out[p.ID] = p
		}
		if res.NextCursor == "" {
			return out
		}
		q.Set("cursor", res.NextCursor)
	}
}
